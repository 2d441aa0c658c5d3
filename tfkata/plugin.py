"""The tf-katas pytest plugin (loaded by the repository's conftest.py): pytest hooks only.

* Target: ``--solutions`` (or ``TFKATA_TARGET=solutions``) grades ``solutions/``, else ``katas/``;
  resolved once here and handed to the loader.
* A learner's run (target katas) grades the katas only: ``tests/harness/`` (the harness's own tests)
  runs with ``--solutions`` or when named on the command line. ``pytest`` from any folder of the
  checkout grades the whole checkout.
* Outcomes (:mod:`tfkata.feedback.classify`): TODO in one line; ``waiting`` for a training run whose unit tests
  do not pass yet, or a test that ``needs`` another kata that does not pass yet; a diagnosis line
  first and the learner's own frames only (``--tb=long`` shows everything); time-outs that name the
  function that was running.
* Markers: ``points(n)``, ``covers(*functions)``, ``training``, ``needs(kata)``, ``slow``
  (``--runslow``), ``gpu``, ``eager``, ``timeout``.
* Results: :class:`tfkata.recorder.Recorder` builds the typed :class:`tfkata.results.Run`;
  ``--results-json PATH`` writes it; a run against katas/ also records each fully-run kata in
  ``.tfkata/`` for the ``kata`` command. The grade table ends every run (:mod:`tfkata.summary`).
* Every graded kNN test runs in a fresh seeded ``tf.Graph``; nNN tests run eagerly, seeded.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from tfkata import loader, registry
from tfkata.feedback.upstream import failing_upstream
from tfkata.recorder import Recorder, covers_of, is_worker, kata_of, needs_of, test_facts
from tfkata.stubprobe import raise_if_all_stubs
from tfkata.tfsetup import SEED, WARNING_FILTERS, configure_env, gpu_devices, import_tensorflow

MARKERS = {
    "points(n)": "grading weight of a test (default 1)",
    "slow": "long CPU run; skipped unless --runslow",
    "gpu": "needs a GPU visible to TensorFlow; skipped otherwise",
    "eager": "runs eagerly: no fresh tf.Graph is made the default for this test",
    "covers(*functions)": "the kata functions a graded test grades (hints and progress use it)",
    "differential": "compares the covered function with the reference on generated inputs (tfkata.differential)",
    "training": "a training run: waits until the unit tests of the functions it covers pass",
    "needs(kata_id)": "uses another kata's functions (k08 uses k07, nNN its kNN): waits until that kata passes",
    "machinery": "a harness test of the grader's own machinery (the kata command, the plugin, the mistakes "
                 "runner, the repository's layout) that reads nothing a TensorFlow line changes: tox's middle lines "
                 "(2.15, 2.16, 2.19) skip it; 2.12 (Keras 2) and 2.21 (Keras 3) run it",
    "restraint": "checks what a function must leave undone (no session run, nothing printed, an empty list "
                 "initialising nothing), which an empty body meets too: runs after the function's other unit tests "
                 "and waits while one of them fails, so doing nothing earns nothing (bench/hollow.py)",
}


# --------------------------------------------------------------------------- options & config
def pytest_addoption(parser):
    group = parser.getgroup("tf-katas")
    group.addoption("--solutions", action="store_true", default=False,
                    help="run the tests against solutions/ instead of katas/ (same as TFKATA_TARGET=solutions)")
    group.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")
    group.addoption("--results-json", metavar="PATH", default=None, help="write the results as JSON to PATH")
    group.addoption("--assume-done", metavar="KATAS", default="",
                    help="comma-separated kata ids whose tests that need them never wait (the mistakes runner's "
                         "learner view: every other kata is the reference's code)")
    group.addoption("--first-tests-of", metavar="FUNCTIONS", default=None,
                    help="run the concept tests that grade these functions (comma-separated; a method: its class's "
                         "tests too) before the others, each group in file order (the mistakes runner: with -x the "
                         "test that catches a mistake in FUNCTION comes first instead of after every passing test "
                         "above it; kata run: the functions changed or failing since the last run)")
    group.addoption("--first-failure", metavar="PATH", default=None,
                    help="write the first failing graded test's name and first line to PATH (JSON) as soon as it "
                         "fails, so kata run can show it while the other tests run")
    parser.addini("tfkata_memory_limit_mb", default="4096",
                  help="a graded test that grows the process by more than this many MB is stopped (0: no limit)")


def _resolve_target(config) -> str:
    if config.getoption("solutions"):
        return "solutions"
    try:
        return loader.target_from_env()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    target = _resolve_target(config)
    root = Path(str(config.rootpath))
    config._tfkata_target = target
    config._tfkata_root = root
    loader.set_target(target)
    configure_env()  # before anything imports TensorFlow
    loader.ensure_on_path(root)
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    for spec in WARNING_FILTERS:
        config.addinivalue_line("filterwarnings", spec)
    _grade_from_anywhere(config, root)
    _workers(config)
    _set_memory_limit(config)
    config._tfkata = Recorder(config, target)
    config.pluginmanager.register(config._tfkata, "tfkata-recorder")


WORKERS = 2  # pytest --solutions on the whole suite: two processes, one test file each at a time


def _workers(config) -> None:
    """``pytest --solutions`` over the whole suite runs on two pytest-xdist workers where it is installed and
    the machine has the cores (``-n 0`` or ``-p no:xdist``: one process). Whoever asks for workers (``-n``)
    gets them by file: a file's tests share their trained model and wait for the unit tests above them."""
    if not config.pluginmanager.hasplugin("xdist") or is_worker(config) or config.getoption("collectonly"):
        return
    if config.option.numprocesses is None and config.getoption("solutions") and (os.cpu_count() or 1) >= WORKERS \
            and getattr(config, "args_source", None) == pytest.Config.ArgsSource.TESTPATHS \
            and not config.getoption("usepdb") and config.option.dist == "no":
        config.option.numprocesses = WORKERS
        config.option.tx = ["popen"] * WORKERS
        config.option.dist = "loadfile"
        if getattr(config.option, "maxworkerrestart", None) is None:
            # a worker that crashes (TensorFlow's C++, once) is replaced; by file, xdist runs the test it crashed
            # in again on each new worker: two tries, not the default 4 per worker
            config.option.maxworkerrestart = 2
    elif config.option.dist == "load":
        config.option.dist = "loadfile"
    if config.option.dist == "loadfile":
        config.option.loadscopereorder = False  # files in the order collected (training first), not by size


