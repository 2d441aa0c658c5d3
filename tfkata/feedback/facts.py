"""The facts of a failure, read from the exception itself: its chain, whether it is the test's own
failure, the stub that raised a TODO, the learner's deepest frame, and its message without
TensorFlow's noise. The bottom room of :mod:`tfkata.feedback`: it imports nothing from the others.
"""
from __future__ import annotations

import re
import traceback
from pathlib import Path

from tfkata import registry
from tfkata.results import Todo

_ASSERT_INTRO = re.compile(r"^assert ", re.M)
_TF_NOISE = (
    re.compile(r"^Graph execution error:\s*$"),
    re.compile(r"^\s*\[\[\{\{node [^}]*\}\}\]\]\s*$"),
    re.compile(r"^\s*$"),
)


def is_test_failure(exc: BaseException) -> bool:
    """An ``assert`` or ``pytest.fail`` of the test itself: its message is the test author's. An
    AssertionError that TensorFlow or Keras raised itself (e.g. reset_default_graph inside a graph) is not."""
    try:
        import pytest
    except ImportError:  # pragma: no cover - only used under pytest
        return isinstance(exc, AssertionError)
    if isinstance(exc, AssertionError) and _raised_in_tensorflow(exc):
        return False
    return isinstance(exc, (AssertionError, pytest.fail.Exception))


