"""What a graded test's failure means for the learner: a TODO, a wait for another kata, a time-out, or a
real failure with a one-line diagnosis first and only the learner's own code after.

The plugin calls :func:`classify` from ``pytest_runtest_makereport``; nothing here is a pytest hook.
"""
from __future__ import annotations

import contextlib
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

from tfkata import registry
from tfkata.feedback.diagnoses import diagnose, other_kata_todo
from tfkata.feedback.facts import (autograph_original, chain, find_todo, has_no_endless_loop, is_test_failure,
                                   learner_frame, loop_around, only_loop_in, split_message)
from tfkata.feedback.frames import learner_report

_TIMEOUT = re.compile(r"Timeout \(>([0-9.]+)s\) from pytest-timeout")


@dataclass
class Outcome:
    status: str | None = None  # todo | waiting | None (pytest's own: fail / error)
    message: str | None = None  # the one line
    report: str | None = None  # what replaces pytest's long report (None: keep pytest's)
    todo: Todo | None = None
    stuck: str | None = None  # the learner's function that did not return (time-out / watchdog)
    about: str | None = None  # the kata function the failure is about ("Stuck? kata hint K -f F")


def timeout_line(exc: BaseException, tb, target_dir: Path, kata_id: str | None, covers=(), lasting=()):
    """(first line, the function that did not return) for pytest-timeout's failure, else None; ``lasting``:
    see :func:`tfkata.feedback.facts.learner_frame`."""
    match = _TIMEOUT.search(str(exc))
    if not match:
        return None
    from tfkata.watchdog import Hang

    where = learner_frame(tb, target_dir, lasting)
    hang = Hang("time", float(match.group(1)), *(where or (None, None)))
    return hang_line(hang, kata_id, covers, target_dir), hang.function or next(iter(covers or ()), None)


def hang_line(hang, kata_id: str | None, covers, target_dir: Path | None = None) -> str:
    """The first line for a test the watchdog stopped (:class:`tfkata.watchdog.Hang`); where it stopped inside
    a ``while`` loop (of the learner's files under ``target_dir``), that loop's header."""
    name = hang.function or next(iter(covers or ()), None)
    who = f"{kata_id}: {name}" if name else "the test"
    module = loop = None
    if name and kata_id and target_dir is not None:
        with contextlib.suppress(KeyError):
            module = Path(target_dir) / f"{registry.get(kata_id).module}.py"
    if hang.where:
        loop = loop_around(hang.where, Path(target_dir).resolve().parent) if target_dir is not None else None
        who += f" ({loop or hang.where})"
    elif module is not None:  # none of the learner's frames ran: a tf.function's graph
        loop = only_loop_in(module, name, Path(target_dir).resolve().parent)
        who += f" (its loop {loop})" if loop else ""
    repeated = _repeated_scope()
    if repeated and hang.reason != "memory":
        return (f"{who} did not finish within {hang.limit:g} s, and its graph holds {repeated[1]} copies of "
                f"'{repeated[0]}': the graph grows at every step — ops built inside the loop (sgd_minimize, a train op, "
                "an optimizer) are added again each time and every step gets slower; build them once, before the "
                "loop, and only run them inside it")
    if hang.reason == "memory":
        return (f"{who} grew the process by {_size(hang.grown_mb)} (limit {_size(hang.limit)}) and was "
                f"stopped: it may never stop growing — a loop that keeps appending, or a tf.while_loop without a "
                f"bound")
    if loop is None and module is not None and has_no_endless_loop(module, name):
        return (f"{who} did not finish within {hang.limit:g} s and holds no loop that could run forever: it is "
                f"most likely slow here (a busy or slow machine, or far more work than the test asks). Raise the "
                f"limit to see: pytest --timeout={int(hang.limit) * 4}")
    return (f"{who} did not finish within {hang.limit:g} s: it may never return — a loop whose condition never "
            f"turns false, or a tf.while_loop without a bound. If it is only slow on this "
            f"machine, raise the limit: pytest --timeout={int(hang.limit) * 4}")


REPEATED_SCOPES = 50  # copies of one top-level name scope (gradients, gradients_1, ...) that only a loop builds


def _repeated_scope() -> tuple[str, int] | None:
    """(scope, copies) when the default graph (a graph-mode test's own) holds REPEATED_SCOPES or more numbered
    copies of one top-level name scope or op ("GradientDescent", "GradientDescent_1", ...): ops built at every step
    of a loop. TensorFlow is not imported here when nothing else has."""
    import sys

    tf = sys.modules.get("tensorflow")
    if tf is None or tf.executing_eagerly():
        return None
    try:
        names = {op.name.split("/")[0] for op in tf.compat.v1.get_default_graph().get_operations()}
    except Exception:  # noqa: BLE001 - a broken graph: no line from it
        return None
    copies: dict[str, int] = {}
    for name in names:
        base = re.sub(r"_\d+$", "", name)
        copies[base] = copies.get(base, 0) + 1
    base, count = max(copies.items(), key=lambda kv: kv[1], default=("", 0))
    return (base, count) if count >= REPEATED_SCOPES else None


