"""Right answers written by fresh-eyes reviewers must keep passing: run each against today's tests.

``bench/right_answers/<round>_<kata>.py`` is a whole kata file a reviewer wrote from the docstrings alone
(rounds Z2-Z4 of issue 19) and that passed every test then. For each, a scratch copy of this checkout gets the
reference in every other ``katas/`` file (so twins and prerequisites pass), that file in its own place, and
the kata's unit tests run (training tests too with ``--training``), after the tests of the katas it waits for
(its twin, its ``needs``: the reference passes them, so its own equivalence tests run too). A failure is either a right answer the
tests now refuse (a wrong verdict to fix) or a requirement added since the file was written (then the file
is updated here and the note says so).

    python bench/right_answers.py [--jobs 2] [--training] [--round Z6] [kata ...]
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tfkata import registry  # noqa: E402

CORPUS = ROOT / "bench" / "right_answers"


def _scratch(parent: Path, n: int) -> Path:
    copy = parent / f"clone{n}"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", ".tfkata", "kata-output", "__pycache__",
                                                              ".pytest_cache", "right_answers"))
    for solution in (copy / "solutions").glob("[kn][0-9][0-9]_*.py"):
        shutil.copy(solution, copy / "katas" / solution.name)
    return copy


def _needed(kata: registry.Kata) -> list[registry.Kata]:
    """The katas whose passing this kata's tests wait for (its twin, its ``needs`` markers), theirs first."""
    text = (ROOT / "tests" / f"test_{kata.module}.py").read_text(encoding="utf-8")
    ids = set(re.findall(r'mark\.needs\("(\w+)"\)', text)) | ({kata.twin} if kata.twin else set())
    out: list[registry.Kata] = []
    for other in sorted((registry.get(i) for i in ids), key=lambda k: k.id):
        out += [k for k in _needed(other) + [other] if k not in out]
    return out


def _run(copy: Path, answer: Path, training: bool) -> tuple[str, str, float]:
    kata = registry.get(answer.stem.split("_", 1)[1])
    target = copy / "katas" / f"{kata.module}.py"
    shutil.copy(answer, target)
    started = time.monotonic()
    files = [f"tests/test_{k.module}.py" for k in _needed(kata) + [kata]]  # the needed ones pass first (the reference)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q", "--no-header", *files]
            + ([] if training else ["-m", "not training"]),
            cwd=copy, capture_output=True, text=True, timeout=1800)
        lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
        summary = next((ln for ln in reversed(lines) if " passed" in ln or " failed" in ln), lines[-1] if lines else "")
        failures = [ln for ln in out.stdout.splitlines() if ln.startswith("FAILED ")]
        verdict = "ok" if out.returncode == 0 else "FAILS"
        return verdict, summary + ("".join(f"\n      {f}" for f in failures)), time.monotonic() - started
    finally:
        shutil.copy(copy / "solutions" / f"{kata.module}.py", target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("katas", nargs="*", help="kata ids (default: every file of the corpus)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--training", action="store_true", help="also the training tests (minutes each)")
    parser.add_argument("--round", default="", help="only the files of one review round (Z6: Z6A_k01.py, ...)")
    args = parser.parse_args()
    wanted = {registry.get(k).id for k in args.katas}
    answers = [a for a in sorted(CORPUS.glob(f"{args.round}*_*.py")) if not wanted or a.stem.split("_", 1)[1] in wanted]
    with tempfile.TemporaryDirectory(prefix="right-answers-") as tmp:
        copies = [_scratch(Path(tmp), n) for n in range(args.jobs)]
        slots = list(copies)

        def one(answer: Path):
            copy = slots.pop()
            try:
                return answer, _run(copy, answer, args.training)
            finally:
                slots.append(copy)

        failed = 0
        with ThreadPoolExecutor(args.jobs) as pool:
            for answer, (verdict, summary, seconds) in pool.map(one, answers):
                failed += verdict != "ok"
                print(f"{answer.stem:12s} {verdict:5s} {seconds:6.1f}s  {summary}", flush=True)
    print(f"{len(answers)} right answers, {failed} fail")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
