"""The `kata` command (tfkata/cli.py), each test in a temporary copy of the repository.

Most checks need no TensorFlow: they read or fabricate the recorded results in .tfkata/. Only the
`graded` fixture and the watch test start pytest (on k01, the smallest kata): two runs in all.
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

from tfkata import cli as kata_cli
from tfkata import registry
from tfkata.stubs import stub_for

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("katas", "solutions", "tests", "tfkata", "conftest.py", "pyproject.toml")
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
    (dest / K01.path("katas")).write_text(stub_for(K01, dest), encoding="utf-8")  # pristine k01
    return dest


@pytest.fixture
def repo(tmp_path) -> Path:
    return make_copy(tmp_path / "repo")


def kata(repo: Path, *args: str, input: str | None = None):
    """Run `kata ARGS` in-process (click's CliRunner) with the copy as working directory."""
    old = os.getcwd()
    os.chdir(repo)
    try:
        return CliRunner().invoke(kata_cli.cli, list(args), input=input, env=ENV, catch_exceptions=False)
    finally:
        os.chdir(old)


def subprocess_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TFKATA_TARGET"}
    env.update(ENV, PYTHONUNBUFFERED="1")
    return env


def table_rows(output: str) -> dict[str, str]:
    """kata id -> its line in the status table."""
    rows = {}
    for line in output.splitlines():
        head = line.split(" ", 1)[0]
        if any(head == k.id for k in registry.katas()):
            rows[head] = line
    return rows


def available(repo: Path) -> list[registry.Kata]:
    return [k for k in registry.katas() if (repo / k.test_file).exists() and (repo / k.path("katas")).exists()]


def fake_results(repo: Path, statuses: list[tuple[str, str, str | None]], report: str | None = None) -> Path:
    """Write a recorded k01 run: (test name, status, message) per test, newer than the kata file."""
    tests = []
    for name, status, message in statuses:
        tests.append({
            "id": f"{K01.test_file}::{name}", "name": name, "kata": "k01", "status": status,
            "points": 1, "points_earned": int(status == "pass"), "message": message, "duration": 0.01,
            "report": report if status == "fail" else None, "printed": None,
        })
    data = {"version": 3, "status": "fail", "message": None, "target": "katas", "duration": 1.0,
            "points": {}, "katas": [], "tests": tests}
    path = repo / ".tfkata" / "results-k01.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    later = (repo / K01.path("katas")).stat().st_mtime + 5
    os.utime(path, (later, later))
    return path


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
    assert "define_add" in res.output and "kata run k01" in res.output, res.output


def test_hints_progress_and_are_remembered(repo):
    hints = K01.hints
    funcs = list(hints)
    for n in (1, 2, 3):
        res = kata(repo, "hint", "k01")
        assert res.exit_code == 0, res.output
        assert f"Hint {n}/3 for define_add: {hints['define_add'][n - 1]}" in res.output, res.output
    res = kata(repo, "hint", "graph")  # define_add exhausted: on to the next function
    assert f"Hint 1/3 for {funcs[1]}: {hints[funcs[1]][0]}" in res.output, res.output
    assert "all 3 hints for define_add were shown" in res.output, res.output
    res = kata(repo, "hint", "k01", "2")
    assert f"Hint 2/3 for define_add: {hints['define_add'][1]}" in res.output, res.output
    res = kata(repo, "hint", "k01", "-f", "multi_output")
    assert f"Hint 1/3 for multi_output: {hints['multi_output'][0]}" in res.output, res.output

    state = json.loads((repo / ".tfkata" / "state.json").read_text())
    assert state["hints"]["k01"] == {"define_add": [1, 2, 3], funcs[1]: [1], "multi_output": [1]}, state

    # the last recorded run says which function is the first TODO: its hints come first
    fake_results(repo, [("test_define_add_runs_to_five", "pass", None),
                        ("test_constant_names", "todo", "TODO k01: name_constants is not written yet (katas/k01_graph_session.py:40)")])
    res = kata(repo, "hint", "k01")
    assert f"Hint 1/3 for name_constants: {hints['name_constants'][0]}" in res.output, res.output

    res = kata(repo, "hint", "k01", "7")
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


def test_broken_state_file_is_set_aside_with_a_warning(repo):
    state_dir = repo / ".tfkata"
    state_dir.mkdir()
    broken = '{"hints": {"k01": {"define_add": [1, 2'
    (state_dir / "state.json").write_text(broken)
    res = kata(repo, "hint", "k01")
    assert res.exit_code == 0, res.output
    assert "warning: .tfkata/state.json could not be read" in res.output, res.output
    backups = list((state_dir / "backups").glob("state-broken-*.json"))
    assert len(backups) == 1 and backups[0].read_text() == broken, "the broken file must be kept as it was"
    assert backups[0].name in res.output, res.output
    assert json.loads((state_dir / "state.json").read_text())["hints"] == {"k01": {"define_add": [1]}}
    assert "Hint 1/3 for define_add" in res.output, res.output
    # a broken results file too: set aside, the kata shows as not run
    (state_dir / "results-k01.json").write_text("garbage")
    res = kata(repo, "status")
    assert res.exit_code == 0 and "warning: .tfkata/results-k01.json could not be read" in res.output, res.output
    assert "TODO" in table_rows(res.output)["k01"], res.output
    assert [p.read_text() for p in (state_dir / "backups").glob("results-k01-broken-*.json")] == ["garbage"]


def test_reset_restores_the_stub_and_keeps_a_backup(repo):
    mine = repo / K01.path("katas")
    stub = mine.read_text()
    mine.write_text("# my work, version 1\n")
    results = fake_results(repo, [("test_define_add_runs_to_five", "pass", None)])
    res = kata(repo, "reset", "k01", input="n\n")
    assert res.exit_code == 1 and mine.read_text() == "# my work, version 1\n", "answering no must change nothing"
    res = kata(repo, "reset", "k01", input="y\n")
    assert res.exit_code == 0, res.output
    assert mine.read_text() == stub, "reset must write the pristine stub"
    assert not results.exists(), "the recorded run of the old file must go"
    mine.write_text("# my work, version 2\n")
    assert kata(repo, "reset", "k01", "--yes").exit_code == 0
    backups = sorted((repo / ".tfkata" / "backups").glob("k01_graph_session-*.py"))
    assert sorted(p.read_text() for p in backups) == ["# my work, version 1\n", "# my work, version 2\n"], backups
    res = kata(repo, "reset", "k01", "--yes")
    assert "already the pristine stub" in res.output and len(list(backups[0].parent.iterdir())) == 2


def test_diff_refuses_until_the_tests_pass(repo):
    res = kata(repo, "diff", "k01")
    assert res.exit_code == 1 and "refusing" in res.output and "--force" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1, f"one line, got:\n{res.output}"
    fake_results(repo, [("test_define_add_runs_to_five", "pass", None), ("test_constant_names", "fail", "wrong")])
    res = kata(repo, "diff", "k01")
    assert res.exit_code == 1 and "refusing" in res.output and "1/2 points" in res.output, res.output
    res = kata(repo, "diff", "k01", "--force")
    assert res.exit_code == 0, res.output
    assert "--- katas/k01_graph_session.py (yours)" in res.output, res.output
    assert '-    raise NotImplementedError("k01: define_add")' in res.output, res.output
    assert "+    a = tf.constant(3.0)" in res.output, res.output


def test_run_report_shows_the_first_failure_in_full_and_hint_1_for_a_todo(repo):
    old = os.getcwd()
    os.chdir(repo)
    try:
        app = kata_cli.App()
        app.out = Console(file=StringIO(), width=200)
        full = "def test_x():\n>       assert got == 5.0\nE       AssertionError: expected 5.0, got 6.0\n\ntests/x.py:3: AssertionError"
        fake_results(repo, [("test_define_add_builds_symbolic_tensors", "pass", None),
                            ("test_define_add_runs_to_five", "fail", "AssertionError: expected 5.0, got 6.0"),
                            ("test_constant_names", "todo", "TODO k01: name_constants is not written yet (x:1)")],
                     report=full)
        out_dir = repo / "kata-output" / "k01"
        out_dir.mkdir(parents=True)
        (out_dir / "curve.png").write_bytes(b"png")
        kata_cli.report(app, kata_cli.st.progress(app.store, K01))
        text = app.out.file.getvalue()
        assert "1/3 points (33 %)" in text and "First failure: test_define_add_runs_to_five" in text, text
        assert full in text, f"the whole failure report should be shown:\n{text}"
        assert "Pictures in kata-output/k01/: curve.png" in text, text

        app.out = Console(file=StringIO(), width=200)
        fake_results(repo, [("test_constant_names", "todo", "TODO k01: name_constants is not written yet (x:1)")])
        kata_cli.report(app, kata_cli.st.progress(app.store, K01))
        text = app.out.file.getvalue()
        assert "TODO  test_constant_names" in text, text
        assert f"Hint 1/3 for name_constants: {K01.hints['name_constants'][0]}" in text, text
        assert app.store.shown_hints("k01", "name_constants") == [1]
    finally:
        os.chdir(old)


# --------------------------------------------------------------------------- real runs (k01)
@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A copy where the learner's k01 is the solution plus a comment, graded by `kata run k01`."""
    repo = make_copy(tmp_path_factory.mktemp("graded") / "repo")
    solution = (repo / K01.path("solutions")).read_text()
    (repo / K01.path("katas")).write_text("# my own version\n" + solution)
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "tfkata", "run", "k01"], cwd=repo, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)
    print(f"kata run k01 (solution): {time.time() - started:.1f} s")
    return repo, proc


