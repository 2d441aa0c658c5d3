"""What a Gradescope assignment needs: time and peak memory of one autograder run on ONE CPU.

    python bench/gradescope_budget.py [--profile unit|full] [--katas k01,n01] [--cpu 0]

Builds the autograder zip (``kata grade --gradescope-zip``), unpacks it into a temporary folder laid out
like ``/autograder`` with the reference's kata files as the submission (every test runs: the worst case),
and runs ``run_autograder``'s command pinned to one CPU (``taskset -c``) under ``/usr/bin/time -v``.
Prints the wall time, the peak resident memory of the largest process (the graded pytest) and the score.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tfkata import registry  # noqa: E402
from tfkata.grading.gradescope import build_zip  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=("unit", "full"), default="unit")
    ap.add_argument("--katas", default="", help="comma-separated kata ids (default: all)")
    ap.add_argument("--cpu", default="0", help="the CPU list for taskset")
    args = ap.parse_args()
    katas = [registry.get(k).id for k in args.katas.split(",") if k] or [k.id for k in registry.katas()]
    with tempfile.TemporaryDirectory(prefix="gradescope-") as tmp:
        root = Path(tmp)
        zipped = root / "autograder.zip"
        build_zip(ROOT, zipped, katas=katas, profile=args.profile)
        with zipfile.ZipFile(zipped) as zf:
            zf.extractall(root / "unpacked")
        source = root / "unpacked" / "source"
        sub = root / "submission" / "katas"
        sub.mkdir(parents=True)
        for k in katas:
            shutil.copy2(ROOT / registry.get(k).path("solutions"), sub / f"{registry.get(k).module}.py")
        env = dict(os.environ, AUTOGRADER_ROOT=str(root))
        cmd = ["taskset", "-c", args.cpu, "/usr/bin/time", "-v", sys.executable, "-m", "tfkata.grading.gradescope", "run"]
        started = time.monotonic()
        done = subprocess.run(cmd, cwd=source, env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
        peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        doc = json.loads((root / "results" / "results.json").read_text())
        load = os.getloadavg()[0]
        print(f"profile {args.profile}, {len(katas)} katas, CPU {args.cpu}: {wall:.0f} s wall, "
              f"peak RSS {int(peak.group(1)) / 1024:.0f} MB (largest process), score {doc.get('score')} of "
              f"{sum(t.get('max_score', 0) for t in doc.get('tests', []))}, "
              f"{len(doc.get('tests', []))} tests; load average at the end {load:.1f}")
        return 0 if done.returncode == 0 else done.returncode


if __name__ == "__main__":
    sys.exit(main())
