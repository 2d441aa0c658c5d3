"""Known TensorFlow errors, translated into ONE line that names the likely cause and the fix.

:data:`TABLE` is the one list: each :class:`Entry` has a key, the exception class names it applies
to (matched against the whole class hierarchy, so ``OpError`` would cover every TF runtime error),
a regex searched in the exception's message, and a function making the line from the match.
:func:`diagnose` walks the exception and its ``__cause__`` / ``__context__`` chain (outermost
first) and returns the first entry that matches. An ``AssertionError`` or ``pytest.fail`` ends the
walk: a test's own message is better than anything guessed from an exception it caught.
:func:`other_kata_todo` explains a TODO raised from another kata's file (k08 calling k07).
Every entry is tested against the error TensorFlow really raises (tests/harness/test_diagnoses.py).
"""
from __future__ import annotations

import contextlib
import dataclasses
import re
import traceback
from pathlib import Path
from typing import Callable

from tfkata.feedback.facts import autograph_original, chain, find_todo, is_test_failure
from tfkata.paths import reference_file

INIT = "sess.run(tf.compat.v1.global_variables_initializer())"


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    key: str
    line: str


@dataclasses.dataclass(frozen=True)
class Entry:
    key: str
    exceptions: tuple[str, ...]  # class names, e.g. ("FailedPreconditionError",)
    pattern: re.Pattern
    explain: Callable[[re.Match, BaseException], str | None]  # None: not this entry after all


def _entry(key, exceptions, pattern, explain) -> Entry:
    return Entry(key, tuple(exceptions), re.compile(pattern, re.S), explain)


def _last(name: str) -> str:
    return name.rsplit("/", 1)[-1]


# --------------------------------------------------------------------------- TensorFlow 1 names
def _tf1_dotted(m: re.Match) -> str | None:
    """'Session', 'train.AdamOptimizer', 'contrib': the TF 1 name a learner wrote after ``tf.``, or None when the
    module is tf.compat itself (a name that is in no TensorFlow)."""
    path = (m.group("path") or "").lstrip(".")
    if path.startswith("compat"):
        return None
    return ".".join(p for p in (path, m.group("a")) if p)


def _in_compat_v1(dotted: str) -> bool:
    from tfkata.tfsetup import import_tensorflow

    obj = import_tensorflow().compat.v1
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return False
    return True


def _tf1_name(m: re.Match, exc: BaseException) -> str | None:
    dotted = _tf1_dotted(m)
    if dotted is None:
        return None
    if dotted.split(".")[0] == "contrib":
        return ("tf.contrib was removed in TensorFlow 2 and has no tf.compat.v1 twin: use what the function's "
                "docstring names instead (kata hint shows it)")
    if not _in_compat_v1(dotted):
        return None
    return (f"tf.{dotted} is TensorFlow 1's name, gone from TensorFlow 2, which keeps it as tf.compat.v1.{dotted}: "
            f"write tf.compat.v1.{dotted} (the 2018 slides wrote tf.{dotted})")


def _tf1_name_now(m: re.Match, exc: BaseException) -> str | None:
    dotted = _tf1_dotted(m)
    if dotted is None or (dotted.split(".")[0] != "contrib" and not _in_compat_v1(dotted)):
        return None
    return (f"tf.{dotted} is TensorFlow 1, gone from TensorFlow 2 (tf.compat.v1 keeps most of it for old code): this "
            "kata is written the TF 2 way, as its docstring says (placeholders become arguments, sessions eager "
            "calls, tf.train optimizers tf.keras.optimizers)")


# --------------------------------------------------------------------------- Keras cells
_V1_CELL = {"LSTMCell": "LSTMCell (or BasicLSTMCell)", "GRUCell": "GRUCell", "SimpleRNNCell": "BasicRNNCell",
            "StackedRNNCells": "MultiRNNCell"}


def _keras_origin(obj) -> str | None:
    """'keras.src.layers.rnn.lstm (Keras 3)' when ``obj`` is a Keras (not compat.v1) object, else None."""
    module = type(obj).__module__ or ""
    top = module.split(".")[0]
    if top == "tf_keras" or (top == "keras" and ".legacy" not in module):
        if "legacy_cells" in module:  # tf.compat.v1.nn.rnn_cell.* lives in tf_keras/keras legacy_cells
            return None
        try:
            import keras

            major = keras.__version__.split(".")[0]
        except Exception:  # pragma: no cover
            major = "?"
        kind = "tf_keras, i.e. Keras 2" if top == "tf_keras" else f"Keras {major}"
        return f"{module} ({kind})"
    return None


def _keras_cell(exc: BaseException) -> tuple[str, str] | None:
    """(class name, origin) of the Keras cell involved: AttributeError.obj, or a `cell`/`self` local."""
    candidates = [getattr(exc, "obj", None)]
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        candidates += [frame.f_locals.get("cell"), frame.f_locals.get("self")]
    for obj in candidates:
        if obj is not None and _keras_origin(obj):
            return type(obj).__name__, _keras_origin(obj)
    return None


def _keras_cell_line(m: re.Match, exc: BaseException) -> str | None:
    found = _keras_cell(exc)
    if found is None:
        return None
    name, origin = found
    v1 = _V1_CELL.get(name, "an equivalent cell")
    return (f"{name} here is a Keras layer (from {origin}), not a tf.compat.v1.nn.rnn_cell cell: "
            f"dynamic_rnn, static_rnn and .zero_state need tf.compat.v1.nn.rnn_cell.{v1}")


# --------------------------------------------------------------------------- variables made too late
def _uninitialised(m: re.Match, exc: BaseException) -> str:
    """Which variable, and — when the graph already had an initializer op when it was made — where it was
    created: an initializer built before a variable does not cover it (a new layer in a later function)."""
    groups = m.groupdict()
    name = groups.get("v") or groups.get("w") or groups.get("x")
    late = _created_after_init(exc, name)
    if late is not None:
        return (f"variable '{name}' was created{late} after global_variables_initializer() was built, which "
                "does not cover it: reuse the layer or variable made before, or build every variable first")
    runner = _ran_by(exc)
    if runner is not None and not _reference_runs(exc, runner):
        return (f"{runner} ran an op itself (Session.run inside {runner}): it should only build the op and return "
                f"it; the caller runs it once the variables are initialised (variable '{name}' was not yet)")
    if runner is not None:
        return (f"variable '{name}' is used before it is initialised: run {INIT} in the session first ({runner} "
                f"ran it; if {runner} only builds the op, return the op instead of running it)")
    if groups.get("x"):
        return (f"variable '{name}' is used in a session where it was never initialised: run {INIT} in that "
                "session first; a function that builds an op must return it, not run it itself")
    return (f"variable '{name}' is used before it is initialised: run {INIT} in the session first (make that op "
            "after building every variable)")


