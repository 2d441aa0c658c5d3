"""Where the learner stands, per kata, from the recorded results (:mod:`tfkata.store`) and the files."""
from __future__ import annotations

import dataclasses

from tfkata import registry, source
from tfkata.results import Run, TestResult
from tfkata.store import Store, is_stale


@dataclasses.dataclass
class Progress:
    kata: registry.Kata
    available: bool
    missing: str | None  # what is missing when not available
    results: Run | None
    stale: bool  # the learner's file (or the test file) changed after the last recorded run
    passed_before: bool = False  # stale, but the file (and tests) are one that passed a complete run earlier

    @property
    def tests(self) -> list[TestResult]:
        return self.results.graded if self.results else []

    @property
    def earned(self) -> int:
        if self.passed_before:  # the file is one that earned every point of a complete run
            return self.possible
        return sum(t.points_earned for t in self.tests)

    @property
    def possible(self) -> int:
        return sum(t.points for t in self.tests if t.status != "skip")

    def count(self, *statuses: str) -> int:
        return sum(t.status in statuses for t in self.tests)

    @property
    def done(self) -> bool:
        return (bool(self.results) and self.results.done) or self.passed_before

    @property
    def status(self) -> str:
        """done | in progress | failing | TODO | error | not available yet"""
        if not self.available:
            return "not available yet"
        if self.results is None:
            return "TODO"
        if not self.tests:
            return "error"
        if self.done:
            return "done"
        if self.count("fail", "error"):
            return "failing"
        return "in progress" if self.count("pass") else "TODO"

    @property
    def fraction(self) -> float:
        return self.earned / self.possible if self.possible else 0.0

    @property
    def first_problem(self) -> TestResult | None:
        return self.results.first_problem if self.results else None

    @property
    def problems(self) -> list[TestResult]:
        return self.results.problems if self.results else []


def progress(store: Store, kata: registry.Kata) -> Progress:
    root = store.root
    missing = [p for p in (kata.test_file, kata.path("katas")) if not (root / p).exists()]
    results = store.load_results(kata) if not missing else None
    stale = results is not None and is_stale(root, kata, store.results_path(kata), results)
    passed_before = stale and store.kata_done(kata)  # a failed try undone: the file that passed is back
    return Progress(kata, not missing, ", ".join(missing) or None, results, stale, passed_before)


def all_progress(store: Store) -> list[Progress]:
    return [progress(store, k) for k in registry.katas()]


def learning_order(rows: list[Progress]) -> list[Progress]:
    """Each kNN followed by its TF 2 twin (k04 -> n04 -> k05), then what has no twin, in registry order."""
    by_id = {r.kata.id: r for r in rows}
    order: list[Progress] = []
    for row in rows:
        if row.kata.track != "then":
            continue
        order.append(row)
        order += [r for r in rows if r.kata.twin == row.kata.id]
    return order + [r for r in rows if r not in order and r.kata.id in by_id]


def current(store: Store, rows: list[Progress] | None = None) -> Progress | None:
    """The first available kata that is not done, each kNN before its twin nNN (None when all are done)."""
    for row in learning_order(rows if rows is not None else all_progress(store)):
        if row.available and not row.done:
            return row
    return None


def stubs_left(store: Store, kata: registry.Kata) -> list[source.Function]:
    """The learner's functions still raising NotImplementedError, in file order."""
    return source.stub_functions(store.root / kata.path("katas"))