def _raised_in_tensorflow(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    path = tb.tb_frame.f_code.co_filename.replace("\\", "/")
    return any(part in path for part in ("/tensorflow/", "/keras/", "/tf_keras/"))


def chain(exc: BaseException | None, *, past_test_failures: bool = False):
    """``exc``, then its ``__cause__`` / ``__context__`` chain, each once; stops after a test failure
    (its message is the test author's) unless ``past_test_failures`` (a TODO behind a failed assert)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        if is_test_failure(exc) and not past_test_failures:
            return
        if past_test_failures:
            exc = exc.__cause__ or exc.__context__
        else:
            exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)


def find_todo(exc: BaseException | None, target_dir: Path) -> Todo | None:
    """Where a stub's NotImplementedError came from: the deepest frame inside ``target_dir``."""
    root = Path(target_dir).resolve()
    for err in chain(exc, past_test_failures=True):
        if not isinstance(err, NotImplementedError):
            continue
        frames = list(traceback.walk_tb(err.__traceback__))
        if not frames:
            continue
        frame, lineno = frames[-1]  # raised by a stub itself, not by a library the learner called
        path = Path(frame.f_code.co_filename).resolve()
        if root not in path.parents:
            continue
        kata = registry.for_source_file(path)
        func = frame.f_code.co_name
        owner = frame.f_locals.get("self")
        if owner is not None and func != "<module>":
            func = f"{type(owner).__name__}.{func}"
        return Todo(kata=kata.id if kata else "?", function=func,
                    file=path.relative_to(root.parent).as_posix(), line=lineno)
    return None


def frame_label(frame, lineno: int, root: Path) -> tuple[str, str] | None:
    """(function, 'file:line') for a frame of the learner's code under ``root`` (resolved), else None; a
    method is ``Class.method``; lambdas and comprehensions (``<...>``) give way to the function around them."""
    name = frame.f_code.co_name
    try:
        path = Path(frame.f_code.co_filename).resolve()
    except OSError:  # pragma: no cover
        return None
    if root not in path.parents or name.startswith("<"):
        return None
    owner = frame.f_locals.get("self")
    if owner is not None:
        name = f"{type(owner).__name__}.{name}"
    return name, f"{path.relative_to(root.parent).as_posix()}:{lineno}"


def loop_around(where: str, root: Path) -> str | None:
    """``where`` ('katas/k01_graph_session.py:17', relative to the checkout ``root``) moved to the header of the
    innermost ``while`` loop around that line, with its text: 'katas/k01_graph_session.py:14: `while i < n:`';
    failing that, of the innermost ``for`` loop that walks something other than a range or a literal (a
    generator may never end: ``for step, window in enumerate(windows):``); None when no such loop holds it. A
    time-out interrupts a loop anywhere in its body; the loop that never ends is the one to read (a ``for``
    over a range ends: it is never named)."""
    import ast

    file, _, line = where.rpartition(":")
    try:
        path, lineno = Path(root) / file, int(line)
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (OSError, ValueError, SyntaxError):
        return None

    def around(node):
        return node.lineno <= lineno <= (node.end_lineno or node.lineno)

    loops = [node for node in ast.walk(tree) if isinstance(node, ast.While) and around(node)]
    loops = loops or [node for node in ast.walk(tree) if isinstance(node, ast.For) and around(node) and _may_not_end(node)]
    if not loops:
        return None
    return _header(file, source, max(loops, key=lambda node: node.lineno))  # the innermost: it starts last


def _may_not_end(node) -> bool:
    """Whether a ``for`` loop walks something that may never end (a generator, a dataset), not a range, a
    literal or a container's view."""
    import ast

    walked = node.iter
    if isinstance(walked, ast.Call) and getattr(walked.func, "id", None) == "enumerate" and walked.args:
        walked = walked.args[0]
    if isinstance(walked, (ast.List, ast.Tuple, ast.Set, ast.Dict, ast.Constant, ast.ListComp)):
        return False
    if isinstance(walked, ast.Attribute) and walked.attr in ("layers", "weights", "variables", "trainable_variables",
                                                              "trainable_weights", "shape", "_fields"):
        return False  # a model's or a shape's parts: a list
    name = getattr(walked.func, "id", None) or getattr(walked.func, "attr", None) if isinstance(walked, ast.Call) else None
    return name not in ("range", "zip", "items", "keys", "values", "sorted", "reversed", "list", "tuple")


def has_no_endless_loop(module: Path, function: str) -> bool:
    """True when the function ``function`` of the file ``module`` holds no loop that could run forever, and
    neither do the functions of that file it calls (by name, and theirs in turn; nested functions included):
    no ``while``, no ``tf.while_loop(...)`` call, no ``for`` over something other than a range or a container.
    False when one does, or when the function or file cannot be read. A time-out in such a function is
    slowness (a busy machine), not a loop that never ends."""
    import ast

    try:
        tree = ast.parse(Path(module).read_text(encoding="utf-8"))
    except (OSError, ValueError, SyntaxError):
        return False
    defs = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if function not in defs:
        return False
    todo, seen = [function], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(defs[name]):
            called = getattr(node.func, "attr", getattr(node.func, "id", None)) if isinstance(node, ast.Call) else None
            if isinstance(node, ast.While) or (isinstance(node, ast.For) and _may_not_end(node)) or called == "while_loop":
                return False
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in defs:
                todo.append(node.func.id)
    return True


def _header(file: str, source: str, node) -> str:
    """'katas/k01_graph_session.py:14: `while i < n:`': where ``node`` starts in ``source``, and that line."""
    return f"{file}:{node.lineno}: `{source.splitlines()[node.lineno - 1].strip()}`"


def only_loop_in(module: Path, function: str, root: Path) -> str | None:
    """The one loop that may never end in the function ``function`` of the file ``module`` (its nested
    functions included): a ``while`` statement or a ``tf.while_loop(...)`` call, as
    'katas/n01_tf_function.py:120: `while n != 1:`' (relative to the checkout ``root``); None when it has none
    or several. For a time-out with none of the learner's frames on the stack: a ``tf.function`` the kata
    function returned, running its graph, has no Python frame of its own."""
    import ast

    try:
        source = Path(module).read_text(encoding="utf-8")
        tree = ast.parse(source)
        file = Path(module).resolve().relative_to(Path(root).resolve()).as_posix()
    except (OSError, ValueError, SyntaxError):
        return None
    defs = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name == function]
    if len(defs) != 1:
        return None
    loops = [node for node in ast.walk(defs[0])
             if isinstance(node, ast.While)
             or (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "while_loop")]
    return _header(file, source, loops[0]) if len(loops) == 1 else None


def autograph_original(path: str, name: str) -> str | None:
    """The name of the function whose AutoGraph-converted copy this frame runs (``tf__greedy_decode`` in a
    generated file), else None."""
    if "__autograph_generated_file" in path and name.startswith("tf__"):
        return name[len("tf__"):]
    return None


def deepest_learner_frame(frames, root: Path, lasting=()):
    """Of ``(frame, lineno)`` pairs, outermost first: the deepest frame of the learner's code under ``root``
    (resolved), as (function, 'file:line'), or None. ``lasting``: frames seen on the stack earlier in the same
    call (:mod:`tfkata.watchdog` samples them halfway to the limit); the deepest of the learner's frames that
    was already there is the one that never returned (a loop that calls the learner's other functions again
    and again shows a new frame of those each time)."""
    found = stayed = None
    for frame, lineno in frames:
        label = frame_label(frame, lineno, root)
        found = label or found
        if label and any(frame is f for f in lasting):
            stayed = label
    return stayed or found


