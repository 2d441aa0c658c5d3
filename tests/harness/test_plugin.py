"""The plugin's own tests: target, outcomes (TODO, waiting, diagnosis, time-out), grades, results, the
learner's plain `pytest`. Each runs pytest in a subprocess (pytester) on a throw-away mini checkout
whose katas/ and solutions/ hold made-up modules under k01's and k02's names.

The results document of the mini run is pinned by a golden file (tests/harness/golden/results.json):
any change of the schema or of what the plugin records must update it on purpose
(`TFKATA_UPDATE_GOLDEN=1 pytest --solutions tests/harness/test_plugin.py`).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tfkata.feedback.facts import find_todo
from tfkata.results import SCHEMA_VERSION, Run, Todo

pytestmark = [pytest.mark.timeout(600), pytest.mark.machinery]
GOLDEN = Path(__file__).with_name("golden") / "results.json"

KATA = '''
def done():
    """Returns 2."""
    return 2


def todo_fn():
    """Returns 5."""
    raise NotImplementedError("k01: todo_fn")


def spin():
    """Returns at once."""
    i = 0
    while i < 10:
        i = i
'''

SOLUTION = '''
def done():
    """Returns 2."""
    return 2


def todo_fn():
    """Returns 5."""
    return 5


def spin():
    """Returns at once."""
    return None
'''

TESTS = '''
import time
import pytest
from tfkata import load_kata

k = load_kata("k01")


@pytest.mark.points(3)
@pytest.mark.covers("done")
def test_pass():
    print("figure: 2")
    assert k.done() == 2


@pytest.mark.points(2)
@pytest.mark.covers("todo_fn")
def test_todo():
    assert k.todo_fn() == 5


@pytest.mark.covers("done")
def test_fail():
    assert k.done() == 3, "expected 3 from done(), got 2: a made-up mistake"


@pytest.mark.slow
@pytest.mark.covers("done")
def test_slow():
    pass


@pytest.mark.slow
@pytest.mark.training
@pytest.mark.points(3)
@pytest.mark.covers("todo_fn")
def test_slow_training():
    pass


@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")


@pytest.mark.covers("done")
def test_error(broken):
    pass


@pytest.mark.timeout(2)
@pytest.mark.covers("spin")
def test_timeout():
    k.spin()


@pytest.mark.training
@pytest.mark.points(4)
@pytest.mark.covers("todo_fn", "done")
def test_training():
    assert k.todo_fn() + k.done() == 7


@pytest.mark.needs("k02")
@pytest.mark.covers("done")
def test_needs_k02():
    assert k.done() == 2
'''

K02_TESTS = '''
from tfkata import load_kata
import pytest

k = load_kata("k02")


@pytest.mark.covers("make_variables")
def test_broken():
    k.make_variables()
'''


@pytest.fixture
def mini(pytester):
    pytester.makeconftest('pytest_plugins = ["tfkata.plugin"]\n')
    pytester.makeini("[pytest]\ntimeout = 120\ntimeout_method = signal\ntestpaths = tests\n")
    for target, body in (("katas", KATA), ("solutions", SOLUTION)):
        folder = pytester.mkpydir(target)
        (folder / "k01_graph_session.py").write_text(body)
        # a file with a syntax error: its tests fail with one short message, the run goes on
        (folder / "k02_variables_scopes.py").write_text("def make_variables(:\n    pass\n")
    tests = pytester.mkdir("tests")
    (tests / "test_k01_graph_session.py").write_text(TESTS)
    (tests / "test_k02_variables_scopes.py").write_text(K02_TESTS)
    harness = tests / "harness"
    harness.mkdir()
    (harness / "test_self.py").write_text("def test_harness_self_test():\n    pass\n")
    return pytester


def run(pytester, *args, target=None, cwd=None):
    out = pytester.path / f"results-{len(list(pytester.path.glob('results-*.json')))}.json"
    if target is None:
        os.environ.pop("TFKATA_TARGET", None)
    else:
        os.environ["TFKATA_TARGET"] = target
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--results-json", str(out), *args)
    finally:
        os.environ.pop("TFKATA_TARGET", None)
        os.chdir(pytester.path)
    run_ = Run.load(out) if out.exists() else None
    return result, run_


def by_name(run_: Run) -> dict:
    return {t.name: t for t in run_.tests}


def normalised(run_: Run, root: Path) -> dict:
    """The results document with what changes from run to run masked (times, versions, paths)."""
    text = json.dumps(run_.to_dict(), indent=2, ensure_ascii=False, sort_keys=True)
    text = text.replace(str(root), "<root>")
    data = json.loads(text)
    for key in ("started", "duration", "tensorflow", "python"):
        data[key] = "<masked>"
    for row in data["katas"]:
        row["duration"] = "<masked>"
        assert re.fullmatch(r"[0-9a-f]{64}", row["sources"] or ""), f"{row['id']}: a learner run records its sources"
        row["sources"] = "<sha256>"
    for t in data["tests"]:
        t["duration"] = "<masked>"
        if t["report"]:
            t["report"] = re.sub(r"\.py:\d+", ".py:N", t["report"]).splitlines()[0]
    return data


def test_learner_run_statuses_messages_and_golden_file(mini):
    result, run_ = run(mini)
    tests = by_name(run_)
    assert {n: t.status for n, t in tests.items()} == {
        "test_pass": "pass", "test_todo": "todo", "test_fail": "fail", "test_slow": "skip", "test_error": "error",
        "test_slow_training": "skip",  # skipped without --runslow, not waiting: its points never count
        "test_timeout": "fail", "test_training": "waiting", "test_needs_k02": "waiting", "test_broken": "fail",
    }, result.stdout.str()
    assert "test_harness_self_test" not in tests, "a learner's pytest grades the katas only"
    assert result.ret == 1
    out = result.stdout.str()
    # TODO: one line per kata, no traceback
    assert tests["test_todo"].message == "TODO k01: todo_fn is not written yet (katas/k01_graph_session.py:9)"
    assert tests["test_todo"].todo == Todo("k01", "todo_fn", "katas/k01_graph_session.py", 9)
    assert "k01  1 function to write: todo_fn first (katas/k01_graph_session.py:9)" in out, out
    assert "NotImplementedError" not in out, "a TODO must not print a traceback"
    # waiting: a training run waits for its unit tests; a test that needs k02 waits for k02
    assert "3 unit tests still to pass (todo_fn, done)" in tests["test_training"].message, tests["test_training"].message
    assert "finish k02 first (kata run k02: a complete run, its training tests included)" in tests["test_needs_k02"].message
    # the time-out names the function that never returned, and the likely cause first
    timeout = tests["test_timeout"].message
    assert timeout.startswith("k01: spin (katas/k01_graph_session.py:") and "may never return" in timeout, timeout
    assert timeout.index("never return") < timeout.index("slow"), timeout
    # an unimportable kata: one short message naming the file and line
    assert tests["test_broken"].message.startswith(
        "katas/k02_variables_scopes.py cannot be imported (line 1): SyntaxError"), tests["test_broken"].message
    assert "The above exception was the direct cause" not in out
    # the assertion's own message, the printed figure, the covers
    assert "a made-up mistake" in tests["test_fail"].message and "fixture broke" in tests["test_error"].message
    assert tests["test_pass"].printed == "figure: 2" and tests["test_training"].covers == ["todo_fn", "done"]
    # the pytest summary and the grade table count the same things
    last = out.strip().splitlines()[-1]
    for n, word in ((1, "passed"), (3, "failed"), (1, "todo"), (2, "waiting"), (2, "skipped"), (1, "error")):
        assert f"{n} {word}" in last, last
    assert re.search(r"total\s+1\s+4\s+1\s+2\s+2\s", out), out
    assert f"grade: 3/{3 + 2 + 1 + 1 + 1 + 4 + 1 + 1} points" in out, out
    # pinned: the whole results document
    data = normalised(run_, mini.path)
    if os.environ.get("TFKATA_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert data == expected, (
        "the results document changed; if on purpose, regenerate tests/harness/golden/results.json "
        "with TFKATA_UPDATE_GOLDEN=1 and say so in README's results section"
    )
    assert run_.version == SCHEMA_VERSION
    # plain pytest records the fully-run katas where `kata` reads them
    recorded = Run.load(mini.path / ".tfkata" / "results-k01.json")
    assert [t.name for t in recorded.tests] == [t.name for t in run_.tests if t.kata == "k01"]


def test_two_workers_give_the_same_results_document(mini):
    """With pytest-xdist workers (``pytest --solutions`` over the whole suite runs on two) the controller, which
    collects nothing, builds the same document from the workers' reports: statuses, messages, TODOs, waiting
    lines, points, complete; and it records the learner's katas as one process does."""
    pytest.importorskip("xdist")
    result, run_ = run(mini, "-n", "2")
    assert "2 workers" in result.stdout.str(), result.stdout.str()
    data = normalised(run_, mini.path)
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for doc in (data, expected):
        doc["tests"].sort(key=lambda t: t["id"])  # the workers report in the order they finish
    differ = [(mine["name"], key, mine.get(key), theirs.get(key)) for mine, theirs in zip(data["tests"], expected["tests"])
              for key in sorted(set(mine) | set(theirs)) if mine.get(key) != theirs.get(key)]
    assert not differ and data == expected, f"two workers and one process must give the same document: {differ}"
    recorded = Run.load(mini.path / ".tfkata" / "results-k01.json")
    assert sorted(t.name for t in recorded.tests) == sorted(t.name for t in run_.tests if t.kata == "k01")
    assert "grade: 3/" in result.stdout.str() and "k01  1 function to write: todo_fn first" in result.stdout.str()