def _in_kata(path: str, name: str) -> bool:
    """A frame of a kata's code (katas/ or solutions/), not a test's, a lambda's or a comprehension's."""
    path = path.replace("\\", "/")
    return ("/katas/" in path or "/solutions/" in path) and not name.startswith(("test", "<"))


def _ran_by(exc: BaseException) -> str | None:
    """The kata function (not a test, not TensorFlow) that called Session.run where ``exc`` was raised."""
    import traceback

    # the harness's own watch around Session.run (tfkata.graphgrowth) may stand between the two: skip it
    frames = [f for f, _ in traceback.walk_tb(exc.__traceback__) if f.f_globals.get("__name__") != "tfkata.graphgrowth"]
    for caller, callee in zip(frames, frames[1:]):
        if (callee.f_code.co_filename.replace("\\", "/").endswith("client/session.py")
                and _in_kata(caller.f_code.co_filename, caller.f_code.co_name)):
            return caller.f_code.co_name
    return None


def _reference_runs(exc: BaseException, runner: str) -> bool:
    """Whether the reference solution of the kata function ``runner`` (found on ``exc``'s traceback) calls
    ``.run(...)`` itself; True when that cannot be told (no reference found)."""
    import ast
    import traceback

    for frame, _ in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_name == runner and _in_kata(frame.f_code.co_filename, runner):
            path = Path(frame.f_code.co_filename)
            reference = reference_file(path.stem, path.parent.parent)
            try:
                tree = ast.parse(reference.read_text(encoding="utf-8"))
            except (OSError, SyntaxError):
                return True
            node = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == runner), None)
            if node is None:
                return True
            return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "run"
                       for n in ast.walk(node))
    return True


def _none_from_kata_call(exc: BaseException) -> str | None:
    """When the line that raised calls a kata function whose reference always returns a value: that function
    returned None (a `return` missing), said with the file and line where its None was used."""
    import linecache
    import traceback

    from tfkata.returned import valued_in

    frames = list(traceback.walk_tb(exc.__traceback__))
    if not frames:
        return None
    frame, lineno = frames[-1]
    line = linecache.getline(frame.f_code.co_filename, lineno).strip()
    for dotted in re.findall(r"([A-Za-z_][\w.]*)\s*\(", line):
        head, *rest = dotted.split(".")
        obj = frame.f_locals.get(head, frame.f_globals.get(head))
        for part in rest:
            obj = getattr(obj, part, None)
        obj = getattr(obj, "__wrapped__", obj)
        code = getattr(obj, "__code__", None)
        if code is None or not _in_kata(code.co_filename, obj.__name__):
            continue
        path = Path(code.co_filename)
        if obj.__name__ in valued_in(reference_file(path.stem, path.parent.parent)):
            return (f"{obj.__name__} returned None, where it must return what its docstring says (its caller "
                    f"{frame.f_code.co_name} used it: `{line[:60]}`): is a `return` missing in {obj.__name__}, "
                    "or does a branch end without one?")
    return None


def _kata_function(exc: BaseException) -> str | None:
    """The innermost kata function (katas/ or solutions/, not a test) on ``exc``'s traceback, else the one that
    built the failing op (its creation stack: the error came out of a ``Session.run``)."""
    import traceback

    inner = None
    for frame, _ in reversed(list(traceback.walk_tb(exc.__traceback__))):
        name = frame.f_code.co_name
        converted = autograph_original(frame.f_code.co_filename, name)
        if converted:  # a kata function AutoGraph converted inside a tf.function: its own frame is not there
            return converted
        if _in_kata(frame.f_code.co_filename, name):
            # a function nested in the kata function (a while loop's body) gives way to the one around it
            if name in frame.f_globals or "self" in frame.f_locals:
                return name
            inner = inner or name
    if inner:
        return inner
    for frame in reversed(list(getattr(getattr(exc, "op", None), "traceback", None) or [])):
        if _in_kata(getattr(frame, "filename", ""), getattr(frame, "name", "<")):
            return frame.name
    return None


def _other_graph(exc: BaseException) -> str:
    """Two graphs mixed: a loop's or function's body graph (FuncGraph) and the graph around it, or two tf.Graphs."""
    text = str(exc)
    body = re.search(r"FuncGraph\(name=(\w+)|graph '?(\w*while\w*|\w*_body\w*)", text)
    if body:
        name = body.group(1) or body.group(2)
        return (f"{_in_function(exc)}a tensor from inside a loop or function body ({name}) meets one from outside "
                "it: a value made in the body exists only there; compute from the body's own tensors, keep none "
                "from a call outside it (a warm-up call)")
    where = _kata_function(exc)
    if where is None:
        return _kept_tensors_line()
    return (f"{where}: tensors from two tf.Graph objects are mixed (one made earlier: at import, in a module "
            "variable, by an earlier call?): build everything inside one `with graph.as_default():` block, and open "
            "the session on it (tf.compat.v1.Session(graph=graph))")


def _kept_tensors_line() -> str:
    """A test ran what a kata function returned, and it lives in another graph than the test's."""
    return ("the tensors run here were built in another graph than this test's default graph: made earlier (at "
            "import, in a module variable, by an earlier call) or under a tf.Graph of your own; build them in the "
            "default graph each time the function is called")