def _set_memory_limit(config) -> None:
    from tfkata import watchdog

    value = config.getini("tfkata_memory_limit_mb")
    try:
        watchdog.memory_limit_mb[0] = float(value)
    except ValueError:
        raise pytest.UsageError(f"tfkata_memory_limit_mb must be a number of MB, got {value!r}") from None


def _grade_from_anywhere(config, root: Path) -> None:
    """``pytest`` with no arguments from a subfolder (katas/, solutions/) grades the checkout's tests/."""
    source = getattr(config, "args_source", None)
    invoked = Path(str(config.invocation_params.dir)).resolve()
    if source is not None and source.name == "INVOCATION_DIR" and invoked != root and root in invoked.parents:
        config.args[:] = [str(root / "tests")]


def pytest_ignore_collect(collection_path, config):
    """The harness's self-tests are for CI and contributors: not in a learner's ``pytest``."""
    if getattr(config, "_tfkata_target", "katas") != "katas" or collection_path.name != "harness":
        return None
    if collection_path.parent.name != "tests":
        return None
    named = [Path(str(a).split("::")[0]).resolve() for a in config.args]
    if any(p == collection_path or collection_path in p.parents for p in named):
        return None
    return True


def pytest_collection(session):
    # Test modules `import tensorflow` at their top: import it first, quietly (see tfsetup).
    import_tensorflow()


def pytest_report_header(config):
    lines = [f"tf-katas: grading {config._tfkata_target}/"]
    if config._tfkata_target == "katas":
        lines.append("          (pytest --solutions runs the same tests against solutions/)")
    return lines


