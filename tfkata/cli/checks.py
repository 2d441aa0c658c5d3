"""``kata dev check``: the contributors' checks, in Python (``.ci/run`` calls them).

``kata dev check`` verifies, in order (each step says what is wrong and how to fix it):

1. katas/ is exactly what ``python -m tfkata.stubs`` generates from solutions/;
2. the registry lists every kata, with 2-3 hints for every public function of its solution;
3. every graded test declares ``@pytest.mark.covers(...)`` with functions the kata has, and every
   public function is covered by at least one test;
4. the mistake catalogues parse and still apply to solutions/;
5. ``pytest`` against katas/: every graded test is TODO, waiting or skipped (none passes, none fails);
6. ``pytest --solutions``: every test passes (or reuse a results file with ``--solutions-json``).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tfkata import registry, source
from tfkata.results import ResultsError, Run
from tfkata.stubs import stub_for


def static_problems(root: Path) -> list[str]:
    """Steps 1-4: no TensorFlow, a second or two."""
    problems = []
    for kata in registry.katas():
        sol, stub, tests = root / kata.path("solutions"), root / kata.path("katas"), root / kata.test_file
        missing = [p for p in (sol, stub, tests) if not p.exists()]
        if missing:
            problems.append(f"{kata.id}: missing {', '.join(str(p.relative_to(root)) for p in missing)}")
            continue
        if stub.read_text(encoding="utf-8") != stub_for(kata, root):
            problems.append(f"{kata.path('katas')} is not generated from its solution: python -m tfkata.stubs {kata.id}")
        for name, (_, doc) in source.public_api(sol).items():
            if not doc:
                problems.append(f"{kata.path('solutions')}: {name} needs a docstring saying what to write")
        names = source.public_names(sol)
        if sorted(kata.hints) != sorted(names):
            problems.append(f"{kata.id}: registry hints are for {sorted(kata.hints)}, the solution's public "
                            f"functions are {sorted(names)}: fix tfkata/registry.toml")
        for name, hints in kata.hints.items():
            if not 2 <= len(hints) <= 3:
                problems.append(f"{kata.id}.{name}: give 2-3 progressive hints in tfkata/registry.toml, not {len(hints)}")
        problems.extend(coverage_problems(kata, root))
    try:
        from tfkata import mistakes

        for m in mistakes.load_all():
            try:
                mistakes.check(m, root)
            except mistakes.MistakeError as exc:
                problems.append(str(exc))
    except Exception as exc:  # a malformed catalogue
        problems.append(f"mistake catalogue: {exc}")
    return problems


def coverage_problems(kata: registry.Kata, root: Path) -> list[str]:
    decls = source.test_declarations(root / kata.test_file)
    out = []
    covered = set()
    for d in decls:
        if not d.covers:
            out.append(f"{kata.test_file}:{d.line} {d.name} covers nothing: add @pytest.mark.covers(\"function\", ...)")
        for name in d.covers:
            if name not in kata.hints:
                out.append(f"{kata.test_file}:{d.line} {d.name} covers {name!r}, which {kata.id} does not have "
                           f"(its functions: {', '.join(kata.hints)})")
            covered.add(name)
        for need in d.needs:
            try:
                registry.get(need)
            except registry.UnknownKata as exc:
                out.append(f"{kata.test_file}:{d.line} {d.name}: {exc}")
    for name in kata.hints:
        if name not in covered:
            out.append(f"{kata.id}: {name} is covered by no test in {kata.test_file}")
    return out


def pytest_run(root: Path, *args: str) -> tuple[int, Run | None]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results.json"
        env = {k: v for k, v in __import__("os").environ.items() if k != "TFKATA_TARGET"}
        code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args,
                                "--results-json", str(path)], cwd=root, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            return code, Run.load(path)
        except ResultsError:
            return code, None


def stub_problems(run: Run | None, code: int) -> list[str]:
    """Step 5: against katas/, every graded test is TODO / waiting / skipped."""
    if run is None:
        return [f"pytest against katas/ wrote no results (exit code {code})"]
    out = [f"{t.id}: {t.status} against katas/ (every graded test must be TODO or waiting): {t.message}"
           for t in run.graded if t.status not in ("todo", "waiting", "skip")]
    if not run.graded:
        out.append("pytest against katas/ graded no test")
    return out


def solution_problems(run: Run | None, code: int) -> list[str]:
    """Step 6: against solutions/, every test passes (skips aside)."""
    if run is None:
        return [f"pytest --solutions wrote no results (exit code {code})"]
    out = [f"{t.id}: {t.status} against solutions/: {t.message}" for t in run.tests if t.status not in ("pass", "skip")]
    if run.message:
        out.append(f"collection: {run.message}")
    return out
