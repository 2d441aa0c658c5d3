"""The tf-katas pytest plugin (loaded by the repository's conftest.py).

* ``--solutions`` (or ``TFKATA_TARGET=solutions``): run the same tests against ``solutions/``.
* TODO outcome: a test that fails because a kata function still raises ``NotImplementedError`` is
  reported in one line (kata, function, file:line), without a traceback.
* ``@pytest.mark.points(n)``: grading weight (default 1). Every run ends with a grade table in
  registry order; ``--results-json PATH`` writes the same data as JSON (schema in README.md).
* Markers: ``slow`` (opt in with ``--runslow``), ``gpu`` (skipped when TensorFlow sees no GPU),
  ``eager`` (no fresh graph: the test runs eagerly), ``timeout`` (pytest-timeout; a default for all).
* Every graded test runs in a fresh ``tf.Graph`` with fixed seeds.
"""
from __future__ import annotations

import json
import os
import platform
import random
import re
import sys
import time
import traceback
from pathlib import Path

import pytest

from tfkata import registry
from tfkata.loader import KataImportError, _ensure_on_path, fresh_graph, target
from tfkata.tfsetup import SEED, WARNING_FILTERS, configure_env, gpu_devices, import_tensorflow

STATUSES = ("pass", "fail", "todo", "skip", "error")
MARKERS = {
    "points(n)": "grading weight of a test (default 1)",
    "slow": "long CPU run; skipped unless --runslow",
    "gpu": "needs a GPU visible to TensorFlow; skipped otherwise",
    "eager": "runs eagerly: no fresh tf.Graph is made the default for this test",
    "covers(*functions)": "the kata functions a graded test grades (hints and progress use it)",
    "training": "a training run: waits until the unit tests of the functions it covers pass",
    "needs(kata_id)": "uses another kata's functions (k08 uses k07, nNN its kNN): waits until that kata passes",
}
_TIMEOUT = re.compile(r"Timeout \(>([0-9.]+)s\) from pytest-timeout")


# --------------------------------------------------------------------------- options & config
def pytest_addoption(parser):
    group = parser.getgroup("tf-katas")
    group.addoption(
        "--solutions",
        action="store_true",
        default=False,
        help="run the tests against solutions/ instead of katas/ (same as TFKATA_TARGET=solutions)",
    )
    group.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")
    group.addoption("--results-json", metavar="PATH", default=None, help="write the results as JSON to PATH")


def pytest_configure(config):
    if config.getoption("solutions"):
        os.environ["TFKATA_TARGET"] = "solutions"
    try:
        config._tfkata_target = target()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    configure_env()  # before anything imports TensorFlow
    _ensure_on_path(Path(str(config.rootpath)))
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    for spec in WARNING_FILTERS:
        config.addinivalue_line("filterwarnings", spec)
    config._tfkata = _Results(config)
    config.pluginmanager.register(config._tfkata, "tfkata-results")


def pytest_collection(session):
    # Test modules `import tensorflow` at their top: import it first, quietly (see tfsetup), so the
    # C++ runtime's start-up lines do not reach the terminal even with -s.
    import_tensorflow()


def pytest_report_header(config):
    lines = [f"tf-katas: grading {config._tfkata_target}/"]
    if config._tfkata_target == "katas":
        lines.append("          (pytest --solutions runs the same tests against solutions/)")
    return lines


# --------------------------------------------------------------------------- markers
def pytest_collection_modifyitems(config, items):
    skip_slow = pytest.mark.skip(reason="slow test: run it with --runslow")
    for item in items:
        if "slow" in item.keywords and not config.getoption("runslow"):
            item.add_marker(skip_slow)


_gpu_cache: list = []


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu") is not None:
        if not _gpu_cache:
            _gpu_cache.append(bool(gpu_devices()))
        if not _gpu_cache[0]:
            pytest.skip(
                "no GPU: tf.config.list_physical_devices('GPU') is empty "
                "(needs an NVIDIA GPU and a CUDA build, e.g. pip install 'tensorflow[and-cuda]')"
            )


def kata_of(item) -> registry.Kata | None:
    return registry.for_test_file(item.path)