def _may_shadow(exc: BaseException, name: str) -> bool:
    """Whether the local ``name`` that was read unassigned may hide an outer one (a module's name, or one of an
    enclosing function's: the frame's function is nested, or AutoGraph's copy): then the fix is to change the
    outer one; otherwise the assignment simply did not run."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return True
    frame = tb.tb_frame
    nested = "<locals>" in getattr(frame.f_code, "co_qualname", "<locals>")
    return nested or "__autograph_generated" in frame.f_code.co_filename or name in frame.f_globals


def _in_function(exc: BaseException) -> str:
    """'greedy_decoder: ' (the kata function :func:`_kata_function` finds) to start a line with, or ''."""
    where = _kata_function(exc)
    return f"{where}: " if where else ""


def _created_after_init(exc: BaseException, name: str) -> str | None:
    """' in greedy_decoder (katas/k07_seq2seq.py:210)' when ``name`` was created after an initializer op."""
    op = getattr(exc, "op", None)
    graph = getattr(op, "graph", None)
    if graph is None:
        return None
    try:
        var_op = graph.get_operation_by_name(name)
    except (KeyError, ValueError):
        return None
    inits = [o for o in graph.get_operations() if o.type == "NoOp" and o.name.split("/")[-1].startswith("init")]
    if not any(o._id < var_op._id for o in inits):  # noqa: SLF001 - creation order
        return None
    where = ""
    for frame in reversed(list(getattr(var_op, "traceback", None) or [])):
        filename = getattr(frame, "filename", "")
        if "site-packages" not in filename and "/tensorflow/" not in filename and "/tfkata/" not in filename:
            parts = filename.replace("\\", "/").split("/")
            where = f" in {frame.name} ({'/'.join(parts[-2:])}:{frame.lineno})"
            break
    return where


# --------------------------------------------------------------------------- shapes
def _shapes(kind: str) -> Callable[[re.Match, BaseException], str]:
    """Explain a shape clash; ``kind``: 'rank', 'matmul' or 'auto' (MatMul ops: matmul, else element-wise)."""

    def explain(m: re.Match, exc: BaseException) -> str:
        a, b, op = m.group("a"), m.group("b"), m.groupdict().get("op") or ""
        if _SHARED_CELL.search(str(exc)):
            return (f"stacked RNN layers got shapes {a} and {b}: the layers share ONE cell object ([cell] * n "
                    "reuses the first layer's weights): build a new cell for each layer, "
                    "MultiRNNCell([make_cell() for _ in range(n)])")
        if kind == "rank":
            return (f"{op or 'an op'} got inputs of shapes {a} and {b}, and one has the wrong rank: "
                    "reshape it (tf.reshape / tf.expand_dims), e.g. a vector to a [n, 1] matrix")
        if kind == "matmul" or "MatMul" in op:
            return f"{_in_function(exc)}matmul of shapes {a} and {b}: {_matmul_fix(a, b)}"
        where = f" in {op}" if op else ""
        return (f"incompatible shapes {a} and {b}{where}: an element-wise op needs equal (or broadcastable) "
                "shapes; reshape one, or check which axis is the batch")

    return explain


def _dims(shape: str) -> list[int | None]:
    """'[5, 3]' / '[?,784]' -> [5, 3] / [None, 784]; an unreadable shape gives []."""
    out = []
    for part in shape.strip("[]").split(","):
        part = part.strip()
        if not part:
            continue
        out.append(int(part) if part.isdigit() else None)
    return out


def _matmul_fix(a: str, b: str) -> str:
    """What to change, read from the two shapes: a weight stored the other way round fits transposed; a
    weight whose first dimension matches nothing was made for another input size."""
    x, w = _dims(a), _dims(b)
    if len(x) != 2 or len(w) != 2 or x[1] is None or w[0] is None:
        return ("the first's last dimension must equal the second's first (x @ W needs x [B, n], W [n, m]): "
                "transpose one (transpose_b=True) or reshape")
    if w[1] == x[1]:
        return (f"the second looks stored the other way round ([{w[0]}, {w[1]}] fits as [{w[1]}, {w[0]}]): make "
                f"the weight [{x[1]}, {w[0]}], or tf.matmul(x, W, transpose_b=True); or, if it worked before, "
                f"the layer got a wrong input (run twice?)")
    return (f"the weight has {w[0]} rows, the input {x[1]} columns: the layer got the wrong input (in a stack, each "
            f"takes the previous layer's output) or its weight was made for another size (first dimension = its "
            f"input's size, {x[1]})")


def _unpack_fix(exc: BaseException) -> str:
    """What to check, read from the line that unpacked (its source text, where Python has it)."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    line = (frames[-1].line or "") if frames else ""
    if "load_mnist(" in line:
        return ("load_mnist() returns a dict of four arrays, not Keras' ((x, y), (x, y)) pairs: raw = load_mnist(), "
                "then raw['x_train'], raw['y_train'], raw['x_test'], raw['y_test']")
    if re.search(r"lstm|gru|rnn|cell|layer", line, re.IGNORECASE):
        return ("check what the call returns (a Keras LSTM with return_state=True returns three, outputs, h, c; a "
                "GRU or SimpleRNN two, outputs, h)")
    return "check what the call returns: how many parts, and whether it is a dict (unpacking a dict gives its keys)"


def _sequence_length_line(got: str, want: str, exc: BaseException) -> str:
    return (f"{_in_function(exc)}the RNN got {got} sequence lengths for a batch of {want}: one length per "
            "sequence; if the inputs are time-major [T, B, ...] pass time_major=True (without it axis 0 is the "
            "batch), and check which axis you transposed")


def _dtype_mix(m: re.Match, exc: BaseException) -> str:
    """Two inputs of one op with other dtypes: two integer types are matched by casting to one of them (an
    argmax is int64 unless output_type says otherwise); an integer and a float, by floats."""
    op, x, y, tx, ty = m.group("op"), m.group("x"), m.group("y"), m.group("tx"), m.group("ty")
    head = f"{_in_function(exc)}{op} mixes dtypes: its input '{x}' is {tx} and '{y}' is {ty}"
    if tx.startswith(("int", "uint")) and ty.startswith(("int", "uint")):
        return (f"{head}: give both one integer type (create the placeholder or constant with the dtype the "
                f"docstring names, or tf.cast(t, tf.{tx}); tf.argmax gives int64 unless output_type=tf.int32)")
    if _kata_line_casts(exc):
        integer = tx if tx.startswith(("int", "uint")) else ty
        return (f"{head}: a tf.cast in your code made one of them a float: cast to the dtype the other input has "
                f"({integer}), or not at all where the docstring says both have one dtype")
    return f"{head}: cast one (tf.cast(t, tf.float32)) or write float constants as 1.0, not 1"