# --------------------------------------------------------------------------- markers and waiting
def pytest_collection_modifyitems(config, items):
    skip_slow = pytest.mark.skip(reason="slow test: run it with --runslow")
    for item in items:
        if "slow" in item.keywords and not config.getoption("runslow"):
            item.add_marker(skip_slow)
    if is_worker(config):
        # files with a training run first: the workers take them in this order (see _workers), and the long
        # ones started last would leave one worker running alone at the end
        slow = {i.path for i in items if i.get_closest_marker("training") is not None}
        items.sort(key=lambda i: i.path not in slow)  # stable: each file's own order stays
    items[:] = _restraints_last(items)
    first = config.getoption("first_tests_of")
    if first:
        ahead = _concept_tests_of([f.strip() for f in first.split(",") if f.strip()], items)
        items[:] = ahead + [i for i in items if i not in ahead]


def _restraints_last(items: list) -> list:
    """Each ``restraint`` test moved right after the last other unit test of its file that covers one of its
    functions (it waits on their verdicts, see _waiting_reason); every other test keeps its place."""
    def plain_unit(i):
        return all(i.get_closest_marker(m) is None for m in ("restraint", "training", "differential"))

    moved = {}
    for r in (i for i in items if i.get_closest_marker("restraint") is not None):
        names = set(covers_of(r))
        after = [i for i in items if i.path == r.path and plain_unit(i) and names & set(covers_of(i))]
        if after and items.index(after[-1]) > items.index(r):
            moved[r] = after[-1]
    if not moved:
        return items
    out = []
    for i in items:
        if i not in moved:
            out.append(i)
            out += [r for r, anchor in moved.items() if anchor is i]
    return out


def _concept_tests_of(functions: list[str], items: list) -> list:
    """The unit tests that grade one of ``functions`` (``Class.method``: the class's tests too), differential
    checks excepted: those run where the file puts them, after every concept test, as in a learner's run; and
    training runs, which wait for the unit tests."""
    names = set(functions) | {f.split(".")[0] for f in functions}
    return [i for i in items if names & set(covers_of(i))
            and i.get_closest_marker("differential") is None and i.get_closest_marker("training") is None]


_gpu_cache: list = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if item.get_closest_marker("skip") is not None:
        return  # skipped whatever the learner wrote (a slow test without --runslow): never "waiting", no points
    if item.get_closest_marker("gpu") is not None:
        if not _gpu_cache:
            _gpu_cache.append(bool(gpu_devices()))
        if not _gpu_cache[0]:
            pytest.skip("no GPU: tf.config.list_physical_devices('GPU') is empty "
                        "(needs an NVIDIA GPU and a CUDA build, e.g. pip install 'tensorflow[and-cuda]')")
    reason = _waiting_reason(item)
    if reason is not None:
        item._tfkata_waiting = reason
        pytest.skip(reason)
    kata = kata_of(item)
    if kata is not None and item.config._tfkata_target == "katas":
        # every function it grades still the stub: TODO now, before its fixtures and inputs are built
        raise_if_all_stubs(loader.load_kata(kata.id), item.config._tfkata_root / "katas" / f"{kata.module}.py",
                           covers_of(item))


def _waiting_reason(item) -> str | None:
    kata = kata_of(item)
    if kata is None:
        return None
    config = item.config
    recorder: Recorder = config._tfkata
    for name in covers_of(item):
        blocked = loader.blocked(kata.id, name)
        if blocked:
            return blocked
    if config._tfkata_target == "katas":
        assumed = {k.strip() for k in (config.getoption("assume_done") or "").split(",") if k.strip()}
        for need in needs_of(item):
            if need in assumed:
                continue
            done = recorder.kata_state(need)
            todo = f"finish {need} first (kata run {need}: a complete run, its training tests included)"
            if done is None:
                from tfkata.store import Store

                store = Store(config._tfkata_root)
                done = store.kata_done(registry.get(need))
                last = None if done else store.load_results(registry.get(need))
                if last is not None and last.done:  # it passed, then its file (or tests) changed
                    todo = f"{need} changed since its last complete run passed: run it again (kata run {need})"
            if not done:
                return f"{kata.id} uses your {need}: {todo}; this test runs once {need}'s tests pass"
    if item.get_closest_marker("restraint") is not None:
        blockers = [t for t in recorder.unit_problems(kata.id, covers_of(item)) if t.status in ("fail", "error")]
        if blockers:
            funcs = list(dict.fromkeys(f for t in blockers for f in t.covers if f in covers_of(item)))
            return (f"checks what {' and '.join(funcs)} must NOT do, which an empty function does not do either: "
                    f"it counts once {'their' if len(funcs) > 1 else 'its'} other tests pass "
                    f"({len(blockers)} still fail{'s' if len(blockers) == 1 else ''}: {blockers[0].name})")
    if item.get_closest_marker("training") is not None:
        blockers = recorder.unit_problems(kata.id, covers_of(item))
        if blockers:
            # what each failure is about, or the failing function it is likely a knock-on of
            problems = recorder.unit_problems(kata.id, [])
            funcs = list(dict.fromkeys(failing_upstream(t, problems) or t.function for t in blockers if t.function))
            return (f"training waits for {len(blockers)} unit test{'s' if len(blockers) != 1 else ''} "
                    f"still to pass ({', '.join(funcs[:4])}{', …' if len(funcs) > 4 else ''})")
    return None


