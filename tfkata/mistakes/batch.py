"""Many mistakes from one warm Python process: TensorFlow, Keras and pytest are imported once, then
each mistake runs in a child forked from that pristine process (``pytest.main`` on a temporary copy of
the checkout with the mistake applied), so no state passes from one mistake to the next.

:func:`tfkata.mistakes.run` starts a fresh interpreter per mistake (3–5 s of imports each, idle);
with several hundred catalogued mistakes that was most of the time, so ``python -m tfkata.mistakes``
(and CI) use :func:`run_many`: ``jobs`` worker processes, each forking its share. Forking is safe
here because the worker has only imported TensorFlow (measured: 2 OS threads, no op run yet). A child
that runs past ``timeout`` is killed and its mistake reported as an error; a worker that dies is
replaced for the mistakes left.

The worker's side: ``python -m tfkata.mistakes.batch --root ROOT --out FILE [--runslow] MISTAKES.json``
appends one JSON line per mistake to FILE.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tfkata.mistakes import Mistake, MistakeError, Outcome, check, copy_checkout, mutated_path, outcome_from, pytest_args


def _worker(root: Path, todo: list[tuple[Mistake, str]], out: Path, runslow: bool, timeout: float) -> None:
    import pytest  # noqa: F401  (warm: imported once, before the forks)

    import tfkata.plugin  # noqa: F401
    from tfkata.tfsetup import import_tensorflow

    import_tensorflow()
    with contextlib.suppress(ImportError):
        import keras  # noqa: F401
    # Each child parses the test file and the modules it imports again. In the worker's own copy of the
    # checkout the compiled files may be kept (PYTHONDONTWRITEBYTECODE or not): the test files never change
    # there, and the one file a mistake changes has its compiled copies removed before and after each run
    # (a .pyc is matched to its source by whole seconds and size: a mistake of the same length written in
    # the same second would be run as the one before). Measured, k01's 45 entries: 39 s before, 31 s after.
    sys.dont_write_bytecode = False
    # No third-party plugin is looked up by entry point (about 0.2 s a run); pytest-timeout is named.
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    with tempfile.TemporaryDirectory(prefix="tfkata-mistakes-") as tmp:
        work = Path(tmp)
        copy_checkout(root, work, finished=True)  # katas/ = the reference: only a learner-view run reads it
        os.chdir(work)
        _warm_up()
        for m, view in todo:
            started = time.monotonic()
            if m.training and not runslow:
                outcome = Outcome(m, caught=False, skipped=True, view=view)
            else:
                try:
                    mutated = check(m, root)
                except MistakeError as exc:
                    outcome = Outcome(m, caught=False, error=str(exc), view=view)
                else:
                    outcome = _fork_run(m, view, work, mutated, started, timeout)
            with out.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(outcome.to_dict()) + "\n")


# pytest's built-in plugins no catalogue run reads. unraisableexception alone cost 0.09 s a run (a full garbage
# collection of the worker's TensorFlow heap at exit, pytest 9.2 here); with the rest, k01's fixed cost per run
# went from 0.55 s to 0.44 s (measured, one child, near idle).
_UNUSED_PLUGINS = [arg for name in ("unraisableexception", "threadexception", "junitxml", "pastebin", "doctest",
                                    "stepwise", "setuponly", "setupplan") for arg in ("-p", f"no:{name}")]


def _warm_up() -> None:
    """Import once, before the forks, what every child imported again: pytest's built-in plugins, the
    harness's own modules, the legacy tf.compat.v1 layers and cells, and the verified MNIST arrays (read-only,
    kept by load_mnist). Never a kata, a solution or a test module: a mistake changes those. Measured, a
    child's fixed cost: about 0.2 s of harness imports, 0.4 s reading MNIST where a test uses it."""
    import importlib

    from _pytest.config import default_plugins

    for name in default_plugins:
        with contextlib.suppress(ImportError):
            importlib.import_module(f"_pytest.{name}")
    for name in ("pytest_timeout", "numpy.random", "tfkata.differential", "tfkata.feedback.diagnoses",
                 "tfkata.feedback.classify", "tfkata.feedback.curves", "tfkata.data.text", "tfkata.testing"):
        importlib.import_module(name)
    from tfkata.tfsetup import import_tensorflow

    tf = import_tensorflow()
    with contextlib.suppress(Exception):  # without tf_keras (TF >= 2.16) these are not there: a kata test says so
        tf.compat.v1.nn.rnn_cell.LSTMCell, tf.compat.v1.layers.Dense  # noqa: B018  (importing is the point)
    from tfkata.data.mnist import MnistDataError, load_mnist

    with contextlib.suppress(MnistDataError):
        load_mnist()