def _kata_lines(exc: BaseException) -> list[str]:
    """The lines of kata code on ``exc``'s traceback and on its op's creation stack."""
    import linecache
    import traceback

    lines = [linecache.getline(f.f_code.co_filename, n) for f, n in traceback.walk_tb(exc.__traceback__)
             if _in_kata(f.f_code.co_filename, f.f_code.co_name)
             or autograph_original(f.f_code.co_filename, f.f_code.co_name)]  # AutoGraph's copy of a kata function
    lines += [getattr(f, "line", "") or "" for f in getattr(getattr(exc, "op", None), "traceback", None) or []
              if _in_kata(getattr(f, "filename", ""), getattr(f, "name", "<"))]
    return lines


def _kata_line_casts(exc: BaseException) -> bool:
    """Whether a line of kata code on ``exc``'s traceback (or on its op's creation stack) calls ``cast(``."""
    return any("cast(" in line for line in _kata_lines(exc))


def _none_gradient(exc: BaseException) -> str | None:
    """Arithmetic on None in a kata function that asks for gradients: a variable the loss does not depend on."""
    import inspect
    import traceback

    sources = []
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        if _in_kata(frame.f_code.co_filename, frame.f_code.co_name):
            with contextlib.suppress(OSError, TypeError):
                sources.append("".join(inspect.getsourcelines(frame.f_code)[0]))
    if not any(re.search(r"\.gradients?\(", text) for text in sources):
        return None
    return (f"{_in_function(exc)}a gradient is None: tf.gradients (or tape.gradient) gives None for a variable the "
            "loss does not depend on (trainable_variables() lists all of a graph's): skip the Nones, or let the "
            "optimizer's minimize do it")


def _static_size_line(m: re.Match, exc: BaseException) -> str:
    return (f"{_in_function(exc)}a size read from a static shape is None (x.shape[i] of an axis unknown while the "
            "graph is built: a placeholder's or input_signature's None): use the dynamic size tf.shape(x)[i] "
            "(tf.range(...), TensorArray(size=...))")


_SHAPES = r"\[[^\]]*\]"
_SHARED_CELL = re.compile(r"multi_rnn_cell/cell_\d+/[\w/]*MatMul_\d")


