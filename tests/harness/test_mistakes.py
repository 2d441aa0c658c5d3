"""The mistake catalogue and its runner (tfkata/mistakes): loading, validation, applying, one real run."""
import ast
import time
from pathlib import Path

import pytest

from tfkata import mistakes, registry
from tfkata.mistakes import Mistake, MistakeError, Outcome, apply, load, run
from tfkata.mistakes.__main__ import line_for, main
from tfkata.results import Run, TestResult

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.timeout(600), pytest.mark.machinery]  # end-to-end runs start pytest processes

SOURCE = '''"""A made-up kata module."""
import functools


def add(a, b):
    """Return ``a + b``."""
    c = a + b
    return c


@functools.lru_cache()
def cached(x):
    return x * 2


class Box:
    """Holds a value."""

    def __init__(self, value):
        self.value = value

    def double(self):
        return self.value * 2
'''


def make(**kw) -> Mistake:
    base = dict(kata="k01", id="m", function="add", what="w", replace=(), code=None, training=False)
    base.update(kw)
    return Mistake(**base)


def write_catalogue(monkeypatch, tmp_path, text: str):
    monkeypatch.setattr(mistakes, "CATALOGUE_DIR", tmp_path)
    (tmp_path / "k01.toml").write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- load & validate
def test_load_reads_entries(monkeypatch, tmp_path):
    write_catalogue(monkeypatch, tmp_path, '''
[[mistake]]
id = "minus"
function = "define_add"
what = "c = a - b"
replace = [["a + b", "a - b"]]
expect = ["a + b"]

[[mistake]]
id = "rewrite"
function = "define_add"
what = "rewritten"
expect = ["re:define_add"]
code = """
def define_add():
    return 1
"""
training = true
''')
    got = load("graph")  # aliases work
    assert [m.key for m in got] == ["k01/minus", "k01/rewrite"]
    assert got[0].expect == ("a + b",) and got[1].expect == ("re:define_add",)
    assert got[0].replace == (("a + b", "a - b"),) and got[0].code is None and not got[0].training
    assert got[1].code.strip().startswith("def define_add") and got[1].training
    assert load("k02") == []  # no file, no mistakes


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('id = "a"\nfunction = "f"\nwhat = "w"\nreplace = [["x", "y"]]\ncolour = 1', "unknown key(s) ['colour']"),
        ('id = "a"\nfunction = "f"\nwhat = "w"', "exactly one of 'replace'"),
        ('id = "a"\nfunction = "f"\nwhat = "w"\nreplace = [["x", "y"]]\ncode = "def f(): pass"', "exactly one of"),
        ('id = "Bad_Id"\nfunction = "f"\nwhat = "w"\nreplace = [["x", "y"]]', "kebab-case"),
        ('id = "a"\nfunction = "f"\nreplace = [["x", "y"]]', "'what' is missing"),
        ('id = "a"\nfunction = "f"\nwhat = "w"\nreplace = [["x"]]', "[old, new] string pairs"),
        ('id = "a"\nfunction = "f"\nwhat = "w"\nreplace = [["x", "x"]]', "different new string"),
        ('id = "a"\nfunction = "f"\nwhat = "w"\nreplace = [["x", "y"]]\ntraining = "yes"', "'training' must be"),
        ('id = "a"\nfunction = "f"\nwhat = "w"\nreplace = [["x", "y"]]\nexpect = []', "'expect' must be"),
        ('id = "a"\nfunction = "f"\nwhat = "w"\nreplace = [["x", "y"]]\nexpect = ["re:("]', "not a valid regular"),
        ('id = "a"\nfunction = "f"\nwhat = "w"\nreplace = [["x", "y"]]', "'expect' is missing"),
        ('id = "a"\nfunction = "f"\nwhat = "w"\nreplace = [["x", "y"]]\nabout = "not a name"', "'about' must be"),
    ],
)
def test_load_rejects_bad_entries(monkeypatch, tmp_path, body, fragment):
    if "expect" not in body and "'expect' is missing" not in fragment:
        body += '\nexpect = ["w"]'
    write_catalogue(monkeypatch, tmp_path, "[[mistake]]\n" + body + "\n")
    with pytest.raises(MistakeError) as info:
        load("k01")
    assert "k01.toml" in str(info.value) and "#1" in str(info.value)
    assert fragment in str(info.value)


def test_load_rejects_duplicate_ids(monkeypatch, tmp_path):
    entry = '[[mistake]]\nid = "same"\nfunction = "f"\nwhat = "w"\nreplace = [["x", "y"]]\nexpect = ["w"]\n'
    write_catalogue(monkeypatch, tmp_path, entry + entry)
    with pytest.raises(MistakeError, match="#2: duplicate id 'same'"):
        load("k01")


def test_load_rejects_bad_toml(monkeypatch, tmp_path):
    write_catalogue(monkeypatch, tmp_path, "[[mistake]\n")
    with pytest.raises(MistakeError, match="k01.toml: not valid TOML"):
        load("k01")


