"""Hollow functions earn nothing (issue 19): no graded test may pass for a function that does nothing.

For every public top-level function of a kata, as the learner sees it (the function in katas/, every other
function and kata the reference's code, plain pytest), the function's body is replaced by

* ``none``: ``return None`` (a function left empty, or ``pass``), and
* ``anything``: ``return _Any()``, an object equal to everything whose every attribute and call is itself
  (what CI's grading test hands in as the ``alwayseq`` submission);

then the unit tests that cover the function (``@pytest.mark.covers``, differential checks included) run, and
every one that still PASSES is listed: it gives points to a function that computes nothing. A test of what a
function must not do (no session run, no print, inputs left as they were) must also check that something was
done, or it pays for an empty body.

    git clone -q . /tmp/hollow && python bench/hollow.py --root /tmp/hollow [KATA ...] [--jobs 2] [--json F]
    python bench/hollow.py --root /tmp/hollow --only F     # after fixes: only what paid in the sweep saved in F

(run it on a clone: the runs import tfkata from the checkout they are given).
"""
import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sweeps import _after_docstring, _first_statement  # bench/sweeps.py: the same AST helpers

ANY = '''


class _Any:  # bench/hollow.py: equal to everything, every attribute and call is itself
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __hash__(self): return 0
    def __getattr__(self, name): return self
    def __call__(self, *a, **k): return self
'''

ONLY = '''
"""bench/hollow.py: only the unit tests that cover $HOLLOW_FUNCTION run."""
import os

from tfkata.plugin import covers_of


def pytest_collection_modifyitems(config, items):
    name = os.environ["HOLLOW_FUNCTION"]
    items[:] = [i for i in items if name in covers_of(i) and i.get_closest_marker("training") is None]
'''

VARIANTS = {"none": "return None", "anything": "return _Any()"}


def hollowed(source: str, function: str, variant: str) -> str:
    """``source`` with the body of the top-level ``function`` (its docstring kept) replaced by the variant."""
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == function)
    lines = source.splitlines(keepends=True)
    indent = " " * node.body[0].col_offset
    has_body = _after_docstring(node) < len(node.body)
    start = _first_statement(node) - 1 if has_body else node.body[-1].end_lineno  # a decorated def: its decorator
    new = f"{indent}{VARIANTS[variant]}  # bench/hollow.py\n"
    out = "".join(lines[:start]) + new + "".join(lines[node.body[-1].end_lineno:]) + (ANY if variant == "anything" else "")
    ast.parse(out)  # a mutant that does not parse would fail every test and look like a function that earns nothing
    return out


def public_functions(root: Path, kata) -> list[str]:
    tree = ast.parse((root / "solutions" / f"{kata.module}.py").read_text(encoding="utf-8"))
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.name in kata.hints]


def run_one(root: Path, kata, function: str, variant: str) -> dict:
    from tfkata.mistakes import _call, copy_checkout
    from tfkata.results import Run

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"hollow-{kata.id}-") as tmp:
        work = Path(tmp)
        copy_checkout(root, work, finished=True)
        path = work / "katas" / f"{kata.module}.py"
        path.write_text(hollowed(path.read_text(encoding="utf-8"), function, variant), encoding="utf-8")
        (work / "hollow_only.py").write_text(ONLY, encoding="utf-8")
        results = work / "results.json"
        others = ",".join(k for k in all_ids() if k != kata.id)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "hollow_only",
               f"tests/test_{kata.module}.py", "--results-json", str(results), "--assume-done", others]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", HOLLOW_FUNCTION=function,
                   PYTHONPATH=os.pathsep.join([str(work), str(root)]))
        env.pop("TFKATA_TARGET", None)
        try:
            code, output = _call(cmd, work, env, 600)
        except subprocess.TimeoutExpired:
            return dict(kata=kata.id, function=function, variant=variant, error="timed out", passed=[], ran=0)
        if not results.is_file():
            return dict(kata=kata.id, function=function, variant=variant, ran=0, passed=[],
                        error=f"no results (exit {code}): " + " | ".join(output.strip().splitlines()[-3:]))
        tests = [t for t in Run.load(results).tests if t.kata == kata.id]
        passed = [t.name for t in tests if t.status == "pass" and t.points]  # points(0): a check of a check
        return dict(kata=kata.id, function=function, variant=variant, ran=len(tests), passed=passed,
                    points=sum(t.points_earned for t in tests), seconds=round(time.monotonic() - started, 1))


def all_ids() -> list[str]:
    from tfkata import registry
    return [k.id for k in registry.katas()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("katas", nargs="*")
    parser.add_argument("--root", type=Path, required=True, help="a clone of the checkout (never this one)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--variants", default="none,anything")
    parser.add_argument("--only", type=Path, help="a --json file of an earlier sweep: rerun only what paid there")
    args = parser.parse_args()
    sys.path.insert(0, str(args.root))
    from tfkata import registry

    katas = [registry.get(k) for k in args.katas] if args.katas else registry.katas()
    jobs = [(k, f, v) for k in katas for f in public_functions(args.root, k) for v in args.variants.split(",")]
    if args.only:
        paid = {(r["kata"], r["function"], r["variant"]) for r in json.loads(args.only.read_text()) if r["passed"]}
        jobs = [j for j in jobs if (j[0].id, j[1], j[2]) in paid]
    print(f"{len(jobs)} hollow functions", flush=True)
    found = []
    with ThreadPoolExecutor(args.jobs) as pool:
        for r in pool.map(lambda j: run_one(args.root, *j), jobs):
            found.append(r)
            mark = "PAYS " if r["passed"] else ("ERROR" if r.get("error") else "ok   ")
            print(f"{mark} {r['kata']} {r['function']:<28} {r['variant']:<8} ran {r['ran']:>3} "
                  f"{r.get('seconds', '')}s {r['passed'] or ''} {r.get('error', '')}", flush=True)
    paying = [r for r in found if r["passed"]]
    print(f"{len(found)} runs: {len(paying)} hollow functions earn points, "
          f"{sum(bool(r.get('error')) for r in found)} errors, {sum(not r['ran'] for r in found)} with no test run")
    if args.json:
        args.json.write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