# --------------------------------------------------------------------------- the table
TABLE: tuple[Entry, ...] = (
    _entry("uninitialized-variable", ["FailedPreconditionError"],
           r"Attempting to use uninitialized value (?P<v>[\w/.-]+)|Could not find variable (?P<w>[\w/.-]+?)\.\s",
           _uninitialised),
    # a resource variable run in a session that never initialised it (e.g. an op run while being built)
    _entry("uninitialized-variable", ["NotFoundError"],
           r"Container \w+ does not exist\. \(Could not find resource: \w+/(?P<x>[\w/.-]+?)\)",
           _uninitialised),
    _entry("placeholder-not-fed", ["InvalidArgumentError"],
           r"You must feed a value for placeholder tensor '(?P<p>[^']+)' with dtype (?P<d>\w+)(?: and shape (?P<s>\[[^\]]*\]))?",
           lambda m, e: (f"placeholder '{m.group('p')}' ({m.group('d')}"
                         + (f", shape {m.group('s')}" if m.group("s") else "")
                         + f") got no value: give it one in sess.run(..., feed_dict={{{_last(m.group('p'))}: ...}}) "
                           "(every placeholder the fetched tensors depend on needs one)")),
    _entry("feed-shape", ["ValueError"],
           r"Cannot feed value of shape (?P<v>\(.*?\)) for Tensor '?(?P<t>[^\s,']+)'?, which has shape '?(?P<s>\(.*?\)|\[.*?\])",
           lambda m, e: (f"fed a value of shape {m.group('v')} to {m.group('t')}, a placeholder of shape {m.group('s')} "
                         "(None matches any size): reshape the value, or fix the placeholder's shape")),
    _entry("numpy-in-graph", ["AttributeError"],
           r"'(?:Symbolic)?Tensor' object has no attribute '(?P<a>numpy)'",
           lambda m, e: ("tensor.numpy() works only eagerly, and this code builds a graph (a symbolic tf.Tensor has "
                         "no value yet): return the tensor, or get its value with sess.run(tensor)")),
    _entry("tf1-name", ["AttributeError"],
           r"module 'tensorflow(?:\._api\.v\d)?(?P<path>(?:\.\w+)*)' has no attribute '(?P<a>\w+)'",
           _tf1_name),
    _entry("other-graph", ["ValueError", "TypeError"],
           r"must be from the same graph as|is not an element of this graph",
           lambda m, e: _other_graph(e)),
    _entry("empty-session-graph", ["RuntimeError"],
           r"The Session graph is empty",
           lambda m, e: _kept_tensors_line() if _kata_function(e) is None else (
               f"{_in_function(e)}the session's graph has no ops: it was opened on an empty tf.Graph, not the one "
               "the tensors are in: open it on theirs (tf.compat.v1.Session() for the default graph, "
               "Session(graph=g) for tensors built in g)")),
    _entry("iterator-not-initialized", ["FailedPreconditionError"],
           r"GetNext\(\) failed because the iterator has not been initialized",
           lambda m, e: (f"{_in_function(e)}the dataset's iterator was never initialized: an initializable iterator "
                         "needs sess.run(iterator.initializer) first; a one-shot iterator, "
                         "tf.compat.v1.data.make_one_shot_iterator(dataset), needs none")),
    _entry("keras-cell", ["AttributeError", "TypeError"],
           r"object has no attribute 'zero_state'|get_initial_state\(\) got an unexpected keyword argument 'inputs'",
           _keras_cell_line),
    _entry("variable-exists", ["ValueError"],
           r"Variable (?P<v>\S+) already exists, disallowed",
           lambda m, e: (f"variable '{m.group('v')}' already exists in this graph: to share it, open its scope with "
                         "reuse=True (or reuse=tf.compat.v1.AUTO_REUSE); to make a second one, use another name or "
                         "scope; made twice by mistake (a loop whose index does not move?), fix that")),
    _entry("variable-shape-differs", ["ValueError"],
           r"Trying to share variable (?P<v>\S+), but specified shape (?P<a>\(.*?\)) and found shape (?P<b>\(.*?\))",
           lambda m, e: (f"variable '{m.group('v')}' exists with shape {m.group('b')} and is asked for again with shape "
                         f"{m.group('a')}: one scope opened for two different layers (each layer its own scope, "
                         "built once: a loop whose counter does not move?), or reuse picked it up where a new "
                         "variable was meant")),
    _entry("variable-missing", ["ValueError"],
           r"Variable (?P<v>\S+) does not exist, or was not created with tf\.get_variable\(\)",
           lambda m, e: (f"variable '{m.group('v')}' does not exist, but its scope has reuse=True: create it first "
                         "with tf.compat.v1.get_variable (reuse off), or use reuse=tf.compat.v1.AUTO_REUSE")),
    _entry("incompatible-shapes", ["ValueError", "InvalidArgumentError"],
           rf"Dimensions must be equal, but are \d+ and \d+ for '\{{\{{node [^}}]*\}}\}} = (?P<op>\w+).*?"
           rf"with input shapes: (?P<a>{_SHAPES}), (?P<b>{_SHAPES})",
           _shapes("auto")),
    _entry("incompatible-shapes", ["ValueError", "InvalidArgumentError"],
           rf"Shape must be rank \d+ but is rank \d+ for '\{{\{{node [^}}]*\}}\}} = (?P<op>\w+).*?"
           rf"with input shapes: (?P<a>{_SHAPES}), (?P<b>{_SHAPES})",
           _shapes("rank")),
    _entry("incompatible-shapes", ["InvalidArgumentError"],
           rf"Matrix size-incompatible: In\[0\]: (?P<a>{_SHAPES}), In\[1\]: (?P<b>{_SHAPES})",
           _shapes("matmul")),
    # a kata function resets the default graph while the test holds a graph as the default
    _entry("reset-default-graph", ["AssertionError"],
           r"Do not use tf\.reset_default_graph\(\) to clear nested graphs",
           lambda m, e: (f"{_in_function(e)}tf.compat.v1.reset_default_graph() "
                         "cannot run inside a `with graph.as_default():` block, which is where the tests (and most "
                         "programs) call your functions: build in the default graph as it is, and leave resetting "
                         "it to whoever made it")),
    # a test reads the static shape of a tensor that has none (a placeholder made without shape=)
    _entry("unknown-rank", ["ValueError"],
           r"as_list\(\) is not defined on an unknown TensorShape",
           lambda m, e: ("a tensor has no static shape (unknown rank): a placeholder made without shape= (give "
                         "the docstring's: shape=[None] for a vector, [] for a scalar), or an op that lost the rank "
                         "(tf.squeeze without axis= where a dimension is None)")),
    # dynamic_rnn's sequence_length does not have one entry per sequence of the batch (often: time-major
    # inputs read as batch-major, or the reverse): at run time TF's own assert, at build time a Select
    _entry("sequence-length-batch", ["InvalidArgumentError"],
           r"Expected shape for Tensor (?P<t>[\w/]*sequence_length[\w:]*) is \] \[(?P<want>\d+)\] \[ but saw shape: \] "
           r"\[(?P<got>\d+)\]",
           lambda m, e: _sequence_length_line(m.group("got"), m.group("want"), e)),
    _entry("sequence-length-batch", ["ValueError", "InvalidArgumentError"],
           r"Dimension 0 in both shapes must be equal, but are (?P<got>\d+) and (?P<want>\d+)\. Shapes are \[\d+\] and "
           r"\[\d+\]\. for '\{\{node [\w/]*Select\}\}.*?with input shapes: \[\d+\], \[\d+,\d+\]",
           lambda m, e: _sequence_length_line(m.group("got"), m.group("want"), e)),
    # tensors of two batch sizes concatenated (an LSTM cell joins its input and its state): one was made
    # for a fixed batch (a module constant such as BATCH_SIZE) instead of the batch the function was given
    _entry("batch-sizes-differ", ["ValueError", "InvalidArgumentError"],
           r"Dimension 0 in both shapes must be equal, but are (?P<n>\d+) and (?P<m>\d+)\. Shapes are "
           rf"(?P<a>{_SHAPES}) and (?P<b>{_SHAPES})",
           lambda m, e: (f"{_in_function(e)}tensors of batch sizes "
                         f"{m.group('n')} and {m.group('m')} meet in one op: one was made for a fixed batch size (a "
                         "constant such as BATCH_SIZE?: use tf.shape(x)[0]) or indexed on the wrong axis (x[t] is "
                         "example t, x[:, t] is time step t)")),
    # a tf.while_loop variable whose static shape changes in the body (a [1] made with a known batch meets
    # a state whose batch is unknown): the loop needs one shape for it on every iteration
    _entry("loop-shape-changes", ["ValueError"],
           r"Input tensor `(?P<t>[^`]+)` enters the loop with shape (?P<a>\([^)]*\)), but has shape (?P<b>\([^)]*\)) "
           r"after one iteration",
           lambda m, e: (f"{_in_function(e)}the tf.while_loop variable {m.group('t')} enters the loop with shape "
                         f"{m.group('a')} but comes out of the body with shape {m.group('b')}: give it one shape on "
                         "every iteration (t.set_shape(...) / tf.ensure_shape in the body, or shape_invariants= for "
                         "a dimension that really varies)")),
    # the same, from a Python while loop in a tf.function (AutoGraph made it a tf.while_loop)
    _entry("loop-shape-changes", ["ValueError"],
           r"'(?P<t>[^']+)' has shape (?P<a>\([^)]*\)) before the loop, but shape (?P<b>\([^)]*\)) after one iteration",
           lambda m, e: (f"{_in_function(e)}the while loop (a tf.while_loop in a tf.function) changes the shape of "
                         f"'{m.group('t')}', {m.group('a')} before it, {m.group('b')} after one pass: keep one shape, "
                         "or set_loop_options(shape_invariants=...) for a size that varies")),
    _entry("incompatible-shapes", ["InvalidArgumentError"],
           rf"Incompatible shapes: (?P<a>{_SHAPES}) vs\. (?P<b>{_SHAPES})",
           _shapes("auto")),
    _entry("dtype-mix", ["TypeError"],
           r"Input '(?P<y>\w+)' of '(?P<op>\w+)' Op has type (?P<ty>\w+) that does not match type (?P<tx>\w+) of argument '(?P<x>\w+)'",
           _dtype_mix),
    _entry("dtype-mix", ["ValueError"],
           r"Tensor conversion requested dtype (?P<want>\w+) for Tensor with dtype (?P<got>\w+)",
           lambda m, e: (f"a tensor of dtype {m.group('got')} is used where {m.group('want')} is needed: cast it "
                         f"(tf.cast(t, tf.{m.group('want')})) or create it with dtype={m.group('want')}")),
    _entry("dtype-mix", ["TypeError"],
           r"Tensors in list passed to '(?P<p>\w+)' of '(?P<op>\w+)' Op have types \[(?P<types>[^\]]+)\] that don't all match",
           lambda m, e: (f"{m.group('op')} got a list of tensors of mixed dtypes [{m.group('types')}]: create them all "
                         "with one dtype (tf.float32: zero_state(batch, tf.float32), np.float32 arrays) or tf.cast the "
                         "odd one")),
    _entry("summary-not-scalar", ["InvalidArgumentError"],
           r"tags and values (?:are )?not the same shape: \[\] != (?P<s>\[[^\]]*\]) \(tag '(?P<t>[^']+)'\)",
           lambda m, e: (f"{_in_function(e)}the scalar summary '{m.group('t')}' got a value of shape {m.group('s')}: "
                         "tf.compat.v1.summary.scalar takes ONE number: reduce over every axis (tf.reduce_mean(var), "
                         "no axis=)")),
    _entry("fetch-none", ["TypeError"],
           r"Fetch argument None has invalid type|Argument `fetch` = None has invalid type",
           lambda m, e: ("sess.run was asked to fetch None: a function returned None (a missing `return`?); "
                         "return the tensor or op you built")),
    _entry("none-value", ["ValueError"],
           r"None values not supported",
           lambda m, e: ("an op got None instead of a tensor: a function returned None (a missing `return`?), "
                         "or a variable was never set; return the tensor you built")),
    _entry("dtype-not-allowed", ["TypeError"],
           r"Value passed to parameter '(?P<p>\w+)' has DataType (?P<got>\w+) not in list of allowed values: (?P<ok>[\w, ]+)",
           lambda m, e: (f"input '{m.group('p')}' must be one of {m.group('ok').strip()}, got {m.group('got')}: "
                         f"cast it (tf.cast(t, tf.{m.group('ok').split(',')[0].strip()}))"
                         + ("; sparse_softmax_cross_entropy_with_logits takes class ids, one-hot rows go to "
                            "softmax_cross_entropy_with_logits" if m.group("p") == "labels" else ""))),
    _entry("sparse-labels", ["ValueError"],
           r"`labels.shape.rank` must equal `logits.shape.rank - 1`. Received: labels.shape=(?P<l>\(.*?\))",
           lambda m, e: (f"sparse_softmax_cross_entropy_with_logits takes class ids (labels [B], int), not one-hot "
                         f"rows (labels {m.group('l')}): pass tf.argmax(labels, 1), or use "
                         "softmax_cross_entropy_with_logits with one-hot labels")),
    _entry("reshape-size", ["ValueError", "InvalidArgumentError"],
           r"Input to reshape is a tensor with (?P<n>\d+) values, but the requested shape has (?P<k>\d+)|"
           r"Cannot reshape a tensor with (?P<n2>\d+) elements to shape (?P<s>\[[^\]]*\]) \((?P<k2>\d+) elements\)",
           lambda m, e: (f"reshape: {m.group('n') or m.group('n2')} values cannot fill "
                         f"{m.group('s') or 'the requested shape'} ({m.group('k') or m.group('k2')} values): the sizes "
                         "must multiply to the same count; write -1 for the one size to infer, e.g. "
                         "tf.reshape(x, [-1, 7 * 7 * 64])")),
    _entry("no-gradients", ["ValueError"],
           r"No gradients provided for any variable",
           lambda m, e: ("the loss does not depend on any trainable variable through TF ops: build it from the "
                         "model's tensors (not numpy values or constants), without .numpy() or tf.stop_gradient")),
    _entry("tensor-as-bool", ["OperatorNotAllowedInGraphError", "TypeError"],
           r"Using a symbolic `tf.Tensor` as a Python `bool` is not allowed",
           lambda m, e: ("Python `if`/`while`/`and` on a symbolic tensor: it has no value while the graph is built; "
                         "use tf.cond / tf.where / tf.while_loop, or decide in Python after sess.run")),
    _entry("feed-a-tensor", ["TypeError"],
           r"The value of a feed cannot be a tf.Tensor object",
           lambda m, e: ("feed_dict values must be numpy arrays or Python numbers, not tensors: feed the data "
                         "itself (sess.run a tensor first if its value is needed)")),
    _entry("placeholder-in-eager", ["RuntimeError"],
           r"tf.placeholder\(\) is not compatible with eager execution",
           lambda m, e: ("tf.compat.v1.placeholder needs a graph, and this code runs eagerly: TF 1 code builds inside "
                         "`with tf.Graph().as_default():`; in TF 2 code pass the values as arguments")),
    _entry("graph-finalized", ["RuntimeError"],
           r"Graph is finalized and cannot be modified",
           lambda m, e: ("an op was created after the graph was finalized (inside the training loop?): build every "
                         "op, assign and initializer before the loop, and only sess.run them in it")),
    _entry("colon-in-name", ["ValueError"],
           r"[`'](?P<n>[^`']*?):(?P<i>\d+)[`'] is not a valid (?:root )?(?:scope |node )?name",
           lambda m, e: (f"'{_last(m.group('n'))}:{m.group('i')}' is not a valid op name: pass "
                         f"name='{_last(m.group('n'))}'; the ':{m.group('i')}' is the output index TF adds to tensor names")),
    # ---- TF 2: tf.function, AutoGraph, Keras state (the migration guide's pitfalls)
    _entry("variable-in-tf-function", ["ValueError"],
           r"tf\.function only supports singleton tf\.Variables created on the first call",
           lambda m, e: ("a tf.Variable is created inside a tf.function on a later call (a new optimizer, layer or "
                         "tf.Variable each call): create that state once, outside the function (the optimizer and "
                         "the layers before the training loop), and only use it inside")),
    _entry("inaccessible-tensor", ["InaccessibleTensorError"],
           r"is out of scope and cannot be used here",
           lambda m, e: ("a tensor made inside a tf.function's loop or branch was kept in a Python list or variable and "
                         "used outside it: collect loop values in a tf.TensorArray (ta = ta.write(t, x), then "
                         "ta.stack()) or carry them as loop variables")),
    _entry("autograph-dtype", ["TypeError"],
           r"'(?P<v>\w+)' has dtype (?P<a>\w+) (?P<where>before the loop|in the main branch), but dtype (?P<b>\w+)",
           lambda m, e: (f"AutoGraph needs '{m.group('v')}' to keep one dtype {'through the loop' if 'loop' in m.group('where') else 'in both branches'} "
                         f"({m.group('a')} vs {m.group('b')}): `/` on integers makes a float — use `//` for integer "
                         f"division, or tf.cast it back")),
    _entry("keras-state-in-call", ["ValueError"],
           r"You cannot add new elements of state \(variables or sub-layers\) to a layer that is already built",
           lambda m, e: ("a Keras layer created a weight (add_weight / a sub-layer) in call(): create every weight in "
                         "build(input_shape) (or __init__), once; call() only uses them")),
    _entry("gradients-in-eager", ["RuntimeError"],
           r"tf\.gradients is not supported when eager execution is enabled",
           lambda m, e: ("tf.gradients only works while building a graph (TF 1); eagerly, record the forward pass "
                         "under `with tf.GradientTape() as tape:` and call tape.gradient(loss, variables)")),
    _entry("tensor-as-static-dim", ["TypeError"],
           r"Dimension value must be integer or None or have an __index__ method, got value '<tf\.Tensor",
           lambda m, e: (f"{_in_function(e)}a static shape (a variable's, a placeholder's) needs Python ints, and tf.shape(x)[i] is a "
                         "tensor whose value exists only when the graph runs: use the static size x.shape[-1] (an int) "
                         "for a weight's shape; tf.shape is for sizes unknown until run time")),
    _entry("history-without-validation", ["KeyError"],
           r"^'(?P<k>val_\w+)'$",
           lambda m, e: (f"{_in_function(e)}History.history has no '{m.group('k')}': Keras logs validation metrics only when model.fit "
                         "gets validation_data=... (the validation dataset)")),
    _entry("local-before-assignment", ["UnboundLocalError"],
           r"local variable '(?P<v>\w+)' referenced before assignment|cannot access local variable '(?P<w>\w+)'",
           lambda m, e: (f"{_in_function(e)}`{m.group('v') or m.group('w')}` is assigned somewhere in this function, "
                         f"which makes it a new local name in all of it, so reading it first fails: to change the "
                         f"outer {m.group('v') or m.group('w')}, change it in place ("
                         f"{m.group('v') or m.group('w')}.append(...), [...] = ...) or declare it `nonlocal`")
           if _may_shadow(e, m.group("v") or m.group("w")) else
           (f"{_in_function(e)}`{m.group('v') or m.group('w')}` was read before anything was assigned to it: the "
            "line that assigns it did not run (a loop over an empty range, an `if` that was false): give it a value "
            "before the loop or branch")),
    _entry("input-signature", ["TypeError", "ValueError"],
           r"Binding inputs to tf\.function failed.*?Can not cast (?P<got>TensorSpec\(shape=\([^)]*\))[^)]*\) "
           r"to (?P<want>TensorSpec\(shape=\([^)]*\))|Python inputs incompatible with input_signature",
           lambda m, e: (f"{_in_function(e)}the tf.function's input_signature refuses this call"
                         + (f" (given {m.group('got').removeprefix('TensorSpec(')}, the spec says "
                            f"{m.group('want').removeprefix('TensorSpec(')})" if m.group("got") else "")
                         + ": a size fixed in a TensorSpec accepts only that size; write None for one that "
                           "varies (batch, time), the same number in both otherwise")),
    _entry("unpack-count", ["ValueError"],
           r"too many values to unpack \(expected (?P<n>\d+)\)|not enough values to unpack \(expected (?P<m>\d+), "
           r"got (?P<g>\d+)\)",
           lambda m, e: (f"{_in_function(e)}a result unpacked into {m.group('n') or m.group('m')} names has "
                         + ("more parts" if m.group("n") else f"{m.group('g')}") + ": " + _unpack_fix(e))),
    _entry("static-size-none", ["ValueError", "TypeError"],
           r"'NoneType' object cannot be interpreted as an integer|Argument `size` must be provided if argument "
           r"`flow` is not provided", _static_size_line),
    # int(x.shape[1]) of an unknown axis: only when the kata's own line reads a static shape
    _entry("static-size-none", ["TypeError"],
           r"int\(\) argument must be a string, a bytes-like object or a (?:real )?number, not 'NoneType'",
           lambda m, e: _static_size_line(m, e) if any(".shape" in line for line in _kata_lines(e)) else None),
    _entry("batch-size-none", ["ValueError", "TypeError"],
           r"Prefix or suffix can't be None|Cannot convert a partially known TensorShape|"
           r"Expected int32, but got None of type 'NoneType'",
           lambda m, e: ("a static shape with None (the batch size, unknown until run time) is used as a number: "
                         "use the dynamic size tf.shape(x)[0], not x.shape[0] or x.get_shape()[0]")),
    # a Keras sparse cross entropy given (logits, labels), PyTorch's order: Keras 3's and Keras 2's words
    _entry("loss-arguments-swapped", ["ValueError", "InvalidArgumentError"],
           r"Argument `output` must have rank \(ndim\) `target.ndim - 1`. Received: target.shape=(?P<t>\([^)]*\)), "
           r"output.shape=(?P<o>\([^)]*\))|`labels.shape` must equal `logits.shape` except for the last dimension. "
           r"Received: labels.shape=(?P<l>\([^)]*\)) and logits.shape=(?P<g>\([^)]*\))",
           lambda m, e: (f"{_in_function(e)}a sparse cross entropy got labels of shape {m.group('t') or m.group('l')} "
                         f"and predictions of shape {m.group('o') or m.group('g')} (as Keras reshaped them): are they the "
                         "other way round? Keras losses take (y_true, y_pred): the labels first, then the logits "
                         "(PyTorch's loss(input, target) is the reverse)")),
    # a gradient of None (a variable the loss does not depend on) used in arithmetic, on a kata line that asks for
    # gradients: tf.gradients / tape.gradient give None there, GradientDescentOptimizer.minimize skips them
    _entry("none-gradient", ["TypeError"],
           r"unsupported operand type\(s\) for .*'NoneType'",
           lambda m, e: _none_gradient(e)),
    # a kata function called by kata code (not through a test's guard, tfkata.returned) gave None, and the line
    # that called it used the None at once (x, y = batch_for_step(...)): name the function that returned nothing
    _entry("kata-function-returned-none", ["TypeError", "AttributeError"],
           r"'NoneType' object|NoneType",
           lambda m, e: _none_from_kata_call(e)),
)


