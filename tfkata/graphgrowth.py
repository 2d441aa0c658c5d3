"""A TF 1 kata function must not grow its graph while it loops over ``Session.run``.

The classic TF 1 bug: an op built inside a training or evaluation loop (``global_variables_initializer()``,
``tf.argmax``, a loss or an assign written in the loop body) is a new op at every step. The numbers come out
right, but the graph grows with every step, each step gets slower and the memory is never given back, which
is why the slides build the whole graph first and only run it in the loop. A test reaches a kTT kata
function through :func:`tfkata.loader.load_kata`, which calls it inside :func:`watching`: every
``Session.run`` during that one call notes the size of its graph (``Graph.version``, the count of ops ever
added; the default graph's is noted at the call's start), and when the graph grew before many of the runs the
test fails, naming the function, however right its results: after the test's own checks (the plugin asks
:func:`take`), so that a test with a more particular message for the same mistake says that one first. A
few ops built between a loop's phases (an initializer before the loop, an accuracy op after it) pass: only
growth before at least ``_MIN_GROWN`` runs, a third of them or more, counts as a loop that builds. A call that has grown its graph before ``_STOP_AT`` runs is stopped there, inside its loop: a training
loop that builds would otherwise grow for minutes and end at the test's time limit, blamed on another line.
"""
from __future__ import annotations

import collections
import contextlib

from tfkata.untouched import NO_TRACEBACK, Failure

_MIN_GROWN = 3  # runs that found new ops in the graph: fewer is a phase boundary, not a loop that builds
_STOP_AT = 200  # runs that found new ops: stop the call there (a long training loop would grow for minutes)
_pending: list[str] = []  # the problems of the calls a test made (the plugin fails the test with the first one)
_patched: list = []


class GraphGrew(Failure):
    """A kata function built new ops between its Session.run calls, again and again (a test failure)."""


class _Watch:
    """One watched call: per graph, its version at the last run; how many runs found it grown."""

    def __init__(self, name: str, start: tuple[int, int] | None = None, graph=None):
        self.name = name
        self.last: dict[int, int] = {}
        self.first: dict[int, int] = {}  # each graph's version when the call first saw it
        self.graphs: dict[int, object] = {}
        self.grown = self.runs = self.added = 0
        if start is not None:
            self.last[start[0]] = self.first[start[0]] = start[1]
            if graph is not None:
                self.graphs[start[0]] = graph

    def saw(self, graph: int, version: int, graph_object=None) -> None:
        if graph in self.last:
            self.grown += version > self.last[graph]
            self.added += max(0, version - self.last[graph])
        else:
            self.first[graph] = version
        if graph_object is not None:
            self.graphs[graph] = graph_object
        self.runs += 1
        self.last[graph] = version

    def _what(self) -> str:
        """What the call built, in words: a train op, an initializer, or the most frequent new op types."""
        ops = [op for key, graph in self.graphs.items() for op in graph.get_operations()
               if getattr(op, "_id", -1) > self.first.get(key, 0)]
        if not ops:
            return ""
        if any(op.type.startswith(("Apply", "ResourceApply")) or op.name.startswith("gradients") for op in ops):
            return (": a train op (an optimizer's minimize, or tf.gradients) was built in the loop; make it once, "
                    "before the loop")
        if any(op.type == "NoOp" and "init" in op.name.lower() for op in ops):
            return (": an initializer was built in the loop (run there, it also sets every variable back); "
                    "global_variables_initializer() once, before the loop")
        kinds = collections.Counter(op.type for op in ops).most_common(3)
        return ": new ops " + ", ".join(f"{kind} x{count}" for kind, count in kinds)

    def problem(self, minimum: int = _MIN_GROWN) -> str | None:
        if self.grown < minimum or 3 * self.grown < self.runs:
            return None
        return (f"{self.name}: built new ops between its Session.run calls, before {self.grown} of its {self.runs} runs "
                f"(it added {self.added} ops to the graph{' before it was stopped' if minimum == _STOP_AT else ''}"
                f"{self._what()}): build every op once, before the loop, and only run it there (an initializer, a "
                f"loss, an argmax or an assign written in the loop body is a new op at every step: the graph grows "
                f"and each step gets slower)")


_watches: list[_Watch] = []  # the calls being watched (calls can nest)


def _patch() -> None:
    """Wrap ``BaseSession.run`` once per process: a watched call notes the graph's version at every run, and a
    call that has grown its graph before ``_STOP_AT`` runs is stopped there, inside its loop."""
    if _patched:
        return
    from tensorflow.python.client import session as session_lib

    real = session_lib.BaseSession.run

    def run(self, *args, **kwargs):
        for watch in _watches:
            watch.saw(id(self.graph), self.graph.version, self.graph)
            problem = watch.problem(_STOP_AT)
            if problem:
                raise GraphGrew(problem, **NO_TRACEBACK)
        return real(self, *args, **kwargs)

    run.__wrapped__ = real
    session_lib.BaseSession.run = run
    _patched.append(real)


def growth_problem(name: str, versions: list[tuple[int, int]]) -> str | None:
    """The failure message for one call, or None when it did not build in a loop. ``versions``: (graph, version)
    at the call's start (the default graph) and at each Session.run; a run counts as grown when its graph has
    more ops than at that graph's entry before it (runs on two graphs are not compared)."""
    watch = _Watch(name, versions[0] if versions else None)
    for graph, version in versions[1:]:
        watch.saw(graph, version)
    return watch.problem()


@contextlib.contextmanager
def watching(name: str):
    """Watch one call of the kata function ``name``: after it returns, note a problem if it built ops in a loop
    (:func:`take`); past ``_STOP_AT`` grown runs, stop it there with :class:`GraphGrew`."""
    _patch()
    import tensorflow as tf

    graph = tf.compat.v1.get_default_graph()
    watch = _Watch(name, (id(graph), graph.version), graph)  # what was built before the first run counts
    _watches.append(watch)
    try:
        yield
    finally:
        del _watches[next(i for i, w in enumerate(_watches) if w is watch)]
    problem = watch.problem()
    if problem:
        _pending.append(problem)


def forget() -> None:
    """A test starts: no problem of an earlier test's calls is its."""
    _pending.clear()


def take() -> str | None:
    """The first problem the test's calls left (then none): the plugin fails a test that passed its own checks
    with it, so that a test's own, more particular message comes first where it has one."""
    found = _pending[0] if _pending else None
    _pending.clear()
    return found