def points_of(item) -> int:
    marker = item.get_closest_marker("points")
    if marker is None:
        return 1
    if len(marker.args) != 1 or not isinstance(marker.args[0], int) or marker.args[0] < 0:
        raise pytest.UsageError(f"{item.nodeid}: use @pytest.mark.points(n) with a whole number n >= 0")
    return marker.args[0]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def _tfkata_isolation(request):
    """Graded tests: seeds fixed and, unless marked eager, a fresh default tf.Graph."""
    kata = kata_of(request.node)
    if kata is None:
        yield
        return
    if kata.track == "now" or request.node.get_closest_marker("eager") is not None:
        tf = import_tensorflow()
        import numpy as np

        np.random.seed(SEED)
        random.seed(SEED)
        tf.random.set_seed(SEED)
        if kata.track == "now":  # Keras 3 keeps a seed of its own (Keras 2: the same call as above)
            import keras

            keras.utils.set_random_seed(SEED)
        yield None
        return
    with fresh_graph() as graph:
        yield graph


@pytest.fixture
def sess():
    """A tf.compat.v1.Session on the test's fresh graph, closed afterwards."""
    tf = import_tensorflow()
    session = tf.compat.v1.Session(graph=tf.compat.v1.get_default_graph())
    with session.as_default():
        yield session
    session.close()


# --------------------------------------------------------------------------- outcomes
def find_todo(exc: BaseException | None, target_dir: str):
    """(kata id, function, 'file:line', message) when ``exc`` is a stub's NotImplementedError."""
    seen = set()
    root = Path(target_dir).resolve()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, NotImplementedError):
            frame = None
            for tb_frame, lineno in traceback.walk_tb(exc.__traceback__):
                path = Path(tb_frame.f_code.co_filename).resolve()
                if root in path.parents:
                    frame = (tb_frame, lineno, path)
            if frame is not None:
                tb_frame, lineno, path = frame
                kata = registry.for_source_file(path)
                func = tb_frame.f_code.co_name
                qual = tb_frame.f_locals.get("self")
                if qual is not None and func != "<module>":
                    func = f"{type(qual).__name__}.{func}"
                rel = path.relative_to(root.parent).as_posix()
                return (kata.id if kata else "?", func, f"{rel}:{lineno}", str(exc))
        exc = exc.__cause__ or exc.__context__
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.tfkata_status = None
    report.tfkata_message = None
    if call.excinfo is None or report.skipped:
        return
    target_dir = str(Path(str(item.config.rootpath)) / item.config._tfkata_target)
    todo = find_todo(call.excinfo.value, target_dir)
    if todo is not None:
        kata_id, func, where, message = todo
        line = f"TODO {kata_id}: {func} is not written yet ({where})"
        report.tfkata_status = "todo"
        report.tfkata_message = line
        report.longrepr = line
        report.outcome = "failed"
        return
    value = call.excinfo.value
    if isinstance(value, KataImportError):
        # one short report instead of the same long chained traceback in every test of the kata
        cause = value.__cause__
        detail = "".join(traceback.format_exception_only(type(cause), cause)) if cause else ""
        report.tfkata_message = str(value)
        report.longrepr = f"{value}\n{detail}".rstrip()
        return
    match = _TIMEOUT.search(str(value)) if isinstance(value, pytest.fail.Exception) else None
    if match:
        limit = match.group(1)
        text = (
            f"timed out after {limit} s (pytest-timeout). If the code is right but this machine is slow, "
            f"raise the limit: pytest --timeout={int(float(limit)) * 2} (or 0 for none)"
        )
        report.tfkata_message = text
        report.longrepr = f"{text}\n\n{report.longreprtext}"


def pytest_report_teststatus(report, config):
    if getattr(report, "tfkata_status", None) == "todo":
        return "todo", "T", ("TODO", {"yellow": True})
    return None