def _through_numpy_iterator(exc: BaseException) -> bool:
    """Whether a frame of ``exc``'s traceback holds a dataset's numpy iterator (as_numpy_iterator's
    ``NumpyIterator``; AutoGraph's frame of the traced function has it among its free variables)."""
    import traceback

    return any("NumpyIterator" in type(value).__name__
               for frame, _ in traceback.walk_tb(exc.__traceback__) for value in list(frame.f_locals.values()))


# The now track (nNN: TF 2, eager and tf.function) never gets TF 1 advice: no sess.run, no feed_dict,
# no initializer op. These entries say it the TF 2 way there; every other entry fits both tracks.
NOW_LINES: dict[str, Callable[[re.Match, BaseException], str]] = {
    "uninitialized-variable": lambda m, e: (
        f"variable '{m.group('v') or m.group('w')}' is read before it has a value: in TF 2 a tf.Variable gets its "
        "value when it is created (tf.Variable(initial_value)), and a Keras layer makes its weights on its first "
        "call (or build): call the layer once before reading them"),
    "placeholder-not-fed": lambda m, e: (
        "a tf.compat.v1.placeholder in TF 2 code: there is no feeding in TF 2; pass the values as the "
        "function's arguments (a tf.function traces them as inputs)"),
    "numpy-in-graph": lambda m, e: (
        "a numpy iterator (dataset.as_numpy_iterator()) calls .numpy() on every element, which works only eagerly, "
        "and this runs inside a tf.function: iterate the dataset itself, iter(dataset), whose elements are tensors"
        if _through_numpy_iterator(e) else
        "tensor.numpy() works only eagerly, and this runs inside a tf.function (or a Keras graph), where a tensor "
        "has no value yet: keep it a tensor and use TF ops, or return it and call .numpy() outside"),
    "fetch-none": lambda m, e: "a function returned None (a missing `return`?): return the tensor you computed",
    "unknown-rank": lambda m, e: (
        f"{_in_function(e)}shape.as_list() on a shape of unknown rank (TensorShape(None): not even the number of "
        "axes is known) has no list to give: test shape.rank is None first"),
    "no-gradients": lambda m, e: (
        "the loss does not depend on any trainable variable through ops the tape recorded: compute it INSIDE "
        "`with tf.GradientTape() as tape:` from the model's tensors (not numpy values or constants), without "
        ".numpy() or tf.stop_gradient"),
    "tensor-as-bool": lambda m, e: (
        "Python `if`/`while`/`and` on a symbolic tensor: inside a tf.function write a plain `if`/`while` on a "
        "tensor condition (AutoGraph turns it into tf.cond / tf.while_loop), use tf.logical_and for `and`, "
        "or tf.where for element-wise choices"),
    "feed-a-tensor": lambda m, e: "feed_dict is TF 1: in TF 2 pass tensors to the function as arguments",
    "tf1-name": _tf1_name_now,
    "graph-finalized": lambda m, e: (
        "an op was added to a finalized graph: TF 2 code runs eagerly or inside a tf.function; do not build "
        "tf.compat.v1 graphs here"),
    "iterator-not-initialized": lambda m, e: (
        f"{_in_function(e)}a tf.compat.v1 initializable iterator in TF 2 code: iterate the tf.data.Dataset itself "
        "(for batch in dataset, or it = iter(dataset) and next(it)), which needs no initializer"),
}


