"""Differential checks: the learner's function against the reference on generated inputs.

The concept tests of a kata explain the mistakes we know of, one sentence each. This module is the net
behind them for the mistakes nobody listed: a graded test hands :func:`compare` a list of cases,
smallest first (batch 1, non-square shapes, ``T > max(lengths)``, negative values, ties, repeated ids,
orders that matter), and a way to turn one function's output on one case into numbers. The learner's
module and the reference (``solutions/``, whatever the run's target) run the same case, each in a fresh
graph with the same seeds (kNN) or eagerly with the same seeds (nNN). The first case where they
differ fails the test with one line: ``on x of shape [1, 3] with lengths [1], yours gives …, the
reference gives …``. Against ``--solutions`` it compares the reference with itself; the mistake
catalogue, run as the learner sees it, proves it can fail.

    from tfkata.differential import Case, compare, graph_outputs, reference

    REF = reference("k06")

    def _run(mod, case):                       # numbers only: what the function determines
        return graph_outputs(lambda: mod.top_output(make_state(case)))

    @pytest.mark.covers("top_output")
    def test_top_output_matches_reference():
        compare("top_output", k06, REF, CASES, _run)

Where a function has freedom (variable names, initial values, iteration order), ``run`` returns only
what is determined: assign the same weights to both, sort what has no order, compare shapes of what is
random.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Iterable

import numpy as np

from tfkata import registry
from tfkata.feedback.diagnoses import diagnose
from tfkata.loader import ensure_on_path, fresh_graph, seed_everything
from tfkata.paths import reference_package, repo_root
from tfkata.stubprobe import raise_if_stub
from tfkata.testing import mismatch
from tfkata.tfsetup import SEED, import_tensorflow


@dataclasses.dataclass(frozen=True)
class Case:
    """One generated input: ``args`` for the run function and the words that describe it to a learner
    (``"x of shape [1, 3] with lengths [1]"``)."""

    label: str
    args: Any = None

    def __repr__(self) -> str:
        return self.label




def reference(kata_id: str):
    """The reference module of a kata (``solutions/<module>.py``), whatever the run grades."""
    kata = registry.get(kata_id)
    ensure_on_path(repo_root())
    import_tensorflow()
    return importlib.import_module(f"{reference_package()}.{kata.module}")


def graph_outputs(build: Callable[[], Any], feed: Callable[[Any], dict] | None = None, *, seed: int = SEED,
                  initialize: bool = True):
    """Build in a fresh seeded graph, initialise the variables, run what ``build`` returns (any nest of
    tensors and plain values) and give its numpy values. ``feed(built)`` may return a feed dict."""
    tf = import_tensorflow()
    with fresh_graph(seed) as graph:
        built = build()
        with tf.compat.v1.Session(graph=graph) as sess:
            if initialize:
                sess.run(tf.compat.v1.global_variables_initializer())
            fetches, where = _fetchable(built)
            values = sess.run(fetches, feed_dict=feed(built) if feed else None) if fetches else []
    return _fill(built, where, values)


def eager_outputs(call: Callable[[], Any], *, seed: int = SEED, keras: bool = True):
    """Call eagerly after seeding numpy, ``random``, TensorFlow (and Keras); numpy values of the result."""
    seed_everything(seed, keras=keras)
    return to_numpy(call())


def to_numpy(value):
    """A nest of tensors / variables / arrays / numbers as the same nest of numpy values."""
    if isinstance(value, dict):
        return {k: to_numpy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [to_numpy(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if hasattr(value, "numpy"):
        return np.asarray(value.numpy())
    if value is None or isinstance(value, (str, bytes, bool)):
        return value
    return np.asarray(value)


def _fetchable(built):
    """The tensors in a nest (for one sess.run) and their paths."""
    tf = import_tensorflow()
    fetches, where = [], []

    def walk(value, path):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, path + (k,))
        elif isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
            for i, v in enumerate(value):
                walk(v, path + (i,))
        elif isinstance(value, tuple):  # a namedtuple (LSTMStateTuple)
            for i, v in enumerate(value):
                walk(v, path + (i,))
        elif isinstance(value, (tf.Tensor, tf.Variable)) or hasattr(value, "graph"):
            fetches.append(value)
            where.append(path)

    walk(built, ())
    return fetches, where


def _fill(built, where, values):
    """``built`` with each fetched tensor replaced by its value (namedtuples become plain tuples)."""
    got = dict(zip(where, values))

    def walk(value, path):
        if path in got:
            return np.asarray(got[path])
        if isinstance(value, dict):
            return {k: walk(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            items = [walk(v, path + (i,)) for i, v in enumerate(value)]
            return items if isinstance(value, list) else tuple(items)
        return to_numpy(value)

    return walk(built, ())


def describe(value, limit: int = 70) -> str:
    """A short phrase for a value a learner can read: ``array of shape (2, 3) [[0.1, …]]``."""
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {describe(v, 30)}" for k, v in value.items()) + "}"
    elif isinstance(value, (list, tuple)):
        text = ("(" if isinstance(value, tuple) else "[") + ", ".join(describe(v, 30) for v in value)
        text += ")" if isinstance(value, tuple) else "]"
    elif isinstance(value, np.ndarray) and value.ndim > 0:
        flat = np.array2string(value.ravel()[:6], precision=4, separator=", ", threshold=6)
        more = ", …" if value.size > 6 else ""
        text = f"shape {list(value.shape)} {value.dtype} {flat[:-1]}{more}]"
    else:
        text = repr(value.item() if isinstance(value, np.generic) or (isinstance(value, np.ndarray)) else value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_KINDS = {"b": "bool", "i": "integer", "u": "integer", "f": "float", "c": "complex"}  # numbers of another kind differ


def difference(got, expected, atol: float = 1e-5, rtol: float = 1e-4) -> str | None:
    """None when two nests of values agree (float32 tolerances), else where they first differ."""
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return f"keys {sorted(got) if isinstance(got, dict) else type(got).__name__} instead of {sorted(expected)}"
        for key in expected:
            found = difference(got[key], expected[key], atol, rtol)
            if found:
                return f"[{key!r}]: {found}"
        return None
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            n = len(got) if isinstance(got, (list, tuple)) else type(got).__name__
            return f"{n} items instead of {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            found = difference(g, e, atol, rtol)
            if found:
                return f"item {i}: {found}"
        return None
    if expected is None or isinstance(expected, (str, bytes)):
        return None if got == expected else f"{got!r} instead of {expected!r}"
    got_a, exp_a = np.asarray(got), np.asarray(expected)
    if got_a.shape != exp_a.shape:
        return f"shape {list(got_a.shape)} instead of {list(exp_a.shape)}"
    if _KINDS.get(got_a.dtype.kind, "other") != _KINDS.get(exp_a.dtype.kind, "other") \
            and {got_a.dtype.kind, exp_a.dtype.kind} <= set(_KINDS):
        return (f"{_KINDS[got_a.dtype.kind]}s ({got_a.dtype}) instead of {_KINDS[exp_a.dtype.kind]}s ({exp_a.dtype})"
                f"{'' if got_a.ndim else f': {got_a.item()!r}'}")
    if exp_a.dtype.kind in "biuSUO" or got_a.dtype.kind in "SUO":
        if np.array_equal(got_a, exp_a):
            return None
        if exp_a.ndim == 0:
            return f"{got_a.item()!r} instead of {exp_a.item()!r}"
        bad = np.argwhere(np.asarray(got_a != exp_a).reshape(exp_a.shape))
        at = tuple(int(i) for i in bad[0])
        return f"{got_a[at]!r} instead of {exp_a[at]!r} at index {at} ({len(bad)} of {exp_a.size} differ)"
    found = mismatch(got_a, exp_a, atol=atol, rtol=rtol)
    related = relation(got_a, exp_a, atol, rtol) if found else None
    return f"{related}; {found}" if related else found


def relation(got: np.ndarray, expected: np.ndarray, atol: float = 1e-5, rtol: float = 1e-4) -> str | None:
    """How a wrong float array relates to the right one, when it is a simple slip: a constant factor (a mean
    for a sum, a missing normalisation), swapped last axes, a shift by one step, a reversed or reordered axis.
    None when no such relation holds (or the arrays are too small to tell)."""
    got, exp = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    if got.shape != exp.shape or exp.size < 2 or not np.all(np.isfinite(got)) or not np.all(np.isfinite(exp)):
        return None

    def close(a, b):
        return a.shape == b.shape and np.allclose(a, b, atol=atol, rtol=rtol)

    if not np.any(got) and np.any(exp):
        return "yours is all zeros where the reference is not (a value never computed, assigned or returned?)"
    norm = float(np.sum(exp * exp))
    if norm > 0 and np.ptp(exp) > 0:
        factor = float(np.sum(got * exp)) / norm
        if abs(factor - 1) > 1e-3 and close(got, factor * exp):
            return f"yours is the reference times {factor:.4g} everywhere (a factor: a mean for a sum, a scale or a normalisation)"
        if close(got - exp, np.full_like(exp, float(np.mean(got - exp)))):
            return f"yours is the reference plus {float(np.mean(got - exp)):.4g} everywhere (an added constant)"
    if exp.ndim >= 2 and exp.shape[-1] == exp.shape[-2] and close(got, np.swapaxes(exp, -1, -2)):
        return "yours is the reference transposed (its last two axes swapped)"
    for axis in range(exp.ndim):
        n = exp.shape[axis]
        if n < 2:
            continue
        got_head, exp_head = (np.take(a, range(0, n - 1), axis=axis) for a in (got, exp))
        got_tail, exp_tail = (np.take(a, range(1, n), axis=axis) for a in (got, exp))
        if n >= 3 and close(got_tail, exp_head) and not close(got_head, exp_head):
            return f"yours is the reference one step later along axis {axis} (off by one: a step too late)"
        if n >= 3 and close(got_head, exp_tail) and not close(got_tail, exp_tail):
            return f"yours is the reference one step earlier along axis {axis} (off by one: a step too early)"
        if close(got, np.flip(exp, axis=axis)):
            return f"yours is the reference reversed along axis {axis}"
        if n <= 64:
            order = [next((j for j in range(n) if close(np.take(got, i, axis=axis), np.take(exp, j, axis=axis))), None)
                     for i in range(n)]
            if None not in order and sorted(order) == list(range(n)):
                return f"yours holds the reference's entries along axis {axis} in another order ({order})"
    return None


class Mismatch(AssertionError):
    """The learner's function and the reference disagree on a generated case (the test's own sentence)."""


def compare(function: str, learner, ref, cases: Iterable[Case], run: Callable[[Any, Case], Any], *,
            atol: float = 1e-5, rtol: float = 1e-4, hint: str = "") -> None:
    """Run ``run(module, case)`` for the learner's module and the reference on every case, smallest
    first; fail on the first case where they differ, naming the case and both results.

    A stub's NotImplementedError passes through (the test stays TODO). Any other error from the
    learner's side on a case the reference handles fails with the case named and the error chained."""
    if learner is not ref:
        raise_if_stub(learner, function)
    for case in cases:
        expected = run(ref, case)
        try:
            got = run(learner, case)
        except NotImplementedError:
            raise
        except Exception as exc:
            known = diagnose(exc)  # a known TensorFlow error says its cause and fix, not TensorFlow's cut-off text
            raise Mismatch(
                f"{function}: on {case.label}, yours raised {type(exc).__name__}: "
                f"{known.line if known else _one_line(exc)}; the reference gives {describe(expected)}{_hint(hint)}") from exc
        found = difference(got, expected, atol, rtol)
        if found:
            # where they differ first (a long value cut short reads alike on both sides), then what each gives
            mine, theirs = describe(got), describe(expected)
            both = "" if mine == theirs else f" (yours gives {mine}, the reference {theirs})"
            raise Mismatch(f"{function}: on {case.label}, yours differs from the reference: {found}{both}{_hint(hint)}")


def _hint(hint: str) -> str:
    return f": {hint}" if hint else ""


def _one_line(exc: BaseException, limit: int = 160) -> str:
    """The real first line (TensorFlow's 'Graph execution error:' wrapper and node dumps removed)."""
    from tfkata.feedback.facts import first_line

    return first_line(exc, limit)
