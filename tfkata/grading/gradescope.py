"""Gradescope's autograder: the zip a teacher uploads, and the run that writes ``results/results.json``.

    kata grade --gradescope-zip autograder.zip [--katas k01,k02] [--profile unit|full]

builds a zip holding ``setup.sh`` (installs this repository and TensorFlow into the image),
``run_autograder`` (calls ``python -m tfkata.grading.gradescope run``) and the repository itself
(``source/``: katas/ stubs, solutions/, tests/, tfkata/, conftest.py, pyproject.toml). On Gradescope,
``run_autograder`` grades ``/autograder/submission`` exactly as ``kata grade`` grades one student (its
own process and copy, limits, points re-derived from the pristine tests, canary) and writes
``/autograder/results/results.json`` in Gradescope's format: one entry per graded test (``score``,
``max_score``, ``status``, ``name``, ``number``, ``output``, ``visibility``), ``execution_time``, and a
``leaderboard`` with the figures the training tests reached. ``AUTOGRADER_ROOT`` (default
``/autograder``) lets the same script run against a folder laid out the same way (the repository's
tests do so; no Docker engine is needed).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import zipfile
from pathlib import Path

from tfkata import registry

CONFIG = "tfkata-autograder.json"
SCHEMA = Path(__file__).with_name("gradescope-results.schema.json")
SOURCE_PARTS = ("katas", "solutions", "tests", "tfkata", "conftest.py", "pyproject.toml", "README.md", "LICENSE")
SKIP = ("__pycache__", ".tfkata", "kata-output", ".pytest_cache", "harness")

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, when the image is built: Python, then this repository and TensorFlow {line}.
set -euo pipefail
apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip git >/dev/null
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install -q --upgrade pip
/autograder/venv/bin/pip install -q -e "/autograder/source[test,{extra}]"
/autograder/venv/bin/python -c "from tfkata.tfsetup import import_tensorflow as t; print('TensorFlow', t().__version__)"
"""
RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade /autograder/submission, write results/results.json.
cd /autograder/source
exec /autograder/venv/bin/python -m tfkata.grading.gradescope run
"""


def _files(root: Path):
    for part in SOURCE_PARTS:
        path = root / part
        if path.is_file():
            yield path, part
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                rel = file.relative_to(root)
                if file.is_file() and not any(s in rel.parts for s in SKIP) and file.suffix != ".pyc":
                    yield file, rel.as_posix()


def build_zip(root: Path, out: Path, *, katas: list[str], profile: str, extra: str = "tf221",
              after_due_date: bool = False) -> Path:
    """The autograder zip for ``katas`` (ids) and ``profile``; ``extra`` picks the TensorFlow line."""
    out.parent.mkdir(parents=True, exist_ok=True)
    config = {"katas": katas, "profile": profile, "training_after_due_date": after_due_date}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (("setup.sh", SETUP_SH.format(line=extra, extra=extra)), ("run_autograder", RUN_AUTOGRADER)):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            zf.writestr(info, text)
        for file, rel in _files(root):
            zf.write(file, f"source/{rel}")
        zf.writestr(f"source/{CONFIG}", json.dumps(config, indent=1))
    return out


def results_document(graded, katas, *, after_due_date: bool = False, seconds: float = 0.0) -> dict:
    """Gradescope's results.json for one graded submission (:class:`tfkata.grading.grader.Graded`)."""
    order = {k.id: i + 1 for i, k in enumerate(katas)}
    tests, leaderboard, count = [], [], {}
    for t in graded.tests:
        count[t.kata] = count.get(t.kata, 0) + 1
        first = (t.message or "").strip().splitlines()[0] if (t.message or "").strip() else ""
        entry = {
            "name": f"{t.kata} · {t.name}",
            "number": f"{order.get(t.kata, 0)}.{count[t.kata]}",
            "score": float(t.points_earned),
            "max_score": float(t.points),
            "status": "passed" if t.points_earned == t.points and t.points else "failed",
            "output": first if t.points_earned < t.points else "",
            "visibility": "after_due_date" if (after_due_date and t.training) else "visible",
        }
        tests.append(entry)
        figure = figures(t.printed) if t.training and t.points_earned else None
        if figure is not None:
            leaderboard.append({"name": f"{t.kata} {t.name}", "value": figure})
    leaderboard.append({"name": "points", "value": graded.earned})
    doc = {
        "score": float(graded.earned),
        "execution_time": int(round(seconds or graded.seconds)),
        "output": f"tf-katas: {graded.earned}/{graded.possible} points ({graded.percent:.0f} %) — {graded.status}"
                  + (f". {graded.message}" if graded.message else ""),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "leaderboard": leaderboard,
    }
    return doc


def figures(printed: str | None) -> float | None:
    """The last number a training test printed (its accuracy or perplexity), for the leaderboard."""
    found = re.findall(r"[-+]?\d*\.\d+|\d+", printed or "")
    return float(found[-1]) if found else None


def run(root_dir: Path, source: Path) -> dict:
    """Grade ``root_dir/submission`` with the checkout at ``source``; write ``root_dir/results/results.json``."""
    from tfkata.grading import grader
    from tfkata.grading.submissions import SubmissionError, read_submission

    started = time.monotonic()
    config = json.loads((source / CONFIG).read_text()) if (source / CONFIG).is_file() else {}
    katas = [registry.get(k) for k in config.get("katas") or [k.id for k in registry.katas()]]
    profile = config.get("profile", "unit")
    results = root_dir / "results"
    results.mkdir(parents=True, exist_ok=True)
    work = root_dir / "tfkata-work"
    limits = grader.Limits(seconds=float(os.environ.get("TFKATA_GRADE_SECONDS", 3000)),
                           memory_mb=float(os.environ.get("TFKATA_GRADE_MEMORY_MB", 6144)))
    try:
        sub = read_submission(root_dir / "submission")
    except SubmissionError as exc:
        doc = {"score": 0.0, "execution_time": 0, "tests": [], "visibility": "visible",
               "output": f"tf-katas could not read the submission: {exc}. Upload katas/*.py (or the repository)."}
    else:
        base = grader.baseline(source, katas, profile, limits, work / "baseline")
        graded = grader.grade(sub, source, base, katas, profile, limits, work / "student")
        doc = results_document(graded, katas, after_due_date=config.get("training_after_due_date", False),
                               seconds=time.monotonic() - started)
    (results / "results.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfkata.grading.gradescope")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="grade AUTOGRADER_ROOT/submission into AUTOGRADER_ROOT/results/results.json")
    args = parser.parse_args(argv)
    if args.command == "run":
        root_dir = Path(os.environ.get("AUTOGRADER_ROOT", "/autograder"))
        source = Path(__file__).resolve().parents[2]
        doc = run(root_dir, source)
        print(doc["output"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