# --------------------------------------------------------------------------- nothing hangs
def _limit_of(item) -> float:
    """The test's time limit in seconds, as pytest-timeout reads it (marker, --timeout, ini); 0: none."""
    try:
        from pytest_timeout import _get_item_settings

        return float(_get_item_settings(item).timeout or 0)
    except Exception:  # pytest-timeout absent or changed: the ini value
        try:
            return float(item.config.getini("timeout") or 0)
        except (ValueError, TypeError):
            return 0.0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A graded test runs under the watchdog (:mod:`tfkata.watchdog`): past its limit, or grown past the
    memory limit, TensorFlow's work is cancelled even where no signal reaches it."""
    if kata_of(item) is None:
        yield
        return
    from tfkata import watchdog

    from tfkata import graphgrowth

    graphgrowth.forget()
    config = item.config
    loader.record_uses()  # which of the kata's functions the test reads: knock-on failures name them
    with watchdog.watch(item, _limit_of(item), config._tfkata_root / config._tfkata_target, kata_of(item).module):
        yield
    item._tfkata_lasting = ()  # the frames the watchdog sampled: let them go
    stuck = getattr(item, "_tfkata_stuck", None)
    if stuck:
        _block(item, stuck)


# (specname: this module has its own pytest_runtest_setup; a second function of that name would replace it)
@pytest.hookimpl(hookwrapper=True, specname="pytest_runtest_setup")
def pytest_runtest_setup_watched(item):
    yield from _in_phase(item)


@pytest.hookimpl(hookwrapper=True, specname="pytest_runtest_call")
def pytest_runtest_call_watched(item):
    yield from _in_phase(item)


@pytest.hookimpl(hookwrapper=True, specname="pytest_runtest_call")
def pytest_runtest_call_graph_growth(item):
    """A TF 1 kata function that grew its graph in a loop (:mod:`tfkata.graphgrowth`) fails a test that passed
    its own checks: one that failed on its own says its own, more particular, line first."""
    outcome = yield
    if kata_of(item) is None:
        return
    from tfkata import graphgrowth

    found = graphgrowth.take()
    if found and outcome.excinfo is None:
        outcome.force_exception(graphgrowth.GraphGrew(found, pytrace=False))


@pytest.hookimpl(hookwrapper=True, specname="pytest_runtest_teardown")
def pytest_runtest_teardown_watched(item, nextitem):
    yield from _in_phase(item)


def _in_phase(item):
    """The watchdog may stop a graded test only inside its phases (see tfkata.watchdog.phase)."""
    if kata_of(item) is None:
        yield
        return
    from tfkata import watchdog

    with watchdog.phase():
        yield


