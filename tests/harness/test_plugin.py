"""The harness's own tests: target switching, TODO outcome, points and grades, JSON, markers.

They run pytest in a subprocess on a throw-away mini repository (its katas/ and solutions/ hold a
made-up module under k01's name), so nothing here depends on the real katas.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tfkata.plugin import find_todo

KATA = '''
def done():
    """Returns 2."""
    return 2


def todo_fn():
    """Returns 5."""
    raise NotImplementedError("k01: todo_fn")
'''

SOLUTION = '''
def done():
    """Returns 2."""
    return 2


def todo_fn():
    """Returns 5."""
    return 5
'''

TESTS = '''
import time
import pytest
from tfkata import load_kata

k = load_kata("k01")


@pytest.mark.points(3)
def test_pass():
    assert k.done() == 2


@pytest.mark.points(2)
def test_todo():
    assert k.todo_fn() == 5


def test_fail():
    assert k.done() == 3, "expected 3 from done(), got 2: a made-up mistake"


@pytest.mark.slow
def test_slow():
    pass


@pytest.mark.gpu
def test_gpu():
    pass


@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")


def test_error(broken):
    pass


@pytest.mark.timeout(1)
def test_timeout():
    time.sleep(5)
'''


@pytest.fixture(scope="module")
def mini_repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini")
    (root / "conftest.py").write_text('pytest_plugins = ["tfkata.plugin"]\n')
    (root / "pytest.ini").write_text("[pytest]\ntimeout = 120\ntimeout_method = signal\n")
    for target, body in (("katas", KATA), ("solutions", SOLUTION)):
        (root / target).mkdir()
        (root / target / "__init__.py").write_text("")
        (root / target / "k01_graph_session.py").write_text(body)
    (root / "tests").mkdir()
    (root / "tests" / "test_k01_graph_session.py").write_text(TESTS)
    (root / "tests" / "test_not_a_kata.py").write_text("def test_plain():\n    pass\n")
    # a learner's file with a syntax error: its tests fail with one short message, the run goes on
    for target in ("katas", "solutions"):
        (root / target / "k02_variables_scopes.py").write_text("def make_variables(:\n    pass\n")
    (root / "tests" / "test_k02_variables_scopes.py").write_text(
        'from tfkata import load_kata\nk = load_kata("k02")\n\n\ndef test_broken():\n    k.make_variables()\n'
    )
    return root


def run_pytest(root: Path, *args, env_target=None):
    env = {k: v for k, v in os.environ.items() if k != "TFKATA_TARGET"}
    if env_target is not None:
        env["TFKATA_TARGET"] = env_target
    out = root / f"results-{len(list(root.glob('results-*.json')))}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--results-json", str(out), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    data = json.loads(out.read_text()) if out.exists() else None
    return proc, data


@pytest.fixture(scope="module")
def katas_run(mini_repo):
    return run_pytest(mini_repo)


@pytest.fixture(scope="module")
def solutions_run(mini_repo):
    return run_pytest(mini_repo, "--solutions", "--runslow")


def by_name(data):
    return {t["name"]: t for t in data["tests"]}


def test_statuses_against_katas(katas_run):
    proc, data = katas_run
    tests = by_name(data)
    got = {name: t["status"] for name, t in tests.items()}
    assert got == {
        "test_pass": "pass",
        "test_todo": "todo",
        "test_fail": "fail",
        "test_slow": "skip",
        "test_gpu": got["test_gpu"] if got["test_gpu"] == "pass" else "skip",
        "test_error": "error",
        "test_timeout": "fail",
        "test_plain": "pass",
        "test_broken": "fail",
    }, proc.stdout
    assert proc.returncode == 1, "failures and TODOs make the run fail"


def test_todo_is_one_line_without_traceback(katas_run):
    proc, data = katas_run
    message = by_name(data)["test_todo"]["message"]
    assert message == "TODO k01: todo_fn is not written yet (katas/k01_graph_session.py:9)", message
    assert message in proc.stdout
    assert "NotImplementedError" not in proc.stdout, "a TODO must not print a traceback"
    assert "1 todo" in proc.stdout.splitlines()[-1], proc.stdout.splitlines()[-1]


def test_other_failures_keep_their_message(katas_run):
    proc, data = katas_run
    tests = by_name(data)
    assert "a made-up mistake" in tests["test_fail"]["message"]
    assert "a made-up mistake" in proc.stdout
    assert "fixture broke" in tests["test_error"]["message"]


def test_unimportable_kata_fails_with_one_short_message(katas_run):
    proc, data = katas_run
    message = by_name(data)["test_broken"]["message"]
    assert message.startswith("katas/k02_variables_scopes.py cannot be imported (line 1): SyntaxError"), message
    assert "The above exception was the direct cause" not in proc.stdout, "one short report, not a chained traceback"


def test_timeout_message_names_the_limit_and_the_fix(katas_run):
    proc, data = katas_run
    message = by_name(data)["test_timeout"]["message"]
    assert "timed out after 1.0 s" in message and "--timeout=" in message, message


def test_markers_skip_with_reasons(katas_run):
    _, data = katas_run
    tests = by_name(data)
    assert tests["test_slow"]["message"] == "slow test: run it with --runslow"
    if tests["test_gpu"]["status"] == "skip":
        assert "no GPU" in tests["test_gpu"]["message"]


def test_grade_arithmetic(katas_run):
    proc, data = katas_run
    row, broken = data["katas"]
    assert broken["id"] == "k02" and (broken["failed"], broken["points"], broken["points_possible"]) == (1, 0, 1)
    assert row["id"] == "k01" and row["title"] == "Graphs and sessions"
    gpu_ran = by_name(data)["test_gpu"]["status"] == "pass"
    assert (row["passed"], row["failed"], row["todo"], row["errors"]) == (1 + gpu_ran, 2, 1, 1)
    assert row["skipped"] == 2 - gpu_ran
    # earned: test_pass (3) [+ test_gpu (1)]; possible: every non-skipped graded test
    assert (row["points"], row["points_possible"]) == (3 + gpu_ran, 3 + 2 + 1 + 1 + 1 + gpu_ran)
    assert data["points"] == {"earned": row["points"], "possible": row["points_possible"] + 1}
    assert f"grade: {row['points']}/{row['points_possible'] + 1} points" in proc.stdout
    assert all(t["points_earned"] == (t["points"] if t["status"] == "pass" else 0) for t in data["tests"])


def test_json_schema(katas_run):
    _, data = katas_run
    assert set(data) == {
        "version", "status", "message", "target", "tensorflow", "python", "duration", "points", "katas", "tests"
    }
    assert data["version"] == 3 and data["status"] == "fail" and data["target"] == "katas"
    for test in data["tests"]:
        assert set(test) == {"id", "name", "kata", "status", "points", "points_earned", "message", "duration"}
        assert test["status"] in ("pass", "fail", "todo", "skip", "error")
        assert isinstance(test["duration"], float) and test["duration"] >= 0
    assert by_name(data)["test_plain"]["kata"] is None, "tests outside a kata's test file are not graded"
    assert [t["kata"] for t in data["tests"]][-1] is None, "graded tests come first"


def test_solutions_flag_switches_target(solutions_run):
    proc, data = solutions_run
    tests = by_name(data)
    assert data["target"] == "solutions"
    assert tests["test_todo"]["status"] == "pass", "--solutions must load solutions/k01_graph_session.py"
    assert tests["test_slow"]["status"] == "pass", "--runslow must run slow tests"
    assert "grading solutions/" in proc.stdout


def test_env_var_switches_target(mini_repo):
    proc, data = run_pytest(mini_repo, "-k", "todo", env_target="solutions")
    assert by_name(data)["test_todo"]["status"] == "pass", proc.stdout


def test_bad_target_is_one_clear_error(mini_repo):
    proc, _ = run_pytest(mini_repo, "-k", "todo", env_target="answers")
    assert proc.returncode != 0
    assert "TFKATA_TARGET must be 'katas' or 'solutions', got 'answers'" in proc.stderr + proc.stdout


def test_find_todo_follows_chained_exceptions(tmp_path):
    target = tmp_path / "katas"
    target.mkdir()
    source = target / "k02_variables_scopes.py"
    source.write_text('def make_variables():\n    raise NotImplementedError("k02: make_variables")\n')
    namespace = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)
    try:
        try:
            namespace["make_variables"]()
        except NotImplementedError as inner:
            raise RuntimeError("wrapped by a library") from inner
    except RuntimeError as outer:
        found = find_todo(outer, str(target))
    assert found == ("k02", "make_variables", "katas/k02_variables_scopes.py:2", "k02: make_variables")
    assert find_todo(NotImplementedError("not from a kata"), str(target)) is None
    assert find_todo(ValueError("x"), str(target)) is None