# --------------------------------------------------------------------------- apply
def test_apply_replace_stays_inside_the_function():
    out = apply(make(replace=(("c = a + b", "c = a - b"),)), SOURCE)
    assert "c = a - b" in out and out.count("a + b") == 1  # the docstring's ``a + b`` is untouched
    ast.parse(out)


def test_apply_replace_needs_exactly_one_match():
    with pytest.raises(MistakeError) as info:
        apply(make(id="plus", replace=(("a + b", "a - b"),)), SOURCE)  # docstring and body
    text = str(info.value)
    assert text.startswith("k01/plus no longer applies to solutions/k01_graph_session.py")
    assert "'a + b' found 2 times in add" in text and "update tfkata/mistakes/k01.toml" in text
    with pytest.raises(MistakeError, match="found 0 times in add"):
        apply(make(replace=(("value", "v"),)), SOURCE)  # only in Box, not in add


def test_apply_replace_in_a_method_and_with_decorators():
    out = apply(make(function="Box.double", replace=(("* 2", "* 3"),)), SOURCE)
    assert "return self.value * 3" in out and "return x * 2" in out
    out = apply(make(function="cached", replace=(("@functools.lru_cache()\n", ""),)), SOURCE)
    assert "lru_cache" not in out.split("import functools")[1]


def test_apply_code_reindents_methods_and_keeps_decorators():
    code = "\n    def double(self):\n        return self.value + self.value\n"
    out = apply(make(function="Box.double", code=code), SOURCE)
    assert "    def double(self):\n        return self.value + self.value\n" in out
    assert "def __init__(self, value)" in out
    ast.parse(out)
    out = apply(make(function="cached", code="def cached(x):\n    return x\n"), SOURCE)
    assert "@functools.lru_cache()\ndef cached(x):\n    return x\n" in out


def test_apply_rejects_missing_function_and_bad_code():
    with pytest.raises(MistakeError, match="there is no function nope"):
        apply(make(function="nope", replace=(("a", "b"),)), SOURCE)
    with pytest.raises(MistakeError, match="there is no function Box.triple"):
        apply(make(function="Box.triple", replace=(("a", "b"),)), SOURCE)
    with pytest.raises(MistakeError, match="must define add"):
        apply(make(code="def other():\n    pass\n"), SOURCE)
    with pytest.raises(MistakeError, match="not valid Python"):
        apply(make(code="def add(:\n"), SOURCE)
    with pytest.raises(MistakeError, match="no longer parses"):
        apply(make(replace=(("return c", "return (c"),)), SOURCE)


def test_every_catalogued_mistake_applies_to_solutions():
    """The real catalogues: each entry loads, names a public function, and applies to solutions/."""
    problems = []
    for kata in registry.katas():
        try:
            for m in load(kata.id):
                mistakes.check(m, ROOT)
        except MistakeError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- run (one real end-to-end)
def test_run_catches_a_k01_mistake():
    m = Mistake("k01", "add-subtracts", "define_add", "define_add computes a - b instead of a + b",
                (("c = a + b\n", "c = a - b\n"),), None, False)
    started = time.monotonic()
    o = run(m, ROOT, timeout=240)
    print(f"end-to-end mistake run: {time.monotonic() - started:.1f} s")
    assert o.error is None, o.error
    assert o.caught and o.status == "caught"
    assert o.test_name == "test_define_add_runs_to_five"
    assert o.test_id == "tests/test_k01_graph_session.py::test_define_add_runs_to_five"
    assert "5.0" in o.message and not o.by_training
    line = line_for(o)
    assert line.startswith("k01/add-subtracts") and " caught " in line and "test_define_add_runs_to_five: " in line


class _Item:
    """What the ordering reads of a collected test: its name and markers."""

    def __init__(self, name, covers=(), *marks):
        self.name, self.covers, self.marks, self.keywords = name, covers, marks, {}

    def iter_markers(self, name):
        return [pytest.mark.covers(*self.covers).mark] if name == "covers" and self.covers else []

    def get_closest_marker(self, name):
        return object() if name in self.marks else None

    def __repr__(self):
        return self.name


def test_a_mistakes_run_takes_the_functions_concept_tests_first(tmp_path):
    """--first-tests-of: the runner's -x stops at the test that catches the mistake without running every
    passing test above it (k09: 134 s -> 29 s for six late entries); file order kept within each group;
    differential checks and training runs stay where the file puts them (after the concept tests)."""
    from types import SimpleNamespace

    from tfkata.plugin import pytest_collection_modifyitems

    items = [_Item("a", ("other",)), _Item("b", ("DataSet",)), _Item("c", ("f", "g")), _Item("d", ("f",), "differential"),
             _Item("e", ("f",), "training"), _Item("f", ("g", "f"))]
    opts = {"runslow": True, "first_tests_of": "f"}
    config = SimpleNamespace(getoption=opts.__getitem__)
    pytest_collection_modifyitems(config, items)
    assert [i.name for i in items] == ["c", "f", "a", "b", "d", "e"], items
    opts["first_tests_of"] = "DataSet.next_batch"  # a method: its class's tests
    pytest_collection_modifyitems(config, items)
    assert [i.name for i in items] == ["b", "c", "f", "a", "d", "e"], items
    opts["first_tests_of"] = "other, f"  # kata run: several functions, their tests in file order
    pytest_collection_modifyitems(config, items)
    assert [i.name for i in items] == ["c", "f", "a", "b", "d", "e"], items
    assert "--first-tests-of" in mistakes.pytest_args(make(function="DataSet.next_batch"), "learner", tmp_path / "r.json")


