"""No kata function may return an object that claims to equal anything.

Tests compare what a function returned with what it should be (``got == expected``, ``x.shape.as_list() ==
[...]``). An object whose ``__eq__`` always says True (``unittest.mock.ANY``, a class of one's own) would pass
every such comparison without computing anything: the classic way for a submission to write its own grade.
:func:`check` runs after every call of a kata function (the loader's guard, :mod:`tfkata.untouched`) and
fails the test when the result, or an item of a tuple, list or dict it returned, equals a fresh object no
honest value can equal. Library values (numpy, TensorFlow, Keras, Python's own types) are not asked.
"""
from __future__ import annotations

from tfkata.untouched import NO_TRACEBACK, Failure

_LIBRARIES = {"builtins", "numpy", "tensorflow", "keras", "tf_keras", "collections", "matplotlib"}
_DEPTH = 2
_ITEMS = 64


class _Nothing:
    """A fresh object no honest value equals."""


class RiggedResult(Failure):
    """A kata function returned an object equal to anything (a test failure, like pytest.fail: not an
    Exception, so no ``except Exception`` turns it into another message)."""


def _equal_to_anything(value) -> bool:
    if (type(value).__module__ or "").split(".")[0] in _LIBRARIES:
        return False
    try:
        return (value == _Nothing()) is True
    except Exception:  # an __eq__ that raises claims nothing
        return False


def _rigged(value, depth: int = 0) -> tuple[str, str] | None:
    """(where in ``value`` an object equal to anything sits: "" for ``value`` itself, "[2]", "['x'][0]"; its
    type's name), or None."""
    if _equal_to_anything(value):
        return "", type(value).__name__
    if depth >= _DEPTH:
        return None
    if isinstance(value, (tuple, list)):
        items = enumerate(value[:_ITEMS])
    elif isinstance(value, dict):
        items = list(value.items())[:_ITEMS]
    else:
        return None
    for key, item in items:
        inner = _rigged(item, depth + 1)
        if inner is not None:
            return f"[{key!r}]{inner[0]}", inner[1]
    return None


def check(name: str, result) -> None:
    """Fail when ``result`` (what the kata function ``name`` returned) is or holds an object equal to anything."""
    found = _rigged(result)
    if found is not None:
        where, kind = found
        where = f"result{where}" if where else "the result"
        raise RiggedResult(f"{name}: returned an object that says it equals anything ({where}, of type {kind}, "
                           "whose == is always True): return the real value; no test can be passed by an object "
                           "that agrees with every comparison", **NO_TRACEBACK)
