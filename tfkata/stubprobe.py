"""Is the learner's function still the untouched stub? Then its NotImplementedError is raised at once.

A stub's test is TODO whatever else it would do; on a fresh clone ~600 graded tests are, and building
their inputs, fixtures and reference results first was most of a learner's first ``pytest``. Two uses:

* :func:`raise_if_all_stubs` — the plugin, before a graded test's fixtures: every function the test
  covers is a stub, so the test is TODO without running it;
* :func:`raise_if_stub` — a differential check, before running the reference on its cases.

Both raise the stub's own NotImplementedError from the learner's file (the frame ``find_todo`` reads),
by calling it with ``None`` for every argument; anything else (written code, a decorated function, an
error other than NotImplementedError) returns and the test runs as usual.
"""
from __future__ import annotations

import functools
import inspect
import os
import sys
from pathlib import Path

from tfkata import untouched
from tfkata.source import scan_file


@functools.lru_cache(maxsize=64)
def _scan(path: str, mtime_ns: int) -> dict:
    """{name: is_stub} of every function, class and method of the file (a class: True when it has
    methods and every one is a stub)."""
    found = {f.name: f.is_stub for f in scan_file(path)}
    for name in [n for n in found if "." not in n]:
        methods = [stub for other, stub in found.items() if other.startswith(name + ".")]
        if methods:
            found[name] = all(methods)
    return found


def _stubs(path) -> dict:
    try:
        return _scan(str(path), os.stat(path).st_mtime_ns)
    except OSError:
        return {}


def raise_if_all_stubs(learner, path: Path, names: list[str]) -> None:
    """``names`` (a test's covers) all untouched stubs in ``path``: raise the first one's NotImplementedError."""
    stubs = _stubs(path)
    if names and all(stubs.get(name) for name in names):
        raise_if_stub(learner, names[0])


def raise_if_stub(learner, function: str) -> None:
    """A function (or a class whose ``__init__``) still the untouched stub: raise its NotImplementedError."""
    target = getattr(learner, function, None)
    if getattr(target, untouched.MARK, False):  # the loader's guard around the learner's own function
        target = target.__wrapped__
    path = getattr(sys.modules.get(getattr(target, "__module__", None) or ""), "__file__", None)
    stubs = _stubs(path) if path else {}
    if inspect.isclass(target):
        init = vars(target).get("__init__")
        if not inspect.isfunction(init) or not stubs.get(f"{function}.__init__"):
            return
        try:
            first = [object.__new__(target)]
        except TypeError:
            return
        call = init
    elif inspect.isfunction(target) and not hasattr(target, "__wrapped__") and stubs.get(function):
        first, call = [], target
    else:
        return
    try:
        params = list(inspect.signature(call).parameters.values())
    except (TypeError, ValueError):
        return
    positional = [None for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    keywords = {p.name: None for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty}
    try:
        call(*(first + positional[len(first):]), **keywords)
    except NotImplementedError:
        raise
    except Exception:  # noqa: BLE001 - not the stub after all: the test runs
        return