def test_a_solved_kata_shows_done_then_next_and_diff(graded):
    repo, proc = graded
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✔ k01 done" in proc.stdout and "12/12 points (100 %)" in proc.stdout, proc.stdout
    res = kata(repo, "status")
    assert "done" in table_rows(res.output)["k01"], res.output
    assert f"1/{len(registry.katas())} katas done" in res.output, res.output

    res = kata(repo, "next")
    later = [k for k in available(repo) if k.id != "k01"]
    if later:
        assert f"Next: {later[0].id} · {later[0].title}" in res.output, res.output
    else:
        assert "Every available kata is done" in res.output, res.output

    res = kata(repo, "diff", "k01")
    assert res.exit_code == 0, res.output
    assert "+++ solutions/k01_graph_session.py (reference)" in res.output and "-# my own version" in res.output, res.output


def test_watch_reruns_once_after_a_file_is_saved(graded):
    repo, _ = graded
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfkata", "watch", "k01", "--once", "--timeout", "150"], cwd=repo,
        env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.time() + 60
        while not any("watching katas/" in l for l in lines):
            assert proc.poll() is None and time.time() < deadline, "watch did not start:\n" + "".join(lines)
            time.sleep(0.1)
        assert "nothing changed since" in "".join(lines), "unchanged kata: the recorded run is shown, not re-run"
        assert kata(repo, "reset", "k01", "--yes").exit_code == 0  # saves katas/k01_graph_session.py
        proc.wait(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(5)
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert out.count("kata watch · k01") == 2, f"expected the recorded run, then exactly one re-run:\n{out}"
    rerun = out.split("watching katas/")[-1]
    assert "0/12 points" in rerun and "TODO  test_define_add" in rerun, out
    assert f"Hint 1/3 for define_add: {K01.hints['define_add'][0]}" in rerun, out
