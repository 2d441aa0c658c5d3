"""Nothing hangs: a thread that stops a test TensorFlow keeps busy in C++, or that eats memory.

pytest-timeout's signal stops a Python loop at the test's limit, but a signal handler runs only when the
main thread executes Python again: a ``tf.while_loop`` without a bound inside ``Session.run`` or a
``tf.function`` never gives it the chance (measured: 15 min, 7-10 GB, Ctrl-C ignored). So while a
test runs, this module

* makes every eager function call cancellable (TensorFlow's own CancellationManager, handed to
  ``execute_with_cancellation`` for the calls that would have gone to ``execute``) and records every
  ``tf.compat.v1`` session opened;
* watches from a thread: once the test has run past its limit (plus a second, so the signal comes
  first for a Python loop), or its process has grown by more than the memory limit, it records which
  function of the learner was running (the main thread's Python stack), cancels the eager calls and
  closes the sessions (TensorFlow then raises ``CancelledError`` out of ``run``), and sends the main
  thread a signal whose handler raises :class:`Stopped`. pytest-timeout's own signal is pending too, and
  which of the two the main thread handles first depends on when TensorFlow gives it back: inside a
  test's phases its handler is wrapped (:func:`phase`) so that, once the watchdog has fired, whichever
  comes first raises :class:`Stopped` once and the other does nothing (no half-printed stack dump);
* as a last resort, if the test is still running long after that (a wait nothing can cancel) or keeps
  growing to twice the memory limit, writes one line naming the test and ends the process, rather than
  leave the learner waiting (or the machine swapping) for ever.

The plugin turns the record (:class:`Hang`) into the learner's first line and stops calling the
function for the rest of the run (:func:`tfkata.loader.block`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
import weakref
from pathlib import Path

GRACE_S = 1.0  # after the limit: pytest-timeout's signal stops a Python loop first
LAST_RESORT_S = 20.0  # after cancelling: still running means nothing can stop it but ending the process
MEMORY_LIMIT_MB = 4096  # growth of the process within one test
POLL_S = 0.1
_SIGNAL = getattr(signal, "SIGUSR1", None)


class Stopped(BaseException):  # not Exception: a learner's `except Exception` must not swallow it
    """Raised in the test by the watchdog (time or memory); the plugin reads the :class:`Hang` record."""


@dataclasses.dataclass
class Hang:
    reason: str  # "time" | "memory"
    limit: float  # seconds, or MB for memory
    function: str | None = None  # the learner's function that was running (innermost public one)
    where: str | None = None  # "katas/k07_seq2seq.py:88"
    grown_mb: float = 0.0


@dataclasses.dataclass
class _Job:
    item: object
    limit: float  # seconds; 0: no time limit
    started: float
    rss0: float
    learner_dir: Path
    fired: float | None = None
    hang: Hang | None = None
    sessions: "weakref.WeakSet" = dataclasses.field(default_factory=weakref.WeakSet)
    cancel: object = None  # a CancellationManager
    # True while the test's setup, call or teardown runs (pytest's CallInfo turns Stopped into a failure
    # there); outside them the main thread is in the harness or pytest, where Stopped would end the run
    # with an INTERNALERROR: the handler then does nothing (the Hang record still tells the verdict)
    in_phase: bool = False
    stopped: bool = False  # Stopped raised (by either signal): the other one does nothing
    timing_out: bool = False  # pytest-timeout's handler is running (a Python loop): let it finish its failure
    # the main thread's frames halfway to the limit: the learner's deepest one still there when the limit
    # comes is the function that never returned (not a function it calls again and again)
    lasting: tuple = ()
    own: str | None = None  # the test's kata module ("k08_attention"): its loops are the likely hang


_lock = threading.Lock()
_job: list[_Job] = []
_thread: list[threading.Thread] = []
_main = threading.main_thread().ident
_patched: list[bool] = []
memory_limit_mb: list[float] = [MEMORY_LIMIT_MB]


def rss_mb() -> float:
    """This process's resident memory in MB (Linux: now; elsewhere: the peak so far)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _ignore(signum, frame):  # SIG_IGN would make Python warn "Signal 14 ignored due to race condition"
    return None