def _fork_run(m: Mistake, view: str, work: Path, mutated: str, started: float, timeout: float) -> Outcome:
    path = mutated_path(m, work, view)
    original = path.read_text(encoding="utf-8")
    results, log = work / "results.json", work / "pytest.log"
    results.unlink(missing_ok=True)
    args = [*pytest_args(m, view, results), "-p", "pytest_timeout", *_UNUSED_PLUGINS]
    _forget_compiled(path)
    path.write_text(mutated, encoding="utf-8")
    try:
        pid = os.fork()
        if pid == 0:  # the child: one pytest run, then gone
            code = 1
            try:
                import pytest

                with log.open("w", encoding="utf-8") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
                    code = int(pytest.main(args))
            finally:
                os._exit(code)
        code = _wait(pid, started + timeout)
        if code is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return Outcome(m, caught=False, seconds=time.monotonic() - started, view=view,
                           error=f"the test run took longer than {timeout:g} s and was stopped")
    finally:
        path.write_text(original, encoding="utf-8")
        _forget_compiled(path)
    output = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return outcome_from(m, results, code, output, time.monotonic() - started, view)


def _wait(pid: int, deadline: float) -> int | None:
    """The child's exit code, or None once ``deadline`` (time.monotonic) has passed. Woken by the child's exit
    (a pidfd), not by polling: at 0.05 s a poll, a run waited 25 ms on average after its child had ended."""
    fd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if fd is None:
                time.sleep(min(0.05, left))
            else:
                select.select([fd], [], [], left)
    finally:
        if fd is not None:
            os.close(fd)


def _forget_compiled(path: Path) -> None:
    """Remove the compiled copies of ``path`` (``__pycache__/NAME.*.pyc``)."""
    for pyc in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
        pyc.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the parent's side
def _outcome(by_key: dict, line: str) -> Outcome:
    data = json.loads(line)
    m, view = by_key[(f"{data['kata']}/{data['id']}", data["view"])]
    return Outcome(m, caught=data["caught"], test_id=data["test_id"], test_name=data["test_name"],
                   message=data["message"], seconds=data["seconds"], by_training=data["by_training"],
                   error=data["error"], skipped=data["status"] == "skipped", report=data.get("report"),
                   view=view, by_differential=data.get("by_differential", False), pointed=data.get("pointed"))


def _drive(chunk: list[tuple[Mistake, str]], root: Path, runslow: bool, timeout: float, report) -> None:
    by_key = {(m.key, view): (m, view) for m, view in chunk}
    pending = list(chunk)
    while pending:
        with tempfile.TemporaryDirectory(prefix="tfkata-batch-") as tmp:
            out, given = Path(tmp) / "outcomes.jsonl", Path(tmp) / "mistakes.json"
            out.touch()
            given.write_text(json.dumps([dict(dataclasses.asdict(m), view=view) for m, view in pending]),
                             encoding="utf-8")
            cmd = [sys.executable, "-m", "tfkata.mistakes.batch", "--root", str(root), "--out", str(out),
                   "--timeout", str(timeout), *(["--runslow"] if runslow else []), str(given)]
            env = {k: v for k, v in os.environ.items() if k != "TFKATA_TARGET"}
            errors = (Path(tmp) / "worker.log").open("w", encoding="utf-8")  # a file, never a pipe that fills up
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=errors, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            seen, last = 0, time.monotonic()
            stuck = None
            while True:
                text = out.read_text(encoding="utf-8")
                complete = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
                for line in complete[seen:]:
                    o = _outcome(by_key, line)
                    pending.remove((o.mistake, o.view))
                    report(o)
                    last = time.monotonic()
                seen = len(complete)
                if proc.poll() is not None:
                    break
                if time.monotonic() - last > timeout + 60:  # + the worker's imports
                    stuck = f"the test run took longer than {timeout:g} s and was stopped"
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    break
                time.sleep(0.2)
            errors.close()
            if pending and (stuck or proc.returncode != 0 or seen == 0):
                tail = (Path(tmp) / "worker.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
                err = stuck or f"the mistakes worker stopped (exit {proc.returncode}): " + " | ".join(tail)
                m, view = pending.pop(0)
                report(Outcome(m, caught=False, error=err, view=view))


def run_many(mistakes: list[Mistake], root: Path, *, runslow: bool = False, timeout: float = 600,
             jobs: int = 2, report=None, views: tuple[str, ...] = ("solutions",)) -> list[Outcome]:
    """Every mistake's outcome in each view (tfkata.mistakes.VIEWS), in the order given; ``report(outcome)``
    is called as each arrives."""
    got: dict[tuple[str, str], Outcome] = {}
    lock = threading.Lock()

    def collect(o: Outcome) -> None:
        with lock:
            got[(o.mistake.key, o.view)] = o
            if report is not None:
                report(o)

    todo = [(m, view) for m in mistakes for view in views]
    jobs = max(1, min(jobs, len(todo)))
    chunks = [todo[i::jobs] for i in range(jobs)]
    threads = [threading.Thread(target=_drive, args=(c, Path(root), runslow, timeout, collect)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [got[(m.key, view)] for m, view in todo]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfkata.mistakes.batch")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--runslow", action="store_true")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("mistakes", type=Path, help="a JSON list of the mistakes to run")
    args = parser.parse_args(argv)
    todo = []
    for d in json.loads(args.mistakes.read_text(encoding="utf-8")):
        view = d.pop("view")
        d["replace"] = tuple(tuple(pair) for pair in d["replace"])
        d["expect"] = tuple(d.get("expect", ()))
        todo.append((Mistake(**d), view))
    _worker(args.root.resolve(), todo, args.out, args.runslow, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