# --------------------------------------------------------------------------- API
def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def diagnose(exc: BaseException, *, target_dir: Path | None = None, under_test: str | None = None,
             track: str | None = None) -> Diagnosis | None:
    """The first table entry that explains ``exc`` (or an exception it was raised from), else None.
    ``track="now"`` (an nNN kata) gives TF 2 advice (:data:`NOW_LINES`), never ``sess.run``.

    With ``target_dir`` (katas/ or solutions/) and ``under_test`` (a kata id), a TODO raised from
    another kata's file is explained too (:func:`other_kata_todo`).
    """
    if target_dir is not None and under_test is not None:
        line = other_kata_todo(exc, under_test, target_dir)
        if line:
            return Diagnosis("other-kata-todo", line)
    for e in chain(exc):
        if is_test_failure(e):
            return None
        names, text = _names(e), str(e)
        for entry in TABLE:
            if names.isdisjoint(entry.exceptions):
                continue
            m = entry.pattern.search(text)
            if m:
                explain = NOW_LINES.get(entry.key, entry.explain) if track == "now" else entry.explain
                line = explain(m, e)
                if line:
                    return Diagnosis(entry.key, line)
    return None


def other_kata_todo(exc: BaseException, under_test: str, target_dir: Path) -> str | None:
    """When a stub of ANOTHER kata raised the NotImplementedError: which one, where, and what to do
    (the stub is found by :func:`tfkata.feedback.facts.find_todo`, the one place that knows a TODO)."""
    from tfkata import registry

    todo = find_todo(exc, target_dir)
    under = registry.get(under_test).id
    if todo is None or todo.kata in (under, "?"):
        return None
    return (f"{under} uses your {todo.kata}: {todo.kata}'s {todo.function} is not written yet ({todo.where}): "
            f"finish {todo.kata} first (kata run {todo.kata})")
