"""How long a learner waits for a verdict, measured (issue: "fast verdicts").

    python bench/verdict_times.py                 # first pytest on a fresh clone + k01 k04 k05 k07 k08
    python bench/verdict_times.py k04 n04         # only these katas' wrong-unit-function verdicts
    python bench/verdict_times.py k04/weights-stddev-too-small    # one named catalogued mistake

1. ``pytest`` on a fresh clone of this checkout (every graded test TODO): wall seconds.
2. Per kata: a copy whose katas/ hold the reference solutions, except the kata's first catalogued unit
   mistake (tfkata/mistakes/kNN.toml) applied to its file — a learner whose kata is complete but for
   one wrong function, after a first ``kata run kNN`` of the complete kata (as a learner has it).
   ``kata run kNN`` there: when its early "✗ first failure" line appeared, when the report was done
   (wall seconds), and the first line it reports.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tfkata import mistakes, registry
from tfkata.paths import repo_root

ROOT = repo_root()
COPIED = ("katas", "solutions", "tests", "conftest.py", "pyproject.toml")


def timed(cmd: list[str], cwd: Path, early: str | None = None) -> tuple[float, int, str, float | None]:
    """Wall seconds, exit code, output, and when a line starting with ``early`` first appeared."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "COLUMNS": "160"}
    started = time.monotonic()
    seen = None
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        if seen is None and early and line.startswith(early):
            seen = time.monotonic() - started
        lines.append(line)
    code = proc.wait()
    return time.monotonic() - started, code, "".join(lines), seen


def first_pytest() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        seconds, code, out, _ = timed([sys.executable, "-m", "pytest"], clone)
        lines = out.strip().splitlines()
        print(f"first pytest on a fresh clone: {seconds:.1f} s, exit {code}, {len(lines)} lines; {lines[-1]}")


def wrong_unit(spec: str) -> None:
    """``kNN`` (its first catalogued unit mistake) or ``kNN/mistake-id``."""
    kata_id, _, wanted = spec.partition("/")
    kata = registry.get(kata_id)
    unit = [m for m in mistakes.load(kata.id) if not m.training and (not wanted or m.id == wanted)]
    if not unit:
        print(f"{kata.id}: no unit mistake catalogued")
        return
    m = unit[0]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "repo"
        copy.mkdir()
        for name in COPIED:
            src = ROOT / name
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, copy / name)
        for k in registry.katas():
            if (copy / k.path("solutions")).exists():
                shutil.copy2(copy / k.path("solutions"), copy / k.path("katas"))
        target = copy / kata.path("katas")
        # the run before the mistake, as a learner has it: the kata complete, recorded (kata run orders the
        # functions changed since the last run first, and shows the first failure as soon as it happens)
        timed([sys.executable, "-m", "tfkata", "run", kata.id], copy)
        target.write_text(mistakes.apply(m, target.read_text(encoding="utf-8")), encoding="utf-8")
        seconds, code, out, early = timed([sys.executable, "-m", "tfkata", "run", kata.id], copy, early="✗ ")
        failure = next((l for l in out.splitlines() if l.startswith("First failure")), "(no failure shown)")
        detail = out.split(failure, 1)[-1].strip().splitlines()[:1] if failure in out else []
        shown = f"first failure shown at {early:.1f} s, " if early is not None else "no early failure line, "
        print(f"{kata.id} with one wrong unit function ({m.id}): kata run {kata.id} -> {shown}report at {seconds:.1f} s, "
              f"exit {code}; {failure}: {detail[0][:120] if detail else ''}")


def main(argv: list[str]) -> None:
    if not argv:
        first_pytest()
        argv = ["k01", "k04", "k05", "k07", "k08"]
    for kata_id in argv:
        wrong_unit(kata_id)


if __name__ == "__main__":
    main(sys.argv[1:])
