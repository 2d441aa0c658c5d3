"""Short tracebacks: what a learner sees of a failed graded test, in at most ~25 lines.

:func:`learner_report` gives, in order:

1. ONE line: ``message_first`` when the caller has one, else the diagnosis (tfkata/diagnoses.py)
   when a known TensorFlow error is recognised, else the exception's own message (for an
   ``AssertionError``: the test's message, without pytest's ``assert ...`` introspection);
2. the learner's own frames (files under ``target_dir``: katas/ or solutions/) and the test's frames
   (files under ``tests_dir``), each as ``  katas/k02_variables_scopes.py:31 in initialize`` plus
   its source line; frames inside TensorFlow, numpy, Keras, site-packages, pytest and tfkata are
   hidden, and counted in one line;
3. the exception's type and message, trimmed (TensorFlow's graph dumps and stack copies cut) to a
   few lines.

``pytest --tb=long`` still shows everything; this is the default view, not the only one.
"""
from __future__ import annotations

import linecache
import re
import traceback
from pathlib import Path

from tfkata.feedback.diagnoses import diagnose
from tfkata.feedback.facts import _ASSERT_INTRO, is_test_failure, split_message

MAX_MESSAGE_LINES = 6
MAX_LINE = 200
MAX_FRAMES = 7
HARNESS = ("/_pytest/", "/pytest/", "/pluggy/", "/tfkata/", "/pytest_timeout", "/runpy.py")
TENSORFLOW = ("/tensorflow/", "/keras/", "/tf_keras/")


def learner_report(
    excinfo_or_exc,
    *,
    target_dir: Path,
    tests_dir: Path,
    message_first: str | None = None,
    under_test: str | None = None,
) -> str:
    """The short report of a failure (see the module docstring); ``excinfo_or_exc``: a pytest
    ``ExceptionInfo`` or the exception itself. ``under_test`` (a kata id) lets a TODO raised from
    another kata's file be explained (k08 calling an unwritten k07 function)."""
    exc = excinfo_or_exc if isinstance(excinfo_or_exc, BaseException) else excinfo_or_exc.value
    target_dir, tests_dir = Path(target_dir).resolve(), Path(tests_dir).resolve()
    own_head, own_rest = split_message(exc)
    first = message_first
    if first is None:
        found = diagnose(exc, target_dir=target_dir, under_test=under_test)
        first = found.line if found else None
    if first is None:
        # the exception's own message is the headline; the tail then carries only what follows it
        first = own_head if is_test_failure(exc) else f"{type(exc).__name__}: {own_head}"
        tail_head = None
    else:
        tail_head = f"{type(exc).__name__}: {own_head}" if own_head else type(exc).__name__
    lines = [first.strip().splitlines()[0] if first.strip() else type(exc).__name__]
    lines += frame_lines(exc, target_dir, tests_dir)
    tail = ([tail_head] if tail_head else []) + own_rest
    if is_test_failure(exc) and tail_head is None and own_rest:
        # the test's own sentence is the headline; pytest's `assert ...` introspection (array dumps,
        # reprs) only repeats it in noise: keep it for a bare assert, which has nothing else to say
        tail = [] if own_head and _ASSERT_INTRO.match(own_rest[0]) else [type(exc).__name__ + ":"] + own_rest
    lines += _clip(tail)
    return "\n".join(lines)


_ERROR_LINE = re.compile(r"^\s*[\w.]*(Error|Exception)\b[^:]*:")


def _clip(lines: list[str]) -> list[str]:
    """At most MAX_MESSAGE_LINES lines, each cut at MAX_LINE; when lines are folded, the last
    ``SomethingError: ...`` line among them (TensorFlow's and Keras's real message) still shows."""
    cut = [l if len(l) <= MAX_LINE else l[: MAX_LINE - 3] + "..." for l in lines]
    if len(lines) <= MAX_MESSAGE_LINES:
        return cut
    last_error = next((i for i in range(len(lines) - 1, MAX_MESSAGE_LINES - 1, -1) if _ERROR_LINE.match(lines[i])), None)
    keep = MAX_MESSAGE_LINES - (1 if last_error is not None else 0)
    out = cut[:keep]
    folded = len(lines) - keep - (1 if last_error is not None else 0)
    if folded:
        out.append(f"  ... ({folded} more lines: pytest --tb=long shows them)")
    if last_error is not None:
        out.append(cut[last_error])
    return out


def _kind(path: str, target_dir: Path, tests_dir: Path) -> str:
    """'own' (the learner's or the test's file), 'harness' (pytest, tfkata) or 'library'."""
    resolved = Path(path).resolve()
    if target_dir in resolved.parents or tests_dir in resolved.parents:
        return "own"
    posix = resolved.as_posix()
    if any(part in posix for part in HARNESS):
        return "harness"
    return "library"


def frame_lines(exc: BaseException, target_dir: Path, tests_dir: Path) -> list[str]:
    """The learner's and the test's frames (2 lines each), then one line counting the hidden ones."""
    base = _common_root(target_dir, tests_dir)
    shown, hidden, tf_hidden = [], 0, False
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        path = frame.f_code.co_filename
        kind = _kind(path, target_dir, tests_dir)
        if kind == "own":
            try:
                rel = Path(path).resolve().relative_to(base).as_posix()
            except ValueError:
                rel = path
            code = linecache.getline(path, lineno).strip()
            shown.append([f"  {rel}:{lineno} in {frame.f_code.co_name}"] + ([f"    {code}"] if code else []))
        elif kind == "library" and shown:  # frames before the test's own are pytest's, not TF's
            hidden += 1
            tf_hidden = tf_hidden or any(p in Path(path).as_posix() for p in TENSORFLOW)
    if len(shown) > MAX_FRAMES:
        skipped = len(shown) - MAX_FRAMES
        shown = shown[:1] + [[f"  ... ({skipped} more of your frames)"]] + shown[-(MAX_FRAMES - 1):]
    out = [line for block in shown for line in block]
    if hidden:
        where = "TensorFlow" if tf_hidden else "libraries"
        out.append(f"  ({hidden} frame{'s' if hidden != 1 else ''} inside {where} hidden: pytest --tb=long shows them)")
    return out


def _common_root(a: Path, b: Path) -> Path:
    """The folder that paths are shown relative to: the checkout holding katas/ and tests/."""
    for folder in (a.parent, *a.parent.parents):
        if folder == b or folder in b.parents:
            return folder
    return a.parent