def test_a_needed_kata_that_changed_since_it_passed_is_named_as_such(mini):
    """k02 passed a complete run, then its file changed: the waiting line says so (not "finish k02 first")."""
    import time

    from tfkata import registry
    from tfkata.results import TestResult
    from tfkata.store import Store

    k02 = registry.get("k02")
    passed = [TestResult(id=f"{k02.test_file}::test_broken", name="test_broken", kata="k02", status="pass",
                         covers=["make_variables"], duration=0.01)]
    Store(mini.path).write_results(k02, Run.grade("katas", passed, registry.katas(), sources={"k02": "0" * 64},
                                                  started=time.time(), duration=1.0))
    _, run_ = run(mini, "tests/test_k01_graph_session.py", "-k", "needs")
    message = by_name(run_)["test_needs_k02"].message
    assert by_name(run_)["test_needs_k02"].status == "waiting", message
    assert "k02 changed since its last complete run passed: run it again (kata run k02)" in message, message


def test_solutions_run_includes_the_harness_and_never_waits(mini):
    result, run_ = run(mini, "--solutions", "--runslow", "-k", "not broken and not timeout and not fail and not error")
    tests = by_name(run_)
    assert run_.target == "solutions" and "grading solutions/" in result.stdout.str()
    assert tests["test_todo"].status == "pass" and tests["test_slow"].status == "pass"
    assert tests["test_training"].status == "pass", "training runs once its unit tests pass"
    assert tests["test_needs_k02"].status == "pass", "against solutions/ a needed kata is the reference: no wait"
    assert tests["test_harness_self_test"].status == "pass"
    assert "harness self-tests (not graded): 1 passed" in result.stdout.str()
    assert not (mini.path / ".tfkata").exists(), "a --solutions run records nothing for the learner"


