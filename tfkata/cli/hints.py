"""Which hint the learner gets next: for the function they are on, never spilling into another one."""
from __future__ import annotations

from dataclasses import dataclass

from tfkata import registry
from tfkata.progress import progress, stubs_left
from tfkata.store import Store


def hint_key(kata: registry.Kata, name: str | None) -> str | None:
    """The registry's hint key for a function name (``Class.method`` counts as ``Class``)."""
    if not name:
        return None
    if name in kata.hints:
        return name
    head = name.split(".")[0]
    return head if head in kata.hints else None


def focus(store: Store, kata: registry.Kata) -> str | None:
    """The function the learner is on: the function of the first TODO or failing test of the last
    run (by the test's ``covers``), else the first stub left in the file; None when the kata is done."""
    row = progress(store, kata)
    if row.results is not None and not row.stale:
        if row.done:
            return None
        test = row.first_problem
        if test is not None:
            key = hint_key(kata, test.function)
            if key:
                return key
    for func in stubs_left(store, kata):
        key = hint_key(kata, func.name)
        if key:
            return key
    return None


@dataclass
class Pick:
    func: str | None
    number: int | None  # None: nothing new to show
    note: str | None = None


def next_hint(store: Store, kata: registry.Kata, func: str | None) -> Pick:
    """The next unseen hint of ``func`` (default: :func:`focus`)."""
    if func is None:
        func = focus(store, kata)
        if func is None:
            row = progress(store, kata)
            if row.done and not row.stale:
                return Pick(None, None, f"{kata.id} is done: every test passes. "
                                        f"To read a hint again: kata hint {kata.id} N -f FUNCTION")
            return Pick(None, None, f"no stub left in {kata.path('katas')} and no recorded failure: "
                                    f"run kata run {kata.id}, or name a function: kata hint {kata.id} -f NAME")
    hints = kata.hints[func]
    shown = store.shown_hints(kata.id, func)
    unseen = [n for n in range(1, len(hints) + 1) if n not in shown]
    if not unseen:
        return Pick(func, None, f"all {len(hints)} hints for {func} were shown: "
                                f"kata hint {kata.id} N -f {func} shows one again")
    return Pick(func, unseen[0])
