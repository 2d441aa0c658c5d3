"""The `kata` command (tfkata/cli/), each test in a temporary copy of the repository.

Most checks need no TensorFlow: they fabricate recorded results (tfkata.results.Run) in .tfkata/.
Two start pytest on k01, the smallest kata: `kata run k01` on a solved copy, and `kata watch`
cancelling a run when a file is saved.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from tfkata import registry
from tfkata.cli import App, cli
from tfkata.progress import progress
from tfkata.results import Run, TestResult, Todo
from tfkata.stubs import stub_for

pytestmark = [pytest.mark.timeout(600), pytest.mark.machinery]
ROOT = Path(__file__).resolve().parents[2]
COPIED = ("katas", "solutions", "tests", "conftest.py", "pyproject.toml")
K01 = registry.get("k01")
ENV = {"COLUMNS": "200"}


def make_copy(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".tfkata", "kata-output", ".pytest_cache")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=skip)
        else:
            shutil.copy2(src, dest / name)
    for k in registry.katas():
        if (dest / k.path("solutions")).exists():
            (dest / k.path("katas")).write_text(stub_for(k, dest), encoding="utf-8")  # pristine stubs
    return dest


@pytest.fixture
def repo(tmp_path) -> Path:
    return make_copy(tmp_path / "repo")


def kata(repo: Path, *args: str, input: str | None = None):
    """Run `kata ARGS` in-process (click's CliRunner) with the copy as working directory."""
    old = os.getcwd()
    os.chdir(repo)
    try:
        return CliRunner().invoke(cli, list(args), input=input, env=ENV, catch_exceptions=False)
    finally:
        os.chdir(old)


def subprocess_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TFKATA_TARGET"}
    env.update(ENV, PYTHONUNBUFFERED="1")
    return env


def table_rows(output: str) -> dict[str, str]:
    ids = {k.id for k in registry.katas()}
    return {line.split()[0]: line for line in output.splitlines() if line.split() and line.split()[0] in ids}


def available(repo: Path) -> list[registry.Kata]:
    return [k for k in registry.katas() if (repo / k.test_file).exists() and (repo / k.path("katas")).exists()]


def result(name: str, status: str, message: str | None = None, covers=("define_add",), report=None, todo=None):
    return TestResult(id=f"{K01.test_file}::{name}", name=name, kata="k01", status=status, message=message,
                      covers=list(covers), report=report, todo=todo, duration=0.01)


def fake_results(repo: Path, tests: list[TestResult]) -> Path:
    """Record a k01 run, newer than the kata file."""
    run = Run.grade("katas", tests, registry.katas(), started=time.time(), duration=1.0)
    path = repo / ".tfkata" / "results-k01.json"
    run.dump(path)
    later = (repo / K01.path("katas")).stat().st_mtime + 5
    os.utime(path, (later, later))
    return path


TODO_NAMES = Todo("k01", "name_constants", "katas/k01_graph_session.py", 40)


# --------------------------------------------------------------------------- no TensorFlow needed
def test_fresh_copy_status_is_zero_and_next_is_k01(repo):
    res = kata(repo, "status")
    assert res.exit_code == 0, res.output
    assert "0 %" in res.output and f"0/{len(registry.katas())} katas done" in res.output, res.output
    rows = table_rows(res.output)
    assert set(rows) == {k.id for k in registry.katas()}, f"every kata needs a row:\n{res.output}"
    for k in registry.katas():
        expected = "TODO" if k in available(repo) else "not available"
        assert expected in rows[k.id] and "done" not in rows[k.id], f"{k.id} should be {expected}: {rows[k.id]}"
    assert kata(repo).output == res.output, "plain `kata` should show the status"

    res = kata(repo, "next")
    assert res.exit_code == 0, res.output
    assert "Next: k01 · Graphs and sessions" in res.output and K01.slide in res.output, res.output
    assert "https://github.com/soloice/tf-tutorial/blob/HEAD/slides/" in res.output, "slides by URL"
    assert "define_add" in res.output and "kata run k01" in res.output, res.output


def test_hints_follow_the_function_the_learner_is_on_and_never_spill(repo):
    hints = K01.hints
    for n in (1, 2, 3):
        res = kata(repo, "hint", "k01")
        assert f"Hint {n}/3 for define_add: {hints['define_add'][n - 1]}" in res.output, res.output
    res = kata(repo, "hint", "graph")  # define_add exhausted: say so, do not move on
    assert "all 3 hints for define_add were shown" in res.output and "Hint" not in res.output, res.output
    res = kata(repo, "hint", "k01", "2")
    assert f"Hint 2/3 for define_add: {hints['define_add'][1]}" in res.output, res.output
    res = kata(repo, "hint", "k01", "-f", "multi_output")
    assert f"Hint 1/3 for multi_output: {hints['multi_output'][0]}" in res.output, res.output
    state = json.loads((repo / ".tfkata" / "state.json").read_text())
    assert state["hints"]["k01"] == {"define_add": [1, 2, 3], "multi_output": [1]}, state

    # the last run's first problem decides, through what that test covers (not its name)
    fake_results(repo, [result("test_define_add_runs_to_five", "pass"),
                        result("test_a_name_without_the_function", "fail", "wrong", covers=("name_constants",))])
    res = kata(repo, "hint", "k01")
    assert f"Hint 1/3 for name_constants: {hints['name_constants'][0]}" in res.output, res.output
    fake_results(repo, [result("test_x", "todo", TODO_NAMES.line_text, covers=("define_add",), todo=TODO_NAMES)])
    res = kata(repo, "hint", "k01")
    assert "Hint 2/3 for name_constants" in res.output, "a TODO's own function comes first: " + res.output

    # a finished kata says so
    fake_results(repo, [result("test_define_add_runs_to_five", "pass")])
    res = kata(repo, "hint", "k01")
    assert res.exit_code == 0 and "k01 is done" in res.output and "Hint" not in res.output, res.output

    res = kata(repo, "hint", "k01", "7", "-f", "define_add")
    assert res.exit_code == 1 and "has 3 hints" in res.output, res.output
    res = kata(repo, "hint", "k01", "-f", "nope")
    assert res.exit_code == 1 and "define_add" in res.output and "thread_limited_config" in res.output, res.output


def test_unknown_kata_lists_the_valid_ones(repo):
    for args in (["run", "nope"], ["hint", "nope"], ["reset", "nope"], ["diff", "nope"], ["watch", "nope"]):
        res = kata(repo, *args)
        assert res.exit_code == 2, f"kata {' '.join(args)}: exit {res.exit_code}\n{res.output}"
        assert "unknown kata 'nope'" in res.output, res.output
        for k in registry.katas():
            assert f"{k.id} ({k.alias})" in res.output, f"{k.id} missing from the list:\n{res.output}"


def test_broken_state_and_results_files_are_set_aside_with_a_warning(repo):
    state_dir = repo / ".tfkata"
    state_dir.mkdir()
    broken = '{"hints": {"k01": {"define_add": [1, 2'
    (state_dir / "state.json").write_text(broken)
    res = kata(repo, "hint", "k01")
    assert res.exit_code == 0 and "warning: .tfkata/state.json could not be read" in res.output, res.output
    backups = list((state_dir / "backups").glob("state-broken-*.json"))
    assert len(backups) == 1 and backups[0].read_text() == broken, "the broken file must be kept as it was"
    assert "Hint 1/3 for define_add" in res.output, res.output
    (state_dir / "results-k01.json").write_text("garbage")
    res = kata(repo, "status")
    assert res.exit_code == 0 and "warning: .tfkata/results-k01.json could not be read" in res.output, res.output
    assert "TODO" in table_rows(res.output)["k01"], res.output
    assert [p.read_text() for p in (state_dir / "backups").glob("results-k01-broken-*.json")] == ["garbage"]


def test_reset_asks_keeps_a_backup_and_no_means_nothing_changed(repo):
    mine = repo / K01.path("katas")
    stub = mine.read_text()
    mine.write_text("# my work, version 1\n")
    results = fake_results(repo, [result("test_define_add_runs_to_five", "pass")])
    res = kata(repo, "reset", "k01", input="n\n")
    assert res.exit_code == 0 and "Nothing changed." in res.output and "Aborted" not in res.output, res.output
    assert mine.read_text() == "# my work, version 1\n"
    res = kata(repo, "reset", "k01", input="y\n")
    assert res.exit_code == 0 and mine.read_text() == stub, res.output
    assert not results.exists(), "the recorded run of the old file must go"
    mine.write_text("# my work, version 2\n")
    assert kata(repo, "reset", "k01", "--yes").exit_code == 0
    backups = sorted((repo / ".tfkata" / "backups").glob("k01_graph_session-*.py"))
    assert sorted(p.read_text() for p in backups) == ["# my work, version 1\n", "# my work, version 2\n"], backups
    assert "already the pristine stub" in kata(repo, "reset", "k01", "--yes").output


def test_a_deleted_kata_file_names_kata_reset(repo):
    (repo / K01.path("katas")).unlink()
    res = kata(repo, "run", "k01")
    assert res.exit_code == 1, res.output
    assert "katas/k01_graph_session.py is missing: kata reset k01 restores the stub" in res.output, res.output


def test_diff_refuses_until_the_tests_pass(repo):
    res = kata(repo, "diff", "k01")
    assert res.exit_code == 1 and "refusing" in res.output and "--force" in res.output, res.output
    fake_results(repo, [result("test_define_add_runs_to_five", "pass"), result("test_constant_names", "fail", "wrong")])
    res = kata(repo, "diff", "k01")
    assert res.exit_code == 1 and "1/2 points" in res.output, res.output
    res = kata(repo, "diff", "k01", "--force")
    assert res.exit_code == 0, res.output
    assert "--- katas/k01_graph_session.py (yours)" in res.output, res.output
    assert '-    raise NotImplementedError("k01: define_add")' in res.output, res.output


def test_status_says_failing_when_tests_fail(repo):
    fake_results(repo, [result("test_a", "fail", "wrong"), result("test_b", "todo", TODO_NAMES.line_text, todo=TODO_NAMES)])
    assert "failing" in table_rows(kata(repo, "status").output)["k01"]


def test_done_follows_the_files_content_not_their_save_time(repo):
    """A kata stays done when its file is saved unchanged (editors, `touch`); any edit makes it stale."""
    from tfkata.store import Store, sources_digest

    passing = [result(f"test_{i}", "pass") for i in range(3)]
    run = Run.grade("katas", passing, registry.katas(), sources={"k01": sources_digest(repo, K01)},
                    started=time.time(), duration=1.0)
    Store(repo).write_results(K01, run)
    path = Store(repo).results_path(K01)
    learner = repo / K01.path("katas")
    later = path.stat().st_mtime + 60
    os.utime(learner, (later, later))  # saved again, byte for byte, after the run
    assert Store(repo).kata_done(K01), "re-saving an unchanged file must not undo a passing kata"
    row = table_rows(kata(repo, "status").output)["k01"]
    assert "done" in row and "changed since" not in row, row
    passed_text = learner.read_text(encoding="utf-8")
    learner.write_text(passed_text + "\n# edited\n", encoding="utf-8")
    assert not Store(repo).kata_done(K01), "an edited file must be graded again"
    assert "changed since" in table_rows(kata(repo, "status").output)["k01"]
    # a try that failed, then undone: the file that passed is done again (its twin need not wait for a rerun)
    failing = Run.grade("katas", [result("test_0", "fail", "wrong")], registry.katas(),
                        sources={"k01": sources_digest(repo, K01)}, started=time.time(), duration=1.0)
    Store(repo).write_results(K01, failing)
    assert not Store(repo).kata_done(K01)
    learner.write_text(passed_text, encoding="utf-8")
    assert Store(repo).kata_done(K01), "the very file (and tests) that passed a complete run is done"
    # another version passes too; putting the first one back (after a failed try) is still done
    learner.write_text(passed_text + "\n# another answer that passed\n", encoding="utf-8")
    Store(repo).write_results(K01, Run.grade("katas", passing, registry.katas(),
                                             sources={"k01": sources_digest(repo, K01)}, started=time.time(),
                                             duration=1.0))
    Store(repo).write_results(K01, failing)
    learner.write_text(passed_text, encoding="utf-8")
    assert Store(repo).kata_done(K01), "any of the files that passed a complete run is done when put back"
    output = kata(repo, "status").output
    row = table_rows(output)["k01"]
    assert "done" in row and "this file passed" in row and "failing" not in row, row
    assert "1/1" in row and "0/1" not in row, f"its tests and points count as passed (the file passed): {row}"
    assert len(Store(repo).passed_digests(K01)) == 2


def test_run_report_message_first_failures_by_name_and_hints(repo):
    old = os.getcwd()
    os.chdir(repo)
    try:
        app = App()
        app.out = Console(file=StringIO(), width=200)
        short = "expected 5.0, got 6.0: c = a + b\n  katas/k01_graph_session.py:25 in define_add\n    c = a - b"
        fake_results(repo, [result("test_define_add_builds_symbolic_tensors", "pass"),
                            result("test_define_add_runs_to_five", "fail", "expected 5.0, got 6.0: c = a + b", report=short),
                            result("test_evaluate_x", "fail", "evaluate left its session open", covers=("evaluate",)),
                            result("test_evaluate_sum", "fail", "evaluate: got 6.0: run the fetches in one sess.run",
                                   covers=("evaluate", "define_add")),
                            result("test_constant_names", "todo", TODO_NAMES.line_text, covers=("name_constants",), todo=TODO_NAMES),
                            result("test_training_y", "waiting", "training waits for 2 unit tests still to pass (define_add)")])
        (repo / "kata-output" / "k01").mkdir(parents=True)
        (repo / "kata-output" / "k01" / "curve.png").write_bytes(b"png")
        app.report(progress(app.store, K01))
        text = app.out.file.getvalue()
        assert "1/6 points (17 %)" in text and "First failure: test_define_add_runs_to_five" in text, text
        assert short in text, f"the learner's report should be shown:\n{text}"
        assert "Stuck? kata hint k01 -f define_add" in text, text
        assert "✗ test_evaluate_x: evaluate left its session open" in text, "other failures by name, one line each"
        # a knock-on says so first: its own guess at the cause is what it saw, not the cause
        assert ("✗ test_evaluate_sum: likely a knock-on: it uses define_add, whose own test fails too; fix define_add "
                "first. It saw: evaluate: got 6.0") in text, text
        assert "Still to write (1 test): name_constants" in text, text
        assert "Waiting (1 not run yet): training waits" in text, text
        assert "Pictures in kata-output/k01/: curve.png" in text, text

        app.out = Console(file=StringIO(), width=200)
        fake_results(repo, [result("test_constant_names", "todo", TODO_NAMES.line_text, todo=TODO_NAMES)])
        app.report(progress(app.store, K01))
        text = app.out.file.getvalue()
        assert "TODO  test_constant_names" in text, text
        assert f"Hint 1/3 for name_constants: {K01.hints['name_constants'][0]}" in text, text
    finally:
        os.chdir(old)


# --------------------------------------------------------------------------- real runs (k01)
def test_kata_run_on_a_solved_kata_shows_done_then_next_and_diff(repo):
    solution = (repo / K01.path("solutions")).read_text()
    (repo / K01.path("katas")).write_text("# my own version\n" + solution)
    proc = subprocess.run([sys.executable, "-m", "tfkata", "run", "k01"], cwd=repo, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✔ k01 done" in proc.stdout and "(100 %)" in proc.stdout, proc.stdout
    res = kata(repo, "status")
    assert "done" in table_rows(res.output)["k01"], res.output
    res = kata(repo, "next")
    assert "Next: n01" in res.output, "after a kNN, its TF 2 twin: " + res.output
    res = kata(repo, "diff", "k01")
    assert res.exit_code == 0 and "-# my own version" in res.output, res.output
    res = kata(repo, "hint", "k01")
    assert "k01 is done" in res.output, res.output


def test_kata_run_grades_the_function_just_changed_first_and_shows_its_failure_at_once(repo):
    """After a recorded run, kata run puts the concept tests of the functions changed since (or failing then)
    first and prints the first failure the moment it happens, then the report: the verdict on the edit just
    made does not wait for the rest of the kata."""
    from tfkata import mistakes

    path = repo / K01.path("katas")
    path.write_text((repo / K01.path("solutions")).read_text())
    run = [sys.executable, "-m", "tfkata", "run", "k01"]
    first = subprocess.run(run, cwd=repo, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0 and "✗" not in first.stdout, first.stdout + first.stderr
    assert (repo / ".tfkata" / "ran" / f"{K01.module}.py").read_text() == path.read_text()
    wrong = next(m for m in mistakes.load("k01") if m.function == "thread_limited_config")  # the file's last function
    path.write_text(mistakes.apply(wrong, path.read_text()))
    proc = subprocess.run(run, cwd=repo, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 1 and out.startswith("✗ "), out + proc.stderr
    early, report = out.split("\n", 1)
    assert "thread_limited_config" in early, early
    assert "First failure" in report and early[2:].split(":")[0] in report.split("First failure", 1)[1].splitlines()[0], out
    recorded = Run.load(repo / ".tfkata" / f"results-{K01.id}.json")
    assert recorded.tests[0].covers[0] == "thread_limited_config", [t.name for t in recorded.tests]


SLOW_TEST = '''
import os, time
import pytest


@pytest.mark.covers("define_add")
def test_sleeps_once():
    if os.path.exists("slow.flag"):
        os.remove("slow.flag")
        time.sleep(120)
'''


def test_watch_cancels_a_running_run_when_a_file_is_saved(repo):
    (repo / K01.test_file).write_text(SLOW_TEST)
    (repo / "slow.flag").write_text("")
    # written, not the stub: a test of stubs only is TODO before its body runs (tfkata.stubprobe)
    (repo / K01.path("katas")).write_text((repo / K01.path("solutions")).read_text())
    proc = subprocess.Popen([sys.executable, "-m", "tfkata", "watch", "k01", "--once", "--timeout", "200"], cwd=repo,
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    started = time.time()
    try:
        while (repo / "slow.flag").exists():  # the first run has started its sleeping test
            assert proc.poll() is None and time.time() - started < 90, "watch did not start:\n" + "".join(lines)
            time.sleep(0.2)
        time.sleep(1)
        mine = repo / K01.path("katas")
        mine.write_text(mine.read_text() + "\n# saved\n")
        proc.wait(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(5)
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert "the running tests were cancelled" in out, out
    assert "1/1 points" in out and time.time() - started < 110, f"the re-run must not wait for the old one:\n{out}"


def test_kata_mistakes_names_only_the_count_until_the_kata_passes(repo):
    from tfkata import mistakes as catalogue
    from tfkata.cli import lessons

    entries = catalogue.load("k01")
    res = kata(repo, "mistakes", "k01")
    assert res.exit_code == 0 and f"k01 has {len(entries)} catalogued common mistakes; finish the kata" in res.output
    assert entries[0].what not in res.output, "no spoilers before the kata passes"
    fake_results(repo, [result("test_define_add_runs_to_five", "pass")])
    first = entries[0]
    cached = {"fingerprint": lessons._fingerprint(app_store(repo), K01), "mistakes": [
        {"function": first.function, "what": first.what, "status": "caught", "test_name": "test_x",
         "message": "the message the learner would have seen", "error": None}]}
    (repo / ".tfkata" / "mistakes-k01.json").write_text(json.dumps(cached))
    res = kata(repo, "mistakes", "k01")
    assert f"• {first.function}: {first.what}" in res.output, res.output
    assert "test_x: the message the learner would have seen" in res.output, res.output


def app_store(repo: Path):
    from tfkata.store import Store

    return Store(repo)


def test_also_failing_names_the_wrong_function_a_knock_on_failure_uses():
    """n02: Linear wrong, count_parameters right: count_parameters' failing line must not read as its own
    fault (fresh-eyes review); the hint goes to the function that fails on its own."""
    from tfkata.feedback.upstream import failing_upstream
    from tfkata.results import TestResult

    def t(name, covers, status="fail"):
        return TestResult(id=f"tests/test_n02.py::{name}", name=name, kata="n02", status=status, covers=covers)

    linear = t("test_linear_kernel", ["Linear"])
    count = t("test_count_parameters", ["count_parameters", "Linear", "MLP"])
    mlp = t("test_mlp_calls", ["MLP", "Linear"])  # involves Linear: not proof that MLP is wrong alone
    problems = [linear, count, mlp]
    assert failing_upstream(count, problems) == "Linear"
    assert failing_upstream(linear, problems) is None
    assert failing_upstream(mlp, problems) == "Linear"
    assert failing_upstream(count, [count, mlp]) == "MLP"  # MLP fails in a test without count_parameters
    assert failing_upstream(count, [count]) is None  # nothing else fails: count_parameters' own fault
    both = [t("test_a", ["A", "B"]), t("test_b", ["B", "A"])]  # each fails only with the other: no blame
    assert failing_upstream(both[0], both) is None and failing_upstream(both[1], both) is None
    # n05: sample_text's test builds its model with port_k05_weights (read, not covered), whose own test fails
    port = t("test_port", ["port_k05_weights", "build_model"])
    sample = t("test_sample_text_carries_the_state", ["sample_text", "sample_step"])
    sample.uses = ["build_model", "make_forward", "port_k05_weights", "sample_text"]
    assert failing_upstream(sample, [port, sample]) == "port_k05_weights"
    step = t("test_sample_step", ["sample_step"])
    step.uses = ["build_model", "port_k05_weights", "sample_step"]
    assert failing_upstream(sample, [port, step, sample]) == "port_k05_weights", "the root of the chain, not sample_step"
    assert failing_upstream(step, [port, step, sample]) == "port_k05_weights"
    sample.uses = []
    assert failing_upstream(sample, [port, sample]) is None
    # k05: lstm_cell wrong; build_training_model (right) calls it, so its test fails too: a test of train that
    # involves build_training_model is blamed on lstm_cell, the root, through the kata file's calls
    from tfkata.source import callees

    calls = callees("def lstm_cell(x):\n    return x\n\n\ndef build_training_model():\n    return lstm_cell(1)\n\n\n"
                    "def train():\n    return build_training_model()\n")
    assert calls == {"lstm_cell": set(), "build_training_model": {"lstm_cell"}, "train": {"build_training_model", "lstm_cell"}}
    cell = t("test_lstm_cell", ["lstm_cell"])
    model = t("test_training_model", ["build_training_model"])
    trained = t("test_train", ["train", "build_training_model"])
    assert failing_upstream(trained, [cell, model, trained]) == "build_training_model"  # without the calls
    assert failing_upstream(trained, [cell, model, trained], calls=calls) == "lstm_cell"
    assert failing_upstream(cell, [cell, model, trained], calls=calls) is None  # the root's own fault
