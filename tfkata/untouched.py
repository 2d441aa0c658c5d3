"""Every kata function must leave the caller's arrays and lists as they were.

A test reaches a kata function through :func:`tfkata.loader.load_kata`, which hands out each plain function
wrapped by :func:`guarded`: before the call it notes every numpy array and Python list among the arguments
(also inside tuples, lists and dicts), after the call it compares, and a change fails the test with the
function, the argument and the first element that changed. So ``x -= x.mean()``, ``np.random.shuffle(data)``
or ``lengths.sort()`` on an argument is caught in every test that calls the function, whatever the
function is, without a test of its own. TensorFlow tensors and variables, models and other objects are not
looked at (a training function is meant to change its variables).
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import zlib

import numpy as np

try:
    import pytest

    Failure = pytest.fail.Exception
except ImportError:  # tests need pytest; outside them (a script importing the loader) a plain AssertionError
    Failure = AssertionError
NO_TRACEBACK = {"pytrace": False} if Failure is not AssertionError else {}

_COPY_LIMIT = 64 * 2**20  # bytes: a larger array is compared by checksum (MNIST's training images are 172 MB)
_DEPTH = 4  # how deep into tuples, lists and dicts

MARK = "_tfkata_untouched"  # set on the wrapper (stubprobe looks through it)


class ChangedInPlace(Failure):
    """A kata function changed an argument in place: a test failure with this message, as ``pytest.fail`` gives
    (not an Exception, so that a test's or a learner's ``except Exception`` around the call cannot turn it into
    another message; a differential check passes it on as it is)."""


def snapshot(value, depth: int = 0):
    """What :func:`difference` needs to tell whether ``value`` changed in place (None: nothing to watch)."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return None
        if value.nbytes <= _COPY_LIMIT:
            return ("array", value.shape, value.copy())
        return ("checksum", value.shape, zlib.crc32(np.ascontiguousarray(value).view(np.uint8)))
    if depth >= _DEPTH:
        return None
    if isinstance(value, list):
        return ("list", list(value), [_inner(v, depth) for v in value])
    if isinstance(value, tuple):
        inner = [_inner(v, depth) for v in value]
        return ("tuple", None, inner) if any(s is not None for s in inner) else None
    if isinstance(value, dict):
        return ("dict", dict(value), {k: _inner(v, depth) for k, v in value.items()})
    return None


def _inner(value, depth: int):
    return snapshot(value, depth + 1) if isinstance(value, (np.ndarray, list, tuple, dict)) else None


def _same(a, b) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):  # a number replaced by an equal tensor (1.0 == tf.constant(1.0)) is a change
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays and other things without a plain ==: not the same object
        return False


def _plain(x) -> str:
    if isinstance(x, np.generic):
        x = x.item()
    if x is None or isinstance(x, (bool, int, float, complex, str, bytes)):
        return repr(x) if len(repr(x)) <= 40 else repr(x)[:37] + "..."
    name = type(x).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _at(index) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def difference(snap, value, where: str) -> tuple[str, str] | None:
    """How ``value`` differs from its snapshot, in words naming ``where`` (e.g. ``x[0][2, 1]``), with the kind of
    what changed ("array", "list", ...: the fix depends on it); None when nothing did."""
    if snap is None:
        return None
    kind, held, kept = snap  # held: an array's shape, a list's or dict's items; kept: the copy or the inner snapshots
    if kind in ("array", "checksum"):
        if value.shape != held:
            return f"{where} had shape {list(held)}, now {list(value.shape)}", "array"
        if kind == "checksum":
            if zlib.crc32(np.ascontiguousarray(value).view(np.uint8)) != kept:
                return f"{where} (shape {list(held)}) has other values after the call", "array"
            return None
        if value.dtype != kept.dtype:
            return f"{where} had dtype {kept.dtype}, now {value.dtype}", "array"
        changed = ~((value == kept) | ((value != value) & (kept != kept)))  # NaN stays NaN
        if changed.any():
            first = tuple(np.argwhere(changed)[0]) if changed.ndim else ()
            return (f"{where}{_at(first) if first else ''} was {_plain(kept[first])}, now {_plain(value[first])} "
                    f"({int(changed.sum())} of {changed.size} elements changed)"), "array"
        return None
    if kind == "list":
        if len(value) != len(held):
            return f"the list {where} had {len(held)} items, now {len(value)}", "list"
        for i, (old, new) in enumerate(zip(held, value)):
            if old is not new and not _same(old, new):
                return f"{where}[{i}] was {_plain(old)}, now {_plain(new)} (the list was reordered or written to)", "list"
    if kind == "dict":
        if list(value) != list(held):
            return f"the dict {where} had the keys {list(held)}, now {list(value)}", "dict"
        for k, old in held.items():
            if old is not value[k] and not _same(old, value[k]):
                return f"{where}[{k!r}] was {_plain(old)}, now {_plain(value[k])}", "dict"
    items = kept.items() if kind == "dict" else enumerate(kept)
    for k, inner in items:
        found = difference(inner, value[k], f"{where}[{k!r}]")
        if found:
            return found
    return None


def _fix(kind: str) -> str:
    if kind == "list":
        return "build a new list (sorted(xs), not xs.sort(); xs + [x], not xs.append(x)) or copy it first (list(xs))"
    if kind == "dict":
        return "build a new dict ({**d, key: value}) or copy it first (dict(d))"
    return ("build a new array (x = x - m, not x -= m; x[np.random.permutation(len(x))], not np.random.shuffle(x)) "
            "or copy it first (x = x.copy())")


def guarded(function, after=None, around=None):
    """``function`` that fails, after it returned, when it changed an array or list it was given; ``after``
    (name, result), when given, then looks at what it returned (:func:`tfkata.rigged.check`); ``around``
    (name), when given, is a context manager each call runs in (:func:`tfkata.graphgrowth.watching`)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return function

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return function(*args, **kwargs)  # the call's own error, from the function itself
        watched = {name: snapshot(value) for name, value in bound.arguments.items()}
        watched = {name: snap for name, snap in watched.items() if snap is not None}
        with around(function.__name__) if around is not None else contextlib.nullcontext():
            result = function(*args, **kwargs)
        for name, snap in watched.items():
            found = difference(snap, bound.arguments[name], name)
            if found:
                what, kind = found
                if callable(result) and kind in ("list", "dict"):  # a maker whose returned function writes it later
                    raise ChangedInPlace(f"{function.__name__}: wrote to its argument {name} while making the function "
                                         f"it returns ({what}): nothing should change until that function runs. "
                                         f"Write to {name} inside the returned function's body, not before it is "
                                         f"made.", **NO_TRACEBACK)
                raise ChangedInPlace(f"{function.__name__}: changed its argument {name} in place ({what}). "
                                     f"Leave what you are given as it was (the caller uses it again): "
                                     f"{_fix(kind)}.", **NO_TRACEBACK)
        if after is not None:
            after(function.__name__, result)
        return result

    setattr(wrapper, MARK, True)
    return wrapper