def _stop(job: "_Job | None") -> bool:
    """Handle a signal for a test the watchdog fired on: raise :class:`Stopped` once (inside a phase), do
    nothing after that. False: the watchdog has not fired (the signal is somebody else's business)."""
    if job is None or job.hang is None:
        return False
    if job.stopped or job.timing_out:
        return True
    if hasattr(signal, "SIGALRM"):
        # pytest-timeout's SIGALRM may still be pending: from now on it does nothing (pytest-timeout puts
        # its own handler back for the next test)
        signal.signal(signal.SIGALRM, _ignore)
    if job.in_phase:
        job.stopped = True
        raise Stopped(f"stopped by the tf-katas watchdog ({job.hang.reason})")
    return True


def _on_signal(signum, frame):
    _stop(_job[0] if _job else None)


def _wrap_timeout_handler(job: _Job) -> None:
    """Put a wrapper around pytest-timeout's SIGALRM handler for this test (main thread only): once the
    watchdog has fired the wrapper stops the test itself; before that it calls pytest-timeout's handler,
    marking the job so that the watchdog's own signal, if it comes meanwhile, does not cut its failure short."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        return
    handler = signal.getsignal(signal.SIGALRM)
    if not callable(handler) or getattr(handler, "_tfkata_wrapped", False) or handler is _ignore:
        return

    def wrapped(signum, frame):
        if _stop(job):
            return
        job.timing_out = True
        handler(signum, frame)

    wrapped._tfkata_wrapped = True
    signal.signal(signal.SIGALRM, wrapped)


def install() -> None:
    """Patch TensorFlow (eager calls cancellable, sessions recorded) and the signal handler; once."""
    if _patched:
        return
    _patched.append(True)
    from tensorflow.python.client import session as session_module
    from tensorflow.python.eager import cancellation, execute

    original_init = session_module.BaseSession.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        job = _job[0] if _job else None
        if job is not None:
            job.sessions.add(self)

    session_module.BaseSession.__init__ = init

    plain = execute.execute
    with_cancellation = execute.execute_with_cancellation

    def execute_cancellable(op_name, num_outputs, inputs, attrs, ctx, name=None):
        job = _job[0] if _job else None
        if job is None or job.cancel is None:
            return plain(op_name, num_outputs, inputs, attrs, ctx, name)
        return with_cancellation(op_name, num_outputs, inputs, attrs, ctx, job.cancel, name)

    execute.execute = execute_cancellable
    _cancellation[:] = [cancellation]
    if _SIGNAL is not None and threading.current_thread() is threading.main_thread():
        signal.signal(_SIGNAL, _on_signal)


_cancellation: list = []


@contextlib.contextmanager
def phase():
    """Around one of the test's phases (setup, call, teardown): where the watchdog's signal may stop it."""
    job = _job[0] if _job else None
    if job is None:
        yield
        return
    _wrap_timeout_handler(job)
    job.in_phase = True
    try:
        yield
    finally:
        job.in_phase = False


@contextlib.contextmanager
def watch(item, limit: float, learner_dir: Path, own: str | None = None):
    """Watch one test's call: ``limit`` seconds (0: no time limit) and the memory limit; ``own``: the test's
    kata module."""
    install()
    job = _Job(item, float(limit or 0), time.monotonic(), rss_mb(), Path(learner_dir).resolve(), own=own)
    if _cancellation:
        job.cancel = _cancellation[0].CancellationManager()
    with _lock:
        _job[:] = [job]
    _ensure_thread()
    try:
        yield job
    finally:
        with _lock:
            _job.clear()


def _ensure_thread() -> None:
    if _thread and _thread[0].is_alive():
        return
    thread = threading.Thread(target=_loop, name="tfkata-watchdog", daemon=True)
    _thread[:] = [thread]
    thread.start()


def _loop() -> None:
    while True:
        time.sleep(POLL_S)
        with _lock:
            job = _job[0] if _job else None
        if job is None:
            continue
        now = time.monotonic()
        grown = rss_mb() - job.rss0
        if job.fired is not None:
            # still running long after the cancel, or still growing to twice the limit: nothing stops it
            if now - job.fired > LAST_RESORT_S or (memory_limit_mb[0] and grown > 2 * memory_limit_mb[0]):
                _last_resort(job)
            continue
        if job.limit and not job.lasting and now - job.started > job.limit / 2:
            job.lasting = _main_frames()
            with contextlib.suppress(AttributeError):  # pytest-timeout's failure is read with them too
                job.item._tfkata_lasting = job.lasting
        if memory_limit_mb[0] and grown > memory_limit_mb[0]:
            _fire(job, Hang("memory", memory_limit_mb[0], grown_mb=grown))
        elif job.limit and now - job.started > job.limit + GRACE_S:
            _fire(job, Hang("time", job.limit))


def _fire(job: _Job, hang: Hang) -> None:
    hang.function, hang.where = _running_function(job.learner_dir, list(job.sessions), job.lasting, job.own)
    job.hang, job.fired = hang, time.monotonic()
    job.item._tfkata_hang = hang  # the plugin's report for this test reads it
    # the signal first: it is pending before TensorFlow gives the main thread back, so the thread handles
    # it (number 10) before pytest-timeout's SIGALRM (14), which the wrapper would also turn into Stopped
    if _SIGNAL is not None and _main is not None:
        with contextlib.suppress(Exception):
            signal.pthread_kill(_main, _SIGNAL)
    if job.cancel is not None:
        job.cancel.start_cancel()
    for sess in list(job.sessions):
        with contextlib.suppress(Exception):
            sess.close()


def _main_frames() -> tuple:
    """The main thread's frames, innermost first."""
    frames, frame = [], sys._current_frames().get(_main)
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    return tuple(frames)