# --------------------------------------------------------------------------- results & grades
class _Results:
    def __init__(self, config):
        self.config = config
        self.tests: dict[str, dict] = {}
        self.order: list[str] = []
        self.items: dict[str, pytest.Item] = {}
        self.collect_errors: list[str] = []
        self.started = time.time()

    def pytest_collection_modifyitems(self, items):
        for item in items:
            self.items[item.nodeid] = item

    def pytest_collectreport(self, report):
        if report.failed:
            lines = report.longreprtext.strip().splitlines() or ["collection failed"]
            self.collect_errors.append(f"{report.nodeid}: {lines[-1].lstrip('E ').strip()}")

    def pytest_runtest_logreport(self, report):
        item = self.items.get(report.nodeid)
        if item is None:
            return
        entry = self.tests.get(report.nodeid)
        if entry is None:
            kata = kata_of(item)
            entry = {
                "id": report.nodeid,
                "name": item.name,
                "kata": kata.id if kata else None,
                "status": "pass",
                "points": points_of(item),
                "points_earned": 0,
                "message": None,
                "duration": 0.0,
            }
            self.tests[report.nodeid] = entry
            self.order.append(report.nodeid)
        entry["duration"] = round(entry["duration"] + report.duration, 3)
        if entry["status"] != "pass":
            return  # the first problem wins (a teardown error after a failure adds nothing)
        status = getattr(report, "tfkata_status", None)
        if status == "todo":
            entry["status"] = "todo"
        elif report.skipped:
            entry["status"] = "skip"
            if isinstance(report.longrepr, tuple):
                entry["message"] = re.sub(r"^Skipped: ", "", str(report.longrepr[2]))
            return
        elif report.failed:
            entry["status"] = "fail" if report.when == "call" else "error"
        else:
            return
        entry["message"] = getattr(report, "tfkata_message", None) or _short(report)

    def finish(self) -> dict:
        for entry in self.tests.values():
            entry["points_earned"] = entry["points"] if entry["status"] == "pass" else 0
        per_kata = []
        for kata in registry.katas():
            tests = [t for t in self.tests.values() if t["kata"] == kata.id]
            if not tests:
                continue
            count = {s: sum(t["status"] == s for t in tests) for s in STATUSES}
            per_kata.append(
                {
                    "id": kata.id,
                    "title": kata.title,
                    "module": kata.module,
                    "passed": count["pass"],
                    "failed": count["fail"],
                    "todo": count["todo"],
                    "skipped": count["skip"],
                    "errors": count["error"],
                    "points": sum(t["points_earned"] for t in tests),
                    "points_possible": sum(t["points"] for t in tests if t["status"] != "skip"),
                    "duration": round(sum(t["duration"] for t in tests), 3),
                }
            )
        graded = [t for t in self.tests.values() if t["kata"] is not None]
        earned = sum(k["points"] for k in per_kata)
        possible = sum(k["points_possible"] for k in per_kata)
        if self.collect_errors:
            status = "error"
        elif all(t["status"] in ("pass", "skip") for t in self.tests.values()):
            status = "pass"
        else:
            status = "fail"
        tf = sys.modules.get("tensorflow")
        return {
            "version": 3,
            "status": status,
            "message": "; ".join(self.collect_errors) or None,
            "target": self.config._tfkata_target,
            "tensorflow": getattr(tf, "__version__", None),
            "python": platform.python_version(),
            "duration": round(time.time() - self.started, 3),
            "points": {"earned": earned, "possible": possible},
            "katas": per_kata,
            "tests": [self.tests[n] for n in self.order if n in {t["id"] for t in graded}]
            + [self.tests[n] for n in self.order if self.tests[n]["kata"] is None],
        }

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter):
        data = self.finish()
        self.config._tfkata_data = data
        tr = terminalreporter
        todos = [t for t in data["tests"] if t["status"] == "todo"]
        if todos:
            tr.section("TODO: functions still to write", sep="-", yellow=True)
            for t in todos:
                tr.write_line(f"{t['message']}   [{t['name']}]")
        if not data["katas"]:
            return
        tr.section(f"grades ({data['target']}/)", sep="=")
        header = f"{'kata':<5} {'title':<38} {'pass':>4} {'fail':>4} {'todo':>4} {'skip':>4} {'points':>9} {'time':>8}"
        tr.write_line(header)
        for k in data["katas"]:
            fails = k["failed"] + k["errors"]
            tr.write_line(
                f"{k['id']:<5} {k['title'][:38]:<38} {k['passed']:>4} {fails:>4} {k['todo']:>4} "
                f"{k['skipped']:>4} {str(k['points']) + '/' + str(k['points_possible']):>9} {k['duration']:>7.1f}s"
            )
        total = {key: sum(k[key] for k in data["katas"]) for key in ("passed", "failed", "errors", "todo", "skipped", "duration")}
        earned, possible = data["points"]["earned"], data["points"]["possible"]
        pct = 100.0 * earned / possible if possible else 0.0
        tr.write_line("-" * len(header))
        tr.write_line(
            f"{'total':<44} {total['passed']:>4} {total['failed'] + total['errors']:>4} {total['todo']:>4} "
            f"{total['skipped']:>4} {str(earned) + '/' + str(possible):>9} {total['duration']:>7.1f}s"
        )
        tr.write_line(f"grade: {earned}/{possible} points ({pct:.0f} %)")

    def pytest_sessionfinish(self, session):
        path = self.config.getoption("results_json")
        if not path:
            return
        data = getattr(self.config, "_tfkata_data", None) or self.finish()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _short(report) -> str:
    """The failure's own message: the last 'E ' lines of the report, else its last line."""
    text = report.longreprtext or ""
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None and crash.message:
        return crash.message
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[-1] if lines else "failed"