def _size(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def classify(exc: BaseException, tb, *, kata: registry.Kata | None, target_dir: Path, tests_dir: Path,
             full: bool, hang=None, covers=(), lasting=()) -> Outcome:
    """The learner's view of one failed graded test (``full``: keep pytest's whole report); ``hang``: the
    watchdog stopped it (time or memory); ``lasting``: the frames it saw on the stack halfway to the limit.
    ``about`` names the function the failure is about."""
    got = _classify(exc, tb, kata=kata, target_dir=target_dir, tests_dir=tests_dir, full=full, hang=hang,
                    covers=covers, lasting=lasting)
    if kata is not None and got.status is None:
        got.about = got.stuck or blamed_function(tb, got.message, kata, covers, target_dir)
    return got


# A message that starts with a kata function's name: "train: …", "make_cell('lstm', 8): …", "Model.call: …",
# "attention_teacher_forced, in a tf.function: …".
_LEAD = re.compile(r"([A-Za-z_]\w*(?:\.\w+)?)(?:\(.*?\))?(?:, [^:]*)?:\s")


def blamed_function(tb, line: str | None, kata: registry.Kata, covers, target_dir: Path) -> str | None:
    """The function a failure is about: the one the message starts with (``"train: measure …"``: the test
    says whom it grades, even when the check fired inside a function ``train`` calls); else the deepest
    public function of the kata in the traceback (the one that raised, not the one that merely called
    it); else the covered function the message names first; else the test's first covered function."""
    first = (line or "").splitlines()[0] if line else ""
    lead = _LEAD.match(first)
    named = [n for n in (lead.group(1).split(".") if lead else ()) if n in kata.hints]
    if named:
        return named[0]
    deepest = deepest_kata_function(tb, kata, target_dir)
    if deepest:
        return deepest
    # a covered function the message names; else another kata function it names as code (`train` or
    # train(...)), never a plain word ("... and train the other 55,000" is about mnist_splits)
    for names, pattern in ((list(covers or ()), r"\b{}\b"), (list(kata.hints), r"`{0}\b|\b{0}\(")):
        found = [(m.start(), n) for n in names for m in [re.search(pattern.format(re.escape(n)), first)] if m]
        if found:
            return min(found)[1]
    return next(iter(covers or ()), None)


def deepest_kata_function(tb, kata: registry.Kata, target_dir: Path) -> str | None:
    """The deepest public function (or class, for a method) of ``kata``'s file under ``target_dir`` on the
    traceback ``tb``: the one that raised, not one that merely called it; AutoGraph's copies count as theirs."""
    root = Path(target_dir).resolve()
    deepest = None
    for frame, _ in traceback.walk_tb(tb):
        path = Path(frame.f_code.co_filename).resolve()
        name = frame.f_code.co_name
        if (converted := autograph_original(str(path), name)) in kata.hints:  # AutoGraph's copy in a tf.function
            deepest = converted
        elif root in path.parents and path.stem == kata.module and name in kata.hints:
            deepest = name
        elif root in path.parents and path.stem == kata.module and "self" in frame.f_locals:
            owner = type(frame.f_locals["self"]).__name__
            if owner in kata.hints:
                deepest = owner
    return deepest


def _classify(exc: BaseException, tb, *, kata: registry.Kata | None, target_dir: Path, tests_dir: Path,
              full: bool, hang=None, covers=(), lasting=()) -> Outcome:
    from tfkata.loader import Blocked, KataImportError

    if hang is not None:
        line = hang_line(hang, kata.id if kata else None, covers, target_dir)
        return Outcome(None, line, line, stuck=hang.function or next(iter(covers or ()), None))
    blocked = next((e for e in chain(exc, past_test_failures=True) if isinstance(e, Blocked)), None)
    if blocked is not None:
        return Outcome("waiting", str(blocked), str(blocked))

    todo = find_todo(exc, target_dir)
    if todo is not None and (kata is None or todo.kata in (kata.id, "?")):
        return Outcome("todo", todo.line_text, todo.line_text, todo)
    if todo is not None:
        line = other_kata_todo(exc, kata.id, target_dir)
        return Outcome("waiting", line, line, todo)
    if isinstance(exc, KataImportError):
        cause = exc.__cause__
        detail = "".join(traceback.format_exception_only(type(cause), cause)).strip() if cause else ""
        return Outcome(None, str(exc), f"{exc}\n{detail}".rstrip())
    kata_id = kata.id if kata else None
    timed_out = timeout_line(exc, tb, target_dir, kata_id, covers, lasting)
    line, stuck = timed_out if timed_out else (None, None)
    if line is None:
        found = diagnose(exc, target_dir=Path(target_dir), track=kata.track if kata else None)
        line = found.line if found else None
    if line is None and kata is not None and not is_test_failure(exc):
        # an error nothing explains, raised inside the kata's own code: the first line names the function it came
        # out of ("exact_match: TypeError: ..."), the traceback below shows the line
        where = deepest_kata_function(tb, kata, target_dir)
        line = f"{where}: {_first_line(exc)}" if where else None
    if full:
        return Outcome(None, line or _first_line(exc), None, stuck=stuck)
    text = learner_report(exc, target_dir=Path(target_dir), tests_dir=Path(tests_dir), message_first=line)
    return Outcome(None, line or _first_line(exc), text, stuck=stuck)


def _first_line(exc: BaseException) -> str:
    """The test's own sentence for an assert or pytest.fail, else ``Type: first line``."""
    head, _ = split_message(exc)
    if is_test_failure(exc):
        return head or "assertion failed"
    return f"{type(exc).__name__}: {head}"