def _running_function(learner_dir: Path, sessions=(), lasting=(), own: str | None = None) -> tuple[str | None, str | None]:
    """The innermost frame of the learner's code on the main thread's stack: (function, file:line), or the
    innermost that was already there halfway to the limit (``lasting``: a loop calling another of the
    learner's functions shows a new frame of that one each time). When the main thread waits in
    ``Session.run``, the learner's code that BUILT the graph's loops is the better answer (a
    ``tf.while_loop`` that never ends was made there, not where ``run`` was called)."""
    from tfkata.feedback.facts import deepest_learner_frame

    frames = _main_frames()
    if frames and sessions and frames[0].f_code.co_filename.replace("\\", "/").endswith("client/session.py"):
        built = _loop_builder(learner_dir, sessions, own)
        if built:
            return built
    outermost_first = ((f, f.f_lineno) for f in reversed(frames))
    return deepest_learner_frame(outermost_first, Path(learner_dir).resolve(), lasting) or (None, None)


def _loop_builder(learner_dir: Path, sessions, own: str | None = None) -> tuple[str, str] | None:
    """The learner's function that created a while loop in a running session's graph (from the op's
    creation traceback), or None. Of several loops, the last one built in the test's own kata file (``own``,
    a module name) is the likely one: a decoder's loop comes after the encoder's, which ends (k08's tests
    also build k07's encoder)."""
    root = Path(learner_dir).resolve()
    found: list[tuple[bool, tuple[str, str]]] = []
    for sess in list(sessions):
        try:
            ops = sess.graph.get_operations()
        except Exception:  # noqa: BLE001 - a closed or odd session: no answer from it
            continue
        for op in ops:
            if op.type not in ("LoopCond", "While", "StatelessWhile"):
                continue
            try:
                frames = list(op.traceback)
            except Exception:  # noqa: BLE001
                continue
            for entry in reversed(frames):  # innermost first
                filename, lineno, name = entry[0], entry[1], entry[2]
                try:
                    path = Path(filename).resolve()
                except OSError:
                    continue
                if root in path.parents and not name.startswith("<"):
                    found.append((path.stem == own, (name, f"{path.relative_to(root.parent).as_posix()}:{lineno}")))
                    break
    mine = [label for is_own, label in found if is_own]
    return (mine or [label for _, label in found] or [None])[-1]


def _last_resort(job: _Job) -> None:
    """Nothing cancelled the test: say so on the terminal and end the run (exit status 3)."""
    hang = job.hang
    what = f"{hang.function} ({hang.where})" if hang and hang.function else getattr(job.item, "nodeid", "a test")
    text = (f"\ntf-katas: {what} is still running after it was cancelled ({hang.reason if hang else 'time'} "
            f"limit): it may never return and TensorFlow cannot stop it. The run ends here; fix that function, "
            f"then run again.\n")
    with contextlib.suppress(Exception):
        os.write(2, text.encode())
    os._exit(3)
