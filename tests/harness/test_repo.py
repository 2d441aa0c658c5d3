"""Consistency of the repository itself: katas vs solutions, the registry, the README, the stubs.

These read source files with ``ast`` (no TensorFlow import). The checks that compare katas/ with
solutions/ are for contributors: a learner's edited katas/ would (rightly) differ from the stubs,
so they run with ``--solutions`` and skip otherwise.
"""
import ast
from pathlib import Path

import pytest

from tfkata import registry, target
from tfkata.stubs import stub_for

ROOT = Path(__file__).resolve().parents[2]
KATAS = registry.katas()
contributor_only = pytest.mark.skipif(
    target() != "solutions", reason="contributor check of the pristine stubs: run with --solutions"
)


def public_api(path: Path) -> dict:
    """name -> (signature, docstring) for public functions, classes and their public methods."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    api = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            api[node.name] = (ast.unparse(node.args), ast.get_docstring(node))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            api[node.name] = ("class", ast.get_docstring(node))
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef) and (not sub.name.startswith("_") or sub.name == "__init__"):
                    api[f"{node.name}.{sub.name}"] = (ast.unparse(sub.args), ast.get_docstring(sub))
    return api


@pytest.mark.parametrize("kata", KATAS, ids=[k.id for k in KATAS])
def test_every_kata_has_its_files(kata):
    missing = [p for p in (kata.path("katas"), kata.path("solutions"), kata.test_file) if not (ROOT / p).exists()]
    assert not missing, f"{kata.id}: missing {missing}"


@contributor_only
@pytest.mark.parametrize("kata", KATAS, ids=[k.id for k in KATAS])
def test_kata_and_solution_expose_the_same_api(kata):
    stub, solution = public_api(ROOT / kata.path("katas")), public_api(ROOT / kata.path("solutions"))
    assert sorted(stub) == sorted(solution), f"{kata.id}: public names differ"
    for name in solution:
        assert stub[name][0] == solution[name][0], f"{kata.id}.{name}: signatures differ"
        assert stub[name][1] == solution[name][1], f"{kata.id}.{name}: docstrings differ"
        assert solution[name][1], f"{kata.id}.{name}: needs a docstring saying what to write"


@contributor_only
@pytest.mark.parametrize("kata", KATAS, ids=[k.id for k in KATAS])
def test_stubs_are_generated_from_solutions(kata):
    assert (ROOT / kata.path("katas")).read_text(encoding="utf-8") == stub_for(kata, ROOT), (
        f"{kata.path('katas')} is out of date: run python -m tfkata.stubs {kata.id}"
    )


@pytest.mark.parametrize("kata", KATAS, ids=[k.id for k in KATAS])
def test_registry_hints_cover_every_function(kata):
    tree = ast.parse((ROOT / kata.path("solutions")).read_text(encoding="utf-8"))
    names = [
        n.name
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")
    ]
    assert sorted(kata.hints) == sorted(names), (
        f"{kata.id}: registry hints are for {sorted(kata.hints)}, the module's functions are {sorted(names)}"
    )
    for name, hints in kata.hints.items():
        assert 2 <= len(hints) <= 3, f"{kata.id}.{name}: give 2-3 progressive hints, not {len(hints)}"


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
