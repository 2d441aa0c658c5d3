"""Which catalogued mistake a failing test most likely shows, for the class summary of ``kata grade``.

A student's failing test is matched to the entries of its kata's catalogue (tfkata/mistakes/kNN.toml)
whose function the test is about (or covers) and whose ``expect`` words its first line says — the very
check that proves, in CI, that each catalogued mistake is *told* by that line. Several entries can say
the same words; the most specific (most ``expect`` items) win, ties are all counted. It is a hint for
the teacher ("12 students returned the wrong dtype from predict"), not a verdict: an invented mistake
can produce a catalogued sentence.
"""
from __future__ import annotations

import collections
import functools

from tfkata.mistakes import Mistake, load, tells
from tfkata.results import TestResult


@functools.lru_cache(maxsize=None)
def _catalogue(kata_id: str) -> tuple[Mistake, ...]:
    return tuple(load(kata_id))


def first_line(t: TestResult) -> str:
    text = (t.message or "").strip()
    return text.splitlines()[0].removeprefix("AssertionError: ") if text else ""


def likely(t: TestResult) -> list[Mistake]:
    """The catalogued mistakes ``t``'s failure most likely shows (empty for a pass, TODO or no match)."""
    if t.status != "fail" or not t.kata:
        return []
    line = first_line(t)
    functions = {t.about, *t.covers} - {None}
    found = [m for m in _catalogue(t.kata) if m.function in functions and m.expect and tells(line, m.expect)]
    if not found:
        return []
    most = max(len(m.expect) for m in found)
    return [m for m in found if len(m.expect) == most]


def most_matched(results, n: int = 8) -> list[tuple[Mistake, int]]:
    """Over a class (tfkata.grading.grader.Graded each), the catalogued mistakes seen by the most
    students, each student counted once per mistake.

    Among mistakes seen by as many students, those a student's failures matched alone come first: a
    submission whose failures match many entries (an empty or odd one) is weaker evidence for each."""
    seen: collections.Counter = collections.Counter()
    weight: collections.Counter = collections.Counter()
    by_key = {}
    for g in results:
        keys = set()
        for t in g.tests:
            for m in likely(t):
                keys.add(m.key)
                by_key[m.key] = m
        seen.update(keys)
        weight.update({k: 1 / len(keys) for k in keys})
    ranked = sorted(seen, key=lambda k: (-seen[k], -weight[k], k))
    return [(by_key[k], seen[k]) for k in ranked[:n]]
