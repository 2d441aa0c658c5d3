"""A TF 1 kata function must not grow its graph while it loops over ``Session.run``.

The classic TF 1 bug: an op built inside a training or evaluation loop (``global_variables_initializer()``,
``tf.argmax``, a loss or an assign written in the loop body) is a new op at every step. The numbers come out
right, but the graph grows with every step, each step gets slower and the memory is never given back, which
is why the slides build the whole graph first and only run it in the loop. A test reaches a kTT kata
function through :func:`tfkata.loader.load_kata`, which calls it inside :func:`watching`: every
``Session.run`` during that one call notes the size of its graph (``Graph.version``, the count of ops ever
added; the default graph's is noted at the call's start), and when the graph grew before many of the runs the
call fails, naming the function, however right
its results. A few ops built between a loop's phases (an initializer before the loop, an accuracy op after
it) pass: only growth before at least ``_MIN_GROWN`` runs, a third of them or more, counts as a loop that
builds.
"""
from __future__ import annotations

import contextlib

from tfkata.untouched import NO_TRACEBACK, Failure

_MIN_GROWN = 3  # runs that found new ops in the graph: fewer is a phase boundary, not a loop that builds
_watches: list[list[tuple[int, int]]] = []  # one list of graph versions per call being watched (calls can nest)
_patched: list = []


class GraphGrew(Failure):
    """A kata function built new ops between its Session.run calls, again and again (a test failure)."""


def _patch() -> None:
    """Wrap ``BaseSession.run`` once per process: a watched call notes the graph's version at every run."""
    if _patched:
        return
    from tensorflow.python.client import session as session_lib

    real = session_lib.BaseSession.run

    def run(self, *args, **kwargs):
        if _watches:
            seen = (id(self.graph), self.graph.version)
            for versions in _watches:
                versions.append(seen)
        return real(self, *args, **kwargs)

    run.__wrapped__ = real
    session_lib.BaseSession.run = run
    _patched.append(real)


def growth_problem(name: str, versions: list[tuple[int, int]]) -> str | None:
    """The failure message for one call, or None when it did not build in a loop. ``versions``: (graph, version)
    at the call's start (the default graph) and at each Session.run; a run counts as grown when its graph has
    more ops than at that graph's entry before it (runs on two graphs are not compared)."""
    last: dict[int, int] = {}
    grown = runs = added = 0
    for position, (graph, version) in enumerate(versions):
        if graph in last:
            grown += version > last[graph]
            added += max(0, version - last[graph])
        runs += position > 0
        last[graph] = version
    if grown < _MIN_GROWN or 3 * grown < runs:
        return None
    return (f"{name}: built new ops between its Session.run calls, before {grown} of its {runs} runs (the graph grew "
            f"by {added} ops during the call): build every op once, before the loop, and only run it there (an "
            f"initializer, a loss, an argmax or an assign written in the loop body is a new op at every step: the "
            f"graph grows and each step gets slower)")


@contextlib.contextmanager
def watching(name: str):
    """Watch one call of the kata function ``name``: after it returns, fail if it built ops in a loop."""
    _patch()
    import tensorflow as tf

    graph = tf.compat.v1.get_default_graph()
    versions: list[tuple[int, int]] = [(id(graph), graph.version)]  # what was built before the first run counts
    _watches.append(versions)
    try:
        yield
    finally:
        del _watches[next(i for i, v in enumerate(_watches) if v is versions)]
    problem = growth_problem(name, versions)
    if problem:
        raise GraphGrew(problem, **NO_TRACEBACK)