def test_env_var_target_and_a_bad_value(mini):
    _, run_ = run(mini, "-k", "todo", target="solutions")
    assert by_name(run_)["test_todo"].status == "pass"
    result, _ = run(mini, "-k", "todo", target="answers")
    assert result.ret != 0
    assert "TFKATA_TARGET must be 'katas' or 'solutions', got 'answers'" in result.stderr.str() + result.stdout.str()


def test_pytest_from_a_subfolder_grades_the_checkout(mini):
    result, run_ = run(mini, "-k", "pass", cwd=mini.path / "katas")
    assert run_ is not None and by_name(run_)["test_pass"].status == "pass", result.stdout.str()
    assert "grades (katas/)" in result.stdout.str()


def test_tb_long_shows_everything(mini):
    full, _ = run(mini, "-k", "test_fail", "--tb=long")
    text = full.stdout.str()
    assert "a made-up mistake" in text
    assert ">       assert k.done() == 3" in text, "--tb=long gives pytest's own report, introspection included"


def test_find_todo_follows_chained_exceptions(tmp_path):
    target = tmp_path / "katas"
    target.mkdir()
    source = target / "k02_variables_scopes.py"
    source.write_text('def make_variables():\n    raise NotImplementedError("k02: make_variables")\n')
    namespace = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)
    try:
        try:
            namespace["make_variables"]()
        except NotImplementedError as inner:
            raise RuntimeError("wrapped by a library") from inner
    except RuntimeError as outer:
        found = find_todo(outer, target)
    assert found == Todo("k02", "make_variables", "katas/k02_variables_scopes.py", 2)
    assert find_todo(NotImplementedError("not from a kata"), target) is None
    assert find_todo(ValueError("x"), target) is None


RESTRAINT_TESTS = '''
import pytest
from tfkata import load_kata

k = load_kata("k02")


@pytest.mark.covers("make_variables")
@pytest.mark.restraint
def test_prints_nothing(capsys):
    k.make_variables()
    assert capsys.readouterr().out == "", "make_variables: prints"


@pytest.mark.covers("make_variables")
def test_makes_two():
    assert k.make_variables() == (1, 2), "make_variables: should give (1, 2)"


@pytest.mark.covers("other")
def test_other():
    assert k.other() == 0
'''


@pytest.mark.parametrize("body, expected", [
    ("def make_variables():\n    return None\n\n\ndef other():\n    return 0\n", "waiting"),  # does nothing
    ("def make_variables():\n    print('x')\n    return (1, 2)\n\n\ndef other():\n    return 0\n", "fail"),
    ("def make_variables():\n    return (1, 2)\n\n\ndef other():\n    return 0\n", "pass"),
])
def test_a_restraint_test_runs_after_its_functions_tests_and_pays_nothing_for_an_empty_body(mini, body, expected):
    """A test of what a function must NOT do (bench/hollow.py found such tests passing for an empty body) runs
    after the function's other unit tests, whatever its place in the file, and waits while one of them fails."""
    (mini.path / "katas" / "k02_variables_scopes.py").write_text(body)
    (mini.path / "tests" / "test_k02_variables_scopes.py").write_text(RESTRAINT_TESTS)
    _, run_ = run(mini, "tests/test_k02_variables_scopes.py")
    names = [t.name for t in run_.tests]
    assert names.index("test_prints_nothing") == names.index("test_makes_two") + 1, names
    got = by_name(run_)["test_prints_nothing"]
    assert got.status == expected, (got.status, got.message)
    if expected == "waiting":
        assert got.message.startswith("checks what make_variables must NOT do") and "test_makes_two" in got.message, \
            got.message
        assert got.points_earned == 0
