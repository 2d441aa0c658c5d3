"""Consistency of the repository itself: katas vs solutions, the registry, the tests' `covers`, the README.

These read source files with tfkata.source (no TensorFlow import). The checks that compare katas/ with
solutions/ are for contributors: a learner's edited katas/ would (rightly) differ from the stubs,
so they run with ``--solutions`` and skip otherwise. `kata dev check` runs the same checks.
"""
from pathlib import Path

import pytest

from tfkata import registry, source, target
from tfkata.cli.checks import coverage_problems
from tfkata.stubs import stub_for

ROOT = Path(__file__).resolve().parents[2]
KATAS = registry.katas()
IDS = [k.id for k in KATAS]
pytestmark = pytest.mark.machinery
contributor_only = pytest.mark.skipif(
    target() != "solutions", reason="contributor check of the pristine stubs: run with --solutions"
)


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_graded_tests_are_not_rewritten_and_every_assert_says_why(kata):
    """Graded test files skip pytest's assertion rewriting (PYTEST_DONT_REWRITE in the docstring: about 2 s of every
    run); that is only right while every assert carries the sentence a learner reads."""
    import ast

    path = ROOT / kata.test_file
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert "PYTEST_DONT_REWRITE" in (ast.get_docstring(tree) or ""), f"{kata.test_file}: add PYTEST_DONT_REWRITE to its docstring"
    bare = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assert) and n.msg is None]
    assert not bare, f"{kata.test_file}: asserts without a message at lines {bare}: say what went wrong and the fix"


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_every_kata_has_its_files(kata):
    missing = [p for p in (kata.path("katas"), kata.path("solutions"), kata.test_file) if not (ROOT / p).exists()]
    assert not missing, f"{kata.id}: missing {missing}"


@contributor_only
@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_kata_and_solution_expose_the_same_api(kata):
    stub, solution = source.public_api(ROOT / kata.path("katas")), source.public_api(ROOT / kata.path("solutions"))
    assert sorted(stub) == sorted(solution), f"{kata.id}: public names differ"
    for name in solution:
        assert stub[name][0] == solution[name][0], f"{kata.id}.{name}: signatures differ"
        assert stub[name][1] == solution[name][1], f"{kata.id}.{name}: docstrings differ"
        assert solution[name][1], f"{kata.id}.{name}: needs a docstring saying what to write"


@contributor_only
@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_stubs_are_generated_from_solutions(kata):
    assert (ROOT / kata.path("katas")).read_text(encoding="utf-8") == stub_for(kata, ROOT), (
        f"{kata.path('katas')} is out of date: run python -m tfkata.stubs {kata.id}"
    )


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_registry_hints_cover_every_function(kata):
    names = source.public_names(ROOT / kata.path("solutions"))
    assert sorted(kata.hints) == sorted(names), (
        f"{kata.id}: registry hints are for {sorted(kata.hints)}, the module's functions are {sorted(names)}"
    )
    for name, hints in kata.hints.items():
        assert 2 <= len(hints) <= 3, f"{kata.id}.{name}: give 2-3 progressive hints, not {len(hints)}"


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_every_test_covers_functions_of_its_kata_and_every_function_is_covered(kata):
    problems = coverage_problems(kata, ROOT)
    assert not problems, "\n".join(problems)


def test_coverage_check_can_fail(tmp_path):
    kata = registry.get("k01")
    (tmp_path / "tests").mkdir()
    (tmp_path / kata.test_file).write_text(
        "import pytest\n\n\n@pytest.mark.covers('define_add', 'no_such_function')\ndef test_a():\n    pass\n\n\n"
        "def test_b():\n    pass\n"
    )
    problems = "\n".join(coverage_problems(kata, tmp_path))
    assert "test_b covers nothing" in problems
    assert "covers 'no_such_function', which k01 does not have" in problems
    assert "k01: evaluate is covered by no test" in problems


def test_every_now_kata_has_its_then_twin():
    ids = {k.id for k in KATAS}
    for kata in KATAS:
        if kata.track == "now" and (kata.twin is not None or f"k{kata.id[1:]}" in ids):
            twin = registry.get(kata.twin)
            assert twin.track == "then" and kata.id[1:] == twin.id[1:], f"{kata.id}'s twin should be k{kata.id[1:]}"


def test_readme_kata_table_matches_registry():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- kata-table:start -->", "<!-- kata-table:end -->"
    assert start in text and end in text, "README.md needs the kata-table markers"
    table = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert table == registry.markdown_table(), (
        "README's kata table is out of date: run `python -m tfkata.registry --readme`"
    )


def test_registry_lookup_and_errors():
    assert registry.get("k04").alias == "cnn"
    assert registry.get("CNN").id == "k04" and registry.get("k04_cnn_mnist").id == "k04"
    with pytest.raises(registry.UnknownKata) as err:
        registry.get("k99")
    assert "valid katas: k01 (graph)" in str(err.value)


def test_no_import_circles_in_the_harness():
    """tfkata's modules import each other one way (function-level imports included): no circle, so each
    room can be read and tested on its own (the feedback rooms: facts <- diagnoses <- frames <- classify)."""
    import ast

    root = Path(__file__).resolve().parents[2] / "tfkata"
    mods = {}
    for p in root.rglob("*.py"):
        name = ".".join(p.relative_to(root.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    graph = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            graph[m].update(t for t in targets if t in mods and t != m)

    def path_back(start):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return path + [start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None

    circles = [" -> ".join(c) for m in sorted(graph) for c in [path_back(m)] if c]
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_no_module_of_the_harness_defines_a_name_twice():
    """A second top-level `def` of the same name silently replaces the first: in the plugin, a second
    `pytest_runtest_setup` once dropped the GPU skip and the training waits (use a hookimpl's specname)."""
    import ast
    from collections import Counter

    root = Path(__file__).resolve().parents[2] / "tfkata"
    twice = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = Counter(node.name for node in tree.body
                        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))
        dup = sorted(n for n, c in names.items() if c > 1)
        if dup:
            twice[path.relative_to(root.parent).as_posix()] = dup
    assert not twice, f"defined twice (the later one wins): {twice}"
