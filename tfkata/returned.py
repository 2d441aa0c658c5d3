"""A kata function whose reference always returns a value may not return None.

A forgotten ``return`` (or an ``if`` branch that falls off the end) is among the commonest mistakes, and what
it leads to names nothing: ``TypeError: cannot unpack non-iterable NoneType object`` in the test's line, or
``expected a MultiRNNCell, got NoneType``. :func:`check` runs after every call of a kata function a test makes
(the loader's guard, :mod:`tfkata.untouched`, beside :mod:`tfkata.rigged`) and fails the test at once, naming
the function, when it returned None although every path of the reference solution returns a value (read from
the reference's source: no ``return None``, no bare ``return``, no ``yield``, no way to fall off the end, no
``return tape.gradient(...)``, which is None for a source the tape did not watch). A function whose reference may
return None (``first_bad_op``: "None when no op is bad") is never asked.
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

from tfkata.untouched import NO_TRACEBACK, Failure


class ReturnedNone(Failure):
    """A kata function returned None where it must return a value (a test failure, like pytest.fail)."""


def _own_nodes(node):
    """The nodes of a function's own body: not those of the functions, lambdas and classes it defines."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        yield child
        yield from _own_nodes(child)


def _ends(body: list[ast.stmt]) -> bool:
    """Whether running ``body`` always ends in a ``return`` or ``raise`` (never falls off its end)."""
    if not body:
        return False
    last = body[-1]
    if isinstance(last, (ast.Return, ast.Raise)):
        return True
    if isinstance(last, ast.If):
        return _ends(last.body) and _ends(last.orelse)
    if isinstance(last, (ast.With, ast.AsyncWith)):
        return _ends(last.body)
    if isinstance(last, ast.Try):
        return _ends(last.finalbody) or (_ends(last.body + last.orelse) and all(_ends(h.body) for h in last.handlers))
    return False


def always_returns_value(node: ast.FunctionDef) -> bool:
    """Every way out of the function ``node`` returns a value other than None (or raises)."""
    own = list(_own_nodes(node))
    if any(isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await)) for n in own):
        return False
    returns = [n for n in own if isinstance(n, ast.Return)]
    if not returns or any(r.value is None or (isinstance(r.value, ast.Constant) and r.value.value is None)
                          or _may_give_none(r.value) for r in returns):
        return False
    return _ends(node.body)


_NONE_GIVERS = {"gradient"}  # methods whose None the kata's own tests explain


def _may_give_none(value: ast.expr) -> bool:
    """A returned call whose library result is None in a case the kata teaches: ``tape.gradient(y, x)`` of an
    x the tape did not watch (the test then says why, better than "a return is missing")."""
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and value.func.attr in _NONE_GIVERS)



@functools.lru_cache(maxsize=None)
def _top_level_functions(reference: Path) -> tuple[ast.FunctionDef, ...]:
    """The top-level functions of the reference file (none when it cannot be read or parsed)."""
    try:
        tree = ast.parse(reference.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return ()
    return tuple(n for n in tree.body if isinstance(n, ast.FunctionDef))


@functools.lru_cache(maxsize=None)
def valued_in(reference: Path) -> frozenset[str]:
    """The top-level functions of the reference file that always return a value."""
    return frozenset(n.name for n in _top_level_functions(reference) if always_returns_value(n))


@functools.lru_cache(maxsize=None)
def refusing_in(reference: Path) -> frozenset[str]:
    """The top-level functions of the reference file that raise for some argument (a ``raise`` of their own)."""
    return frozenset(n.name for n in _top_level_functions(reference)
                     if any(isinstance(m, ast.Raise) for m in _own_nodes(n)))


def check(name: str, result, reference: Path) -> None:
    """Fail when the kata function ``name`` returned None and its reference (the file ``reference``) always
    returns a value."""
    if result is None and name in valued_in(reference):
        refuses = (" (or raise, for an argument its docstring says it refuses: a `dict.get` or an `if` without "
                   "`else` gives None instead)") if name in refusing_in(reference) else ""
        raise ReturnedNone(f"{name}: returned None, where it must return what its docstring says{refuses}: is a "
                           "`return` missing, does a branch or a loop end without one, or is it the None of a call "
                           "that gives nothing back (sess.run of an op, list.append, print)?", **NO_TRACEBACK)
