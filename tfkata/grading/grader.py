"""Grade one submission as untrusted code, in its own process and temporary copy, with limits.

The parent (this module) owns the grade. For each submission it

1. copies the pristine checkout's ``tests/``, ``solutions/``, ``conftest.py`` and ``pyproject.toml`` and
   the stubs of ``katas/`` into a temporary folder, then writes the submission's kata files over the
   stubs (nothing else of the submission is taken);
2. adds a canary test that must fail (``tests/test_zz_tfkata_canary.py``): a submission that turns
   failures into passes (monkeypatching pytest or the plugin) makes it pass and is marked ``tampered``;
3. runs ``pytest`` there in a new process group (``--profile unit``: ``-m "not training"``), with a
   wall-clock limit and a memory limit on the whole group (polled from /proc), killing the group
   when either is passed; the child writes a results document to a path in the parent's own folder;
4. re-derives the grade from that document: only the tests of the pristine checkout count, each with
   the points of the pristine test (the baseline run of the stubs), a test that is missing counts as
   failed, and a document that is missing, malformed or has a passing canary gives no points.

What the child prints is never read for the grade. The child could still rewrite the results document
itself, or patch the harness in memory in a way that spares the canary: a local run is not a sandbox.
:mod:`tfkata.grading.flags` lists such code for the teacher (README "Teaching with tf-katas").
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tfkata import registry
from tfkata.grading.submissions import Submission
from tfkata.results import ResultsError, Run, TestResult

CANARY_FILE = "test_zz_tfkata_canary.py"
CANARY = '''"""Graded runs only (kata grade): this test must fail. If it passes, the submission changed how
failures are reported, and its grade is void."""


def test_tfkata_canary_must_fail():
    assert 1 == 2, "the canary fails on purpose"
'''
PROFILES = ("unit", "full")


@dataclasses.dataclass
class Limits:
    seconds: float = 1800.0  # the whole submission
    memory_mb: float = 6144.0  # the whole process group
    test_seconds: float = 60.0  # pytest --timeout for one unit test (training tests keep their own)


@dataclasses.dataclass
class Baseline:
    """The pristine checkout's graded tests (from a run of the stubs): id -> (kata, points, training)."""

    tests: dict

    @classmethod
    def from_run(cls, run: Run) -> "Baseline":
        """The graded tests the pristine checkout runs; a test it skips (slow without --runslow, gpu on a
        machine without one) is worth nothing here, as in plain pytest (a skip a submission causes is not)."""
        return cls({t.id: (t.kata, t.points, t.training) for t in run.tests if t.kata and t.status != "skip"})

    def for_katas(self, katas) -> dict:
        return {i: v for i, v in self.tests.items() if v[0] in katas}


@dataclasses.dataclass
class Graded:
    """One student's outcome, as the parent computed it."""

    name: str
    status: str  # graded | timeout | memory | crashed | tampered | unreadable
    seconds: float
    points: dict  # kata -> [earned, possible]
    tests: list  # TestResult, re-derived
    message: str = ""
    digest: str = ""

    @property
    def earned(self) -> int:
        return sum(e for e, _ in self.points.values())

    @property
    def possible(self) -> int:
        return sum(p for _, p in self.points.values())

    @property
    def percent(self) -> float:
        return 100.0 * self.earned / self.possible if self.possible else 0.0


def workspace(root: Path, work: Path, sources: dict | None) -> str:
    """A pristine grading copy of the checkout at ``root`` in ``work``, with ``sources`` over the stubs.
    The reference goes to a package of a random name (returned), so that ``import solutions`` fails."""
    from tfkata.mistakes import IGNORED

    hidden = f"_reference_{secrets.token_hex(8)}"
    for name, dest in (("tests", "tests"), ("solutions", hidden), ("katas", "katas"), ("tfkata", "tfkata")):
        # the child imports this copy of the harness, not the teacher's
        shutil.copytree(root / name, work / dest, ignore=shutil.ignore_patterns(*IGNORED, "harness"))
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy2(root / name, work / name)
    for module, text in (sources or {}).items():
        (work / "katas" / f"{module}.py").write_text(text, encoding="utf-8")
    (work / "tests" / CANARY_FILE).write_text(CANARY, encoding="utf-8")
    return hidden


def pytest_command(results: Path, katas, profile: str, limits: Limits) -> list[str]:
    files = [k.test_file for k in katas] + [f"tests/{CANARY_FILE}"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--results-json", str(results),
           f"--timeout={limits.test_seconds:g}", "--assume-done", ",".join(k.id for k in registry.katas()),
           *files]
    if profile == "unit":
        cmd += ["-m", "not training"]
    return cmd


