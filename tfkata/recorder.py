"""Collects one pytest run into a :class:`tfkata.results.Run` (registered by the plugin).

It also answers, during the run, what the plugin needs to decide that a test must wait: which unit
tests of a kata are still failing, and whether a kata passed in this run.

Under pytest-xdist (``pytest --solutions`` runs on two workers, one test file each at a time) every worker
records its own tests, so that waiting works as in one process, and the controller, which collects nothing,
builds the run from the reports: each carries what the worker knew of its test (:func:`test_facts`), and each
worker says at its end which katas it deselected and which TensorFlow it ran.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import pytest

from tfkata import registry
from tfkata.results import Run, TestResult, Todo
from tfkata.store import atomic_write, sources_digest


def kata_of(item) -> registry.Kata | None:
    return registry.for_test_file(item.path)


def points_of(item) -> int:
    marker = item.get_closest_marker("points")
    if marker is None:
        return 1
    if len(marker.args) != 1 or not isinstance(marker.args[0], int) or marker.args[0] < 0:
        raise pytest.UsageError(f"{item.nodeid}: use @pytest.mark.points(n) with a whole number n >= 0")
    return marker.args[0]


def covers_of(item) -> list[str]:
    names: list[str] = []
    for marker in item.iter_markers("covers"):
        names.extend(str(a) for a in marker.args)
    return list(dict.fromkeys(names))


def needs_of(item) -> list[str]:
    return [registry.get(str(a)).id for m in item.iter_markers("needs") for a in m.args]


def test_facts(item) -> dict:
    """What a result needs to know of its test (sent with the report from an xdist worker)."""
    kata = kata_of(item)
    return dict(name=item.name, kata=kata.id if kata else None, points=points_of(item), covers=covers_of(item),
                needs=needs_of(item), training=item.get_closest_marker("training") is not None,
                differential=item.get_closest_marker("differential") is not None)


def is_worker(config) -> bool:
    """This process is a pytest-xdist worker (the controller builds the run, writes the files, prints)."""
    return hasattr(config, "workerinput")


class Recorder:
    def __init__(self, config, target: str):
        self.config = config
        self.target = target
        self.results: dict[str, TestResult] = {}
        self.order: list[str] = []
        self.items: dict[str, pytest.Item] = {}
        self.collected: list[str] = []  # node ids to run (the controller of xdist workers: theirs)
        self.deselected: set[str] = set()  # kata ids with deselected tests
        self.tensorflow: str | None = None  # the workers' TensorFlow (the controller imports none)
        self.collect_errors: list[str] = []
        self.started = time.time()
        self.run: Run | None = None
        # what is graded, as it was when the run started (a save during the run makes it stale)
        root = getattr(config, "_tfkata_root", None)
        self.sources = {} if root is None or target != "katas" else {
            k.id: sources_digest(root, k) for k in registry.katas()}
        # a path, written once (by the controller, when there are workers)
        self.first_failure = None if is_worker(config) else config.getoption("first_failure", None)

    # ------------------------------------------------------------------ hooks
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        for item in items:
            self.items[item.nodeid] = item
        self.collected = [item.nodeid for item in items]

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        if not self.collected:  # every worker collects the same tests
            self.collected = list(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        told = getattr(node, "workeroutput", None) or {}
        self.deselected.update(told.get("tfkata_deselected", ()))
        self.tensorflow = self.tensorflow or told.get("tfkata_tensorflow")

    def worker_output(self) -> dict:
        """What a worker tells the controller at its end (see :meth:`pytest_testnodedown`)."""
        tf = sys.modules.get("tensorflow")
        return {"tfkata_deselected": sorted(self.deselected), "tfkata_tensorflow": getattr(tf, "__version__", None)}

    def pytest_deselected(self, items):
        for item in items:
            kata = kata_of(item)
            if kata is not None:
                self.deselected.add(kata.id)

    def pytest_collectreport(self, report):
        if report.failed:
            lines = report.longreprtext.strip().splitlines() or ["collection failed"]
            self.collect_errors.append(f"{report.nodeid}: {lines[-1].lstrip('E ').strip()}")

    def pytest_runtest_logreport(self, report):
        entry = self.results.get(report.nodeid)
        if entry is None:
            facts = self._facts(report)
            if facts is None:
                return
            entry = TestResult(id=report.nodeid, status="pass", **facts)
            self.results[report.nodeid] = entry
            self.order.append(report.nodeid)
        entry.duration = round(entry.duration + report.duration, 3)
        entry.uses = sorted(set(entry.uses) | set(getattr(report, "tfkata_uses", None) or ()))
        if report.when == "call" and report.capstdout.strip():
            entry.printed = report.capstdout.strip()
        if entry.status != "pass":
            return  # the first problem wins (a teardown error after a failure adds nothing)
        status = getattr(report, "tfkata_status", None)
        if status is not None:
            entry.status = status
        elif report.skipped:
            entry.status = "skip"
            if isinstance(report.longrepr, tuple):
                entry.message = str(report.longrepr[2]).removeprefix("Skipped: ")
            return
        elif report.failed:
            entry.status = "fail" if report.when == "call" else "error"
        else:
            return
        entry.message = getattr(report, "tfkata_message", None) or _short(report)
        todo = getattr(report, "tfkata_todo", None)
        entry.todo = Todo(**todo) if isinstance(todo, dict) else todo  # a dict from a worker
        entry.about = getattr(report, "tfkata_about", None)
        if entry.status in ("fail", "error"):
            text = report.longreprtext
            if getattr(report, "node", None) is not None:  # from a worker: pytest prints "[gw0] linux -- Python …" first
                text = text.split("\n", 1)[-1] if text.startswith("[gw") else text
            entry.report = _trim(text)
            if self.first_failure and entry.kata:
                self._tell_first_failure(entry)

    def _facts(self, report) -> dict | None:
        """The facts of a report's test: from its item; from a worker, as sent with the report; for a worker that
        crashed (xdist reports the test it was running, without them), what its node id says."""
        item = self.items.get(report.nodeid)
        if item is not None:
            return test_facts(item)
        facts = getattr(report, "tfkata_test", None)
        if facts is None and getattr(report, "node", None) is not None:
            kata = registry.for_test_file(report.nodeid.split("::")[0])
            facts = dict(name=report.nodeid.split("::")[-1], kata=kata.id if kata else None)
        return facts

    def _tell_first_failure(self, entry: TestResult) -> None:
        """The first graded failure, written at once for ``kata run`` (which shows it while the rest run)."""
        path, self.first_failure = Path(self.first_failure), None
        line = (entry.message or "").strip().splitlines()[0] if (entry.message or "").strip() else ""
        atomic_write(path, json.dumps({"test": entry.name, "line": line}))

    # ------------------------------------------------------------------ queries during the run
    def unit_problems(self, kata_id: str, functions: list[str]) -> list[TestResult]:
        """Unit tests of ``kata_id`` run so far that cover one of ``functions`` and do not pass."""
        wanted = set(functions)
        return [
            t for t in self.results.values()
            if t.kata == kata_id and not t.training and t.status in ("fail", "error", "todo", "waiting")
            and (not wanted or wanted & set(t.covers))
        ]

    def kata_state(self, kata_id: str) -> bool | None:
        """True/False when tests of ``kata_id`` ran in this session (all passed or not), else None."""
        mine = [t for t in self.results.values() if t.kata == kata_id]
        if not mine:
            return None
        return all(t.status in ("pass", "skip") for t in mine)

    # ------------------------------------------------------------------ the end
    def finish(self) -> Run:
        if self.run is None:
            tf = sys.modules.get("tensorflow")
            ran = set(self.results)
            self.run = Run.grade(
                self.target, [self.results[n] for n in self.order], registry.katas(), sources=self.sources,
                message="; ".join(self.collect_errors) or None,
                tensorflow=getattr(tf, "__version__", None) or self.tensorflow, python=platform.python_version(),
                started=self.started, duration=round(time.time() - self.started, 3),
                complete=not self.deselected and all(n in ran for n in self.collected),
            )
        return self.run

    def complete_katas(self) -> list[registry.Kata]:
        """Katas all of whose tests ran in this session (no -k/-m deselection, no -x cut)."""
        ran = set(self.results)
        out = []
        for kata in registry.katas():
            ids = [n for n in self.collected if registry.for_test_file(n.split("::")[0]) is kata]
            if ids and kata.id not in self.deselected and all(n in ran for n in ids):
                out.append(kata)
        return out


def _short(report) -> str:
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None and crash.message:
        return crash.message.splitlines()[0]
    lines = [line for line in (report.longreprtext or "").splitlines() if line.strip()]
    return lines[-1] if lines else "failed"


def _trim(text: str, limit: int = 120) -> str | None:
    lines = (text or "").rstrip().splitlines()
    if not lines:
        return None
    if len(lines) > limit:
        lines = lines[: limit // 3] + [f"... ({len(lines) - limit} lines cut) ..."] + lines[-(limit - limit // 3):]
    return "\n".join(lines)