def _block(item, stuck: str) -> None:
    """The function that did not return is not called again in this run (the other tests wait)."""
    kata = kata_of(item)
    name = stuck if stuck.split(".")[0] in kata.hints else next(iter(covers_of(item)), None)
    if name:
        loader.block(kata.id, name, f"{kata.id}: {name} did not return in {item.name}; "
                                    f"this test waits until it does (fix it, then run again)")


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def _tfkata_isolation(request):
    """Graded tests: seeds fixed and, for kNN unless marked eager, a fresh default tf.Graph."""
    kata = kata_of(request.node)
    if kata is None:
        yield
        return
    if kata.track == "now" or request.node.get_closest_marker("eager") is not None:
        loader.seed_everything(SEED, keras=kata.track == "now")
        yield None
        return
    with loader.fresh_graph() as graph:
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
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Every test's report, tagged with the tf-katas status (todo / waiting), message and TODO.

    A graded test's failure is shown as the learner should see it (:mod:`tfkata.feedback.classify`), and the
    report is built here so that pytest never formats the long traceback it would throw away (that
    took most of a learner's first run: ~0.1 s per TODO test)."""
    excinfo = call.excinfo
    got = None
    if excinfo is not None and not excinfo.errisinstance(pytest.skip.Exception):
        from tfkata.feedback.classify import classify

        config = item.config
        kata = kata_of(item)
        full = kata is None or config.option.tbstyle not in ("auto", None) or config.option.fulltrace
        got = classify(excinfo.value, excinfo.tb, kata=kata, target_dir=config._tfkata_root / config._tfkata_target,
                       tests_dir=config._tfkata_root / "tests", full=full, hang=getattr(item, "_tfkata_hang", None),
                       covers=covers_of(item), lasting=getattr(item, "_tfkata_lasting", ()))
    if got is None or got.report is None:
        report = pytest.TestReport.from_item_and_call(item, call)
    else:
        outcome, longrepr = "failed", got.report
        if got.status == "waiting":
            outcome, longrepr = "skipped", (str(item.path), item.location[1] or 0, got.message)
        sections = [(f"Captured {key} {when}", _without_stack_dump(content))
                    for when, key, content in item._report_sections]
        sections = [(title, content) for title, content in sections if content.strip()]
        report = pytest.TestReport(
            item.nodeid, item.location, {x: 1 for x in item.keywords}, outcome, longrepr, call.when, sections,
            call.duration, call.start, call.stop, user_properties=item.user_properties,
        )
    if got is not None and got.stuck:
        item._tfkata_stuck = got.stuck
    report.tfkata_status = got.status if got else None
    report.tfkata_message = got.message if got else None
    report.tfkata_todo = got.todo if got else None
    if is_worker(item.config):  # the report travels to the controller, which has no items: as plain data
        report.tfkata_test = test_facts(item)
        report.tfkata_todo = dataclasses.asdict(got.todo) if got and got.todo else None
    report.tfkata_about = got.about if got else None
    kata = kata_of(item)
    report.tfkata_uses = loader.uses(kata.id) if kata is not None else []
    waiting = getattr(item, "_tfkata_waiting", None)
    if waiting is not None and report.skipped:
        report.tfkata_status, report.tfkata_message = "waiting", waiting
    return report


_DUMP = re.compile(r"\+{5,} Timeout \+{5,}\n.*\+{5,} Timeout \+{5,}\n?", re.S)


def _without_stack_dump(text: str) -> str:
    """pytest-timeout prints every other thread's stack (the watchdog's) on a time-out: not the learner's."""
    return _DUMP.sub("", text)


def pytest_report_teststatus(report, config):
    status = getattr(report, "tfkata_status", None)
    if status == "todo":
        return "todo", "T", ("TODO", {"yellow": True})
    if status == "waiting" and report.when in ("setup", "call"):
        return "waiting", "w", ("WAITING", {"yellow": True})
    return None


# --------------------------------------------------------------------------- the end
@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    from tfkata import summary

    summary.write(terminalreporter, config._tfkata.finish(), config._tfkata_root)


def pytest_sessionfinish(session):
    config = session.config
    recorder: Recorder = getattr(config, "_tfkata", None)
    if recorder is None:
        return
    if is_worker(config):  # the controller writes the files, from every worker's reports
        config.workeroutput.update(recorder.worker_output())
        return
    run = recorder.finish()
    path = config.getoption("results_json")
    if path:
        run.dump(path)
    if config._tfkata_target == "katas" and run.katas:
        from tfkata.store import Store

        store = Store(config._tfkata_root)
        for kata in recorder.complete_katas():
            store.write_results(kata, run.for_kata(kata.id))
