"""A synthetic class for ``kata grade``: the reference, stubs, catalogued mistakes and attacks, graded in
parallel; prints the grade distribution and the throughput (submissions per hour) on this machine.

    python bench/grade_class.py --students 30 --katas k01,k03,n01,n03 --jobs 2 [--profile unit]

Student i holds every chosen kata: the reference, with every 5th student's katas left as stubs, and one
catalogued mistake per kata for a third of the students (a different one each); four more are attacks on
the grader (os._exit at import, turning failures into passes, importing the reference, an infinite loop).
The expected grade of each honest student is checked against plain ``pytest`` in a copy of the checkout
for a sample (``--verify N``).
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tfkata import registry  # noqa: E402
from tfkata.grading.classroom import grade_class  # noqa: E402
from tfkata.grading.grader import Limits  # noqa: E402
from tfkata.mistakes import apply, load  # noqa: E402
from tfkata.results import Run  # noqa: E402

ATTACKS = {
    "attack-exit": "import os\nos._exit(0)\n",
    "attack-patch": ("import _pytest.runner as r\n_o = r.CallInfo.from_call.__func__\n"
                     "def _s(cls, func, when, reraise=None):\n    i = _o(cls, func, when, reraise)\n"
                     "    i.excinfo = None\n    return i\nr.CallInfo.from_call = classmethod(_s)\n"),
    "attack-import": "from solutions.{module} import *  # noqa\n",
}


def build(folder: Path, n: int, katas, seed: int = 0) -> list[Path]:
    rng = random.Random(seed)
    paths = []
    for i in range(n):
        sub = folder / f"student{i:03d}" / "katas"
        sub.mkdir(parents=True)
        for k in katas:
            ref = (ROOT / "solutions" / f"{k.module}.py").read_text()
            stub = (ROOT / "katas" / f"{k.module}.py").read_text()
            text = ref
            if i % 5 == 4:
                text = stub
            elif i % 3 == 1:
                mistakes = [m for m in load(k.id) if not m.training]
                text = apply(mistakes[rng.randrange(len(mistakes))], ref)
            (sub / f"{k.module}.py").write_text(text)
        paths.append(sub.parent)
    k = katas[0]
    stub = (ROOT / "katas" / f"{k.module}.py").read_text()
    for name, code in ATTACKS.items():
        sub = folder / name / "katas"
        sub.mkdir(parents=True)
        (sub / f"{k.module}.py").write_text(stub + "\n" + code.format(module=k.module))
        paths.append(sub.parent)
    sub = folder / "attack-spin" / "katas"
    sub.mkdir(parents=True)
    (sub / f"{k.module}.py").write_text(stub.replace("raise NotImplementedError(", "while True: pass  # ("))
    paths.append(sub.parent)
    return paths


def plain_points(sub: Path, katas, profile: str) -> int:
    """A learner's own ``pytest`` in a copy of the checkout holding these kata files (the unit profile: without
    the training runs)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("katas", "solutions", "tests", "tfkata"):
            shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__", "harness"))
        for name in ("conftest.py", "pyproject.toml"):
            shutil.copy2(ROOT / name, work / name)
        for f in (sub / "katas").glob("*.py"):
            shutil.copy2(f, work / "katas" / f.name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TFKATA_")}
        unit = ["-m", "not training"] if profile == "unit" else []
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *unit,
                        "--assume-done", ",".join(k.id for k in registry.katas()), "--results-json",
                        str(work / "r.json"), *[k.test_file for k in katas]], cwd=work, env=env, capture_output=True)
        return sum(t.points_earned for t in Run.load(work / "r.json").tests if t.kata)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--students", type=int, default=30)
    p.add_argument("--katas", default="k01,k03,n01,n03")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--profile", default="unit")
    p.add_argument("--verify", type=int, default=4, help="check this many honest grades against plain pytest")
    args = p.parse_args()
    katas = [registry.get(k) for k in args.katas.split(",")]
    with tempfile.TemporaryDirectory(prefix="tfkata-class-") as tmp:
        paths = build(Path(tmp) / "subs", args.students, katas)
        out = Path(tmp) / "out"
        started = time.monotonic()
        results = grade_class([str(x) for x in paths], out, ROOT, katas=katas, profile=args.profile, jobs=args.jobs,
                              limits=Limits(seconds=900, memory_mb=6144, test_seconds=20), log=print)
        seconds = time.monotonic() - started
        by = {g.name: g for g in results}
        bad = [n for n in ATTACKS if by[n].earned > 0] + (["attack-spin"] if by["attack-spin"].earned else [])
        print(f"{len(results)} submissions in {seconds:.0f} s with {args.jobs} jobs: "
              f"{3600 * len(results) / seconds:.0f} submissions/hour ({args.profile}, katas {args.katas})")
        honest = [g.seconds for g in results if g.name.startswith("student")]
        if honest:
            each = sum(honest) / len(honest)
            print(f"honest submissions (reference, mistakes, stubs): {len(honest)}, {each:.0f} s each on average "
                  f"(one per job): about {3600 * args.jobs / each:.0f} per hour with {args.jobs} jobs")
        print(f"attacks scoring above their honest code (0): {bad or 'none'}")
        mismatches = []
        for name in [f"student{i:03d}" for i in range(min(args.verify, args.students))]:
            plain = plain_points(Path(tmp) / "subs" / name, katas, args.profile)
            print(f"  {name}: kata grade {by[name].earned}, plain pytest {plain}")
            if plain != by[name].earned:
                mismatches.append(name)
        print(f"grades different from plain pytest: {mismatches or 'none'}")
    return 1 if bad or mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