def learner_frame(tb, target_dir: Path, lasting=()):
    """:func:`deepest_learner_frame` of a traceback."""
    return deepest_learner_frame(traceback.walk_tb(tb), Path(target_dir).resolve(), lasting)


def split_message(exc: BaseException) -> tuple[str, list[str]]:
    """(headline, further lines) of the exception's message, with TensorFlow's noise removed.

    A TF runtime error ("Graph execution error: Detected at node ... Original stack trace ...")
    is reduced to its real message, which TF also keeps in ``__cause__``. An AssertionError
    rewritten by pytest keeps the test's message as headline and its ``assert ...`` explanation
    as further lines.
    """
    text = str(exc)
    if text.startswith("Graph execution error") and exc.__cause__ is not None:
        text = str(exc.__cause__)
    text = text.split("\nOriginal stack trace for", 1)[0]
    text = _drop_detected_block(text)
    lines = [l.rstrip() for l in text.splitlines() if not any(p.match(l) for p in _TF_NOISE)]
    if isinstance(exc, AssertionError) and lines and _NUMPY_HEAD.match(lines[0]):
        return _numpy_headline(lines), lines
    if isinstance(exc, AssertionError):
        intro = next((i for i, l in enumerate(lines) if _ASSERT_INTRO.match(l)), None)
        if intro is not None and intro > 0:  # message, then pytest's introspection
            return " ".join(l.strip() for l in lines[:intro]), lines[intro:]
        if intro is None and len(lines) > 1 and is_test_failure(exc):
            # a graded test file is not rewritten (PYTEST_DONT_REWRITE): its message is the whole text, which
            # a printed array may have spread over several lines
            return " ".join(l.strip() for l in lines if l.strip()), []
    if not lines:
        return "", []
    if _WRAPPER.match(lines[0]):  # AutoGraph's "in user code:" / Keras 3's "Exception encountered when calling"
        real = [i for i, l in enumerate(lines) if _INNER_ERROR.match(l)]
        if real:
            i = real[-1]
            return _INNER_ERROR.match(lines[i]).group(2).strip() or lines[i].strip(), lines[:i] + lines[i + 1:]
    return lines[0].strip(), lines[1:]


_WRAPPER = re.compile(r"^\s*(in user code:|Exception encountered when calling)")
_INNER_ERROR = re.compile(r"^\s*(?:\x1b\[\dm)?([\w.]*(?:Error|Exception)): (.*)")
_NUMPY_HEAD = re.compile(r"^(Not equal to tolerance|Arrays are not)")
_NUMPY_FACTS = (" ACTUAL", " DESIRED", "Mismatched elements", "Mismatch at index", "Max absolute", "Max relative",
                "(shapes", " x:", " y:", "x:", "y:")


def _numpy_headline(lines: list[str]) -> str:
    """np.testing's message puts its own line first and the test's sentence (err_msg) second: the test's
    sentence is the headline, with numpy's count and largest difference after it."""
    own = lines[1].strip() if len(lines) > 1 and not lines[1].startswith(_NUMPY_FACTS) else ""
    facts = []
    for line in lines:
        m = re.match(r"Mismatched elements: (\d+) / (\d+)", line)
        if m:
            facts.append(f"{m.group(1)} of {m.group(2)} differ")
        m = re.match(r"Max absolute difference(?: among violations)?: (\S+)", line)
        if m:
            facts.append(f"max |diff| {m.group(1).rstrip('.')}")
        m = re.match(r"\(shapes (.*) mismatch\)", line)
        if m:
            facts.append(f"shapes {m.group(1)} differ")
    detail = f" ({', '.join(facts)})" if facts else ""
    return (own or "the values differ from the expected ones") + detail


def _drop_detected_block(text: str) -> str:
    """Remove TF's 'Detected at node X defined at (most recent call last):' + its File lines."""
    out, skipping = [], False
    for line in text.splitlines():
        if line.startswith("Detected at node") or line.startswith("Detected unsupported operations"):
            skipping = True
            continue
        if skipping:
            if line.startswith(" ") or not line.strip():
                continue
            skipping = False
            if line.startswith("Node: "):
                continue
        out.append(line)
    return "\n".join(out)


def first_line(exc: BaseException, limit: int = 120) -> str:
    """The real first line of an exception's message (TensorFlow's 'Graph execution error' wrapper and
    node dumps removed), cut at ``limit`` characters: for a test message that quotes TensorFlow."""
    head, _ = split_message(exc)
    line = head or type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
