"""Running a kata's graded tests for the ``kata`` command: one pytest subprocess against katas/.

The pytest plugin records each fully-run kata in ``.tfkata/`` (:mod:`tfkata.store`); this module starts
the run, waits for it (or lets ``kata watch`` cancel it), and returns the fresh progress rows. A kata
whose tests could not even be collected comes back with the run's message and the output's tail.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tfkata import registry, source
from tfkata.progress import Progress, progress
from tfkata.results import ResultsError, Run
from tfkata.store import Store


class RunFailed(Exception):
    """pytest stopped before grading anything; the message holds its output's tail."""


def need_pytest() -> str | None:
    if importlib.util.find_spec("pytest") is None:
        return "pytest is not installed in this Python; install the test extra: pip install -e '.[test]'"
    return None


def pytest_env() -> dict:
    """The environment of a learner's run: target katas (whatever the shell says)."""
    return {k: v for k, v in os.environ.items() if k != "TFKATA_TARGET"}


@dataclass
class Running:
    """A test run in progress (``kata watch`` may cancel it)."""

    katas: list[registry.Kata]
    proc: subprocess.Popen
    json_path: Path
    log_path: Path
    sources: dict[str, str] = field(default_factory=dict)  # kata id -> its file as this run grades it
    started: float = field(default_factory=time.time)

    @property
    def early_path(self) -> Path:
        return self.json_path.with_suffix(".first")

    def first_failure(self) -> dict | None:
        """The first graded failure of this run so far (the plugin writes it when it happens), else None."""
        try:
            return json.loads(self.early_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def done(self) -> bool:
        return self.proc.poll() is not None

    def cancel(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        for path in (self.json_path, self.log_path, self.early_path):
            path.unlink(missing_ok=True)

    def output_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def finish(self, store: Store) -> dict[str, Progress]:
        """Wait for the run; the fresh progress of its katas (RunFailed when nothing was graded)."""
        code = self.proc.wait()
        try:
            run = Run.load(self.json_path) if self.json_path.exists() else None
        except ResultsError:
            run = None
        tail = self.output_tail()
        self._cleanup()
        if run is None:
            raise RunFailed(f"pytest stopped before grading (exit code {code}):\n{tail}")
        for kata in self.katas:
            if kata.id in self.sources:
                store.remember_ran(kata, self.sources[kata.id])
        rows = {}
        for kata in self.katas:
            row = progress(store, kata)
            if row.results is None or row.results.started < self.started - 1:
                # nothing recorded for this kata in this run: show why instead of an old result
                row.results = run.for_kata(kata.id)
                row.results.message = (row.results.message or "no test ran") + (f"\n{tail}" if tail else "")
                row.stale = False
            rows[kata.id] = row
        return rows


def _first_functions(store: Store, kata: registry.Kata, text: str) -> list[str]:
    """What the learner touched since the last run (functions changed since, or failing then): their
    concept tests run first, so the verdict on the function just edited comes first, and soonest."""
    before = store.ran_source(kata)
    changed = source.changed(before, text) if before is not None else []
    last = store.load_results(kata)
    failing = [t.function for t in last.problems if t.status in ("fail", "error") and t.function] if last else []
    return list(dict.fromkeys(changed + failing))


def start(store: Store, katas: list[registry.Kata], *, full: bool = False) -> Running:
    """Start ``pytest`` on the katas' test files (against katas/) in the background."""
    store.dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="run-", suffix=".json", dir=store.dir)
    os.close(handle)
    json_path = Path(name)
    json_path.unlink()
    log_path = json_path.with_suffix(".log")
    sources, first = {}, []
    for kata in katas:
        try:
            sources[kata.id] = (store.root / kata.path("katas")).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        first += _first_functions(store, kata, sources[kata.id])
    cmd = [sys.executable, "-m", "pytest", *[k.test_file for k in katas], "-q", "-p", "no:cacheprovider",
           "--results-json", str(json_path), "--first-failure", str(json_path.with_suffix(".first"))]
    if first:
        cmd += ["--first-tests-of", ",".join(dict.fromkeys(first))]
    if full:
        cmd.append("--tb=long")
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=store.root, env=pytest_env(), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)
    return Running(list(katas), proc, json_path, log_path, sources)