def run_pytest(work: Path, cmd: list[str], limits: Limits, log: Path, reference: str) -> tuple[str, float]:
    """Run ``cmd`` in ``work`` in its own process group under the limits: (status, seconds);
    status is ``ran``, ``timeout`` or ``memory``."""
    from tfkata.paths import REFERENCE_ENV

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TFKATA_", "PYTEST_"))}
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0", **{REFERENCE_ENV: reference})
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        status = "ran"
        while proc.poll() is None:
            time.sleep(0.25)
            if time.monotonic() - started > limits.seconds:
                status = "timeout"
            elif group_rss_mb(proc.pid) > limits.memory_mb:
                status = "memory"
            if status != "ran":
                _kill_group(proc)
                break
        _kill_group(proc)  # a child the submission forked, left behind
        proc.wait()
    return status, time.monotonic() - started


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in the process group ``pgid`` (Linux /proc; 0 elsewhere)."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # field 5 (pgrp), after pid and (comm)
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # field 24: rss in pages
        except (OSError, ValueError, IndexError):
            continue
    return total / 2**20


def derive(name: str, results: Path, baseline: Baseline, katas, status: str, seconds: float,
           digest: str = "") -> Graded:
    """The grade from what the child wrote, checked against the pristine tests (see the module docstring)."""
    expected = baseline.for_katas({k.id for k in katas})
    run = None
    message = ""
    if results.is_file():
        try:
            run = Run.load(results)
        except ResultsError as exc:
            message = f"results document unreadable ({exc}): no points"
    elif status == "ran":
        status, message = "crashed", "the test run ended without its results (os._exit / sys.exit?): no points"
    got = {t.id: t for t in run.tests} if run else {}
    canary = next((t for t in got.values() if t.name == "test_tfkata_canary_must_fail"), None)
    if run is not None and (canary is None or canary.status != "fail"):
        status = "tampered"
        message = ("the canary test did not fail: the submission changed how failures are reported; no points"
                   if canary is not None else "the canary test is missing from the results: no points")
        got = {}
    if status == "timeout":
        message = message or "the submission ran past its time limit: the tests that had not finished got no points"
    if status == "memory":
        message = message or "the submission passed its memory limit: the tests that had not finished got no points"
    tests, points = [], {k.id: [0, 0] for k in katas}
    for test_id, (kata, worth, training) in expected.items():
        seen = got.get(test_id)
        ok = seen is not None and seen.status == "pass"
        entry = TestResult(id=test_id, name=test_id.split("::")[-1], kata=kata,
                           status=seen.status if seen else ("fail" if status != "ran" else "error"),
                           points=worth, points_earned=worth if ok else 0, training=training,
                           message=(seen.message if seen else "no result for this test (the run did not reach it)"),
                           covers=seen.covers if seen else [], printed=seen.printed if seen else None)
        tests.append(entry)
        points[kata][1] += worth
        points[kata][0] += entry.points_earned
    return Graded(name, "graded" if status == "ran" else status, round(seconds, 1), points, tests, message, digest)


def grade(sub: Submission, root: Path, baseline: Baseline, katas, profile: str, limits: Limits,
          keep: Path) -> Graded:
    """Grade one submission; what the child wrote is kept in ``keep`` (results.json, pytest.log)."""
    keep.mkdir(parents=True, exist_ok=True)
    results = keep / "child-results.json"
    results.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="tfkata-grade-") as tmp:
        work = Path(tmp) / "checkout"
        work.mkdir()
        hidden = workspace(root, work, sub.sources)
        cmd = pytest_command(results, katas, profile, limits)
        status, seconds = run_pytest(work, cmd, limits, keep / "pytest.log", hidden)
    return derive(sub.name, results, baseline, katas, status, seconds, sub.digest)


def baseline(root: Path, katas, profile: str, limits: Limits, keep: Path) -> Baseline:
    """Run the pristine stubs once: every graded test of the chosen katas, with its points."""
    keep.mkdir(parents=True, exist_ok=True)
    results = keep / "baseline-results.json"
    with tempfile.TemporaryDirectory(prefix="tfkata-baseline-") as tmp:
        work = Path(tmp) / "checkout"
        work.mkdir()
        hidden = workspace(root, work, None)
        run_pytest(work, pytest_command(results, katas, profile, limits), limits, keep / "baseline.log", hidden)
    try:
        return Baseline.from_run(Run.load(results))
    except ResultsError as exc:
        tail = (keep / "baseline.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"the pristine stubs could not be run ({exc}): " + " | ".join(tail)) from None


def to_dict(g: Graded) -> dict:
    return dataclasses.asdict(g)


def from_dict(data: dict) -> Graded:
    data = dict(data)
    data["tests"] = [TestResult(**t) for t in data["tests"]]
    return Graded(**data)


def dump(g: Graded, path: Path) -> None:
    path.write_text(json.dumps(to_dict(g), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