def test_warm_workers_agree_with_fresh_processes_and_share_no_state():
    """run_many forks each mistake from a warm worker: an InteractiveSession left open by one mistake
    must not make the next one fail in a test about sessions."""
    from tfkata.mistakes.batch import run_many

    leaky = Mistake("k01", "leaky", "evaluate", "evaluate leaves an InteractiveSession installed",
                    (("with tf.compat.v1.Session() as sess:\n", "sess = tf.compat.v1.InteractiveSession()\n    if True:\n"),),
                    None, False)
    add = Mistake("k01", "add-subtracts", "define_add", "define_add computes a - b instead of a + b",
                  (("c = a + b\n", "c = a - b\n"),), None, False)
    started = time.monotonic()
    got = run_many([leaky, add], ROOT, jobs=1, timeout=240)
    print(f"two mistakes in one warm worker: {time.monotonic() - started:.1f} s")
    assert [o.status for o in got] == ["caught", "caught"], [o.error for o in got]
    assert got[1].test_name == "test_define_add_runs_to_five", "the second run must not see the first one's session"


def test_a_run_past_its_timeout_is_an_error():
    m = Mistake("k01", "slow", "define_add", "w", (("c = a + b\n", "c = a - b\n"),), None, False)
    o = run(m, ROOT, timeout=0.5)  # pytest cannot even import TensorFlow in that time
    assert o.status == "error" and "took longer than 0.5 s" in o.error
    assert o.seconds < 30


def test_training_mistake_is_skipped_without_runslow():
    o = run(make(training=True, replace=(("x", "y"),)), ROOT)
    assert o.skipped and o.status == "skipped" and not o.caught
    assert "--runslow" in line_for(o)


def test_a_stale_mistake_is_an_error_not_a_miss():
    o = run(make(id="stale", function="define_add", replace=(("no such text", "x"),)), ROOT)
    assert o.status == "error" and "found 0 times in define_add" in o.error


def test_first_problem_reads_the_results(tmp_path):
    path = tmp_path / "r.json"
    tests = [TestResult(id="t::a", name="a", kata="k01", status="pass"),
             TestResult(id="t::b[1]", name="b[1]", kata="k01", status="fail", message="boom", training=True)]
    Run.grade("solutions", tests, registry.katas()).dump(path)
    got = mistakes._first_problem(path)
    assert (got.id, got.name, got.status, got.message, got.training) == ("t::b[1]", "b[1]", "fail", "boom", True)


def test_cli_check_and_unknown_id(monkeypatch, tmp_path, capsys):
    write_catalogue(monkeypatch, tmp_path, '[[mistake]]\nid = "minus"\nfunction = "define_add"\n'
                    'what = "c = a - b"\nreplace = [["c = a + b\\n", "c = a - b\\n"]]\nexpect = ["a + b"]\n')
    assert main(["k01", "--check", "--root", str(ROOT)]) == 0
    assert "k01/minus" in capsys.readouterr().out
    assert main(["k01", "--id", "nope", "--root", str(ROOT)]) == 2
    assert "no mistake nope" in capsys.readouterr().err


def test_learner_view_and_what_is_told():
    """As the learner sees it: the mistake in katas/, the reference intact; the first line is judged by
    `expect` (told / MISTOLD), and the function the failure is about by the entry's function (or `about`)."""
    from tfkata.mistakes import tells

    m = Mistake("k01", "add-subtracts", "define_add", "define_add computes a - b instead of a + b",
                (("c = a + b\n", "c = a - b\n"),), None, False, ("define_add", "5"))
    o = run(m, ROOT, timeout=240, view="learner")
    assert o.error is None and o.caught and o.view == "learner", o
    assert o.first_line and o.told is True, o.first_line
    wrong = Mistake(**{**m.__dict__, "expect": ("padding",)})
    assert Outcome(wrong, caught=True, message=o.message, report=o.report).told is False
    assert tells("conv2d: use padding='SAME'", ["padding", "same|valid"]) and not tells("x", ["re:^y"])
    # ... and the failure is about the mistaken function ("Stuck?" names it), or the one `about` names.
    assert o.pointed == "define_add" and o.points_right is True, o.pointed
    elsewhere = Outcome(m, caught=True, message=o.message, report=o.report, pointed="multi_output")
    assert elsewhere.points_right is False
    sent_on = Mistake(**{**m.__dict__, "about": "multi_output"})
    assert Outcome(sent_on, caught=True, pointed="multi_output").points_right is True
    assert Outcome(m, caught=False).points_right is None
