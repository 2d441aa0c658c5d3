"""The test-runner contract many platforms share (Exercism's interface, version 3):

    bin/run.sh SLUG INPUT_DIR OUTPUT_DIR

``SLUG`` is a kata id or alias (``k01``, ``graph``), ``INPUT_DIR`` holds the solution (``katas/<module>.py``
or the file itself), and ``OUTPUT_DIR/results.json`` gets ``version`` 3, the overall ``status``
(``pass`` / ``fail`` / ``error``), and one entry per graded test, in file order, with ``name``, ``status``,
``message`` (the first line a learner would see), ``test_code`` (the test's source) and ``task_id``
(the kata function it grades, numbered as the kata lists them). Graded like one ``kata grade``
submission: its own process and copy, limits, points from the pristine tests. Exit status 0 whenever
results.json was written, whatever the tests said.
"""
from __future__ import annotations

import ast
import json
import sys
import tempfile
from pathlib import Path

from tfkata import registry


def _test_sources(test_file: Path) -> dict[str, str]:
    text = test_file.read_text(encoding="utf-8")
    tree = ast.parse(text)
    return {node.name: ast.get_source_segment(text, node) or "" for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def results_document(graded, kata: registry.Kata, root: Path) -> dict:
    sources = _test_sources(root / kata.test_file)
    tasks = {name: i + 1 for i, name in enumerate(kata.hints)}
    tests = []
    for t in graded.tests:
        status = "pass" if t.points_earned == t.points else ("error" if t.status == "error" else "fail")
        entry = {"name": t.name, "status": status, "test_code": sources.get(t.name.split("[")[0], "")}
        if status != "pass":
            entry["message"] = (t.message or t.status).strip().splitlines()[0] if (t.message or t.status) else t.status
        first = (t.covers or [None])[0]
        if first in tasks:
            entry["task_id"] = tasks[first]
        tests.append(entry)
    if graded.status in ("crashed", "tampered", "unreadable") or not tests:
        return {"version": 3, "status": "error", "message": graded.message or "no test ran", "tests": tests}
    return {"version": 3, "status": "pass" if all(t["status"] == "pass" for t in tests) else "fail", "tests": tests}


def main(argv: list[str] | None = None) -> int:
    from tfkata.grading import grader
    from tfkata.grading.submissions import SubmissionError, read_submission

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print("usage: bin/run.sh SLUG INPUT_DIR OUTPUT_DIR", file=sys.stderr)
        return 2
    slug, input_dir, output_dir = argv
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[2]
    try:
        kata = registry.get(slug)
        sub = read_submission(Path(input_dir))
    except (registry.UnknownKata, SubmissionError) as exc:
        doc = {"version": 3, "status": "error", "message": str(exc)}
    else:
        limits = grader.Limits(seconds=600, memory_mb=3072)
        with tempfile.TemporaryDirectory(prefix=f"tfkata-run-{kata.id}-") as tmp:
            work = Path(tmp)
            base = grader.baseline(root, [kata], "unit", limits, work / "baseline")
            graded = grader.grade(sub, root, base, [kata], "unit", limits, work / "student")
        doc = results_document(graded, kata, root)
    (out / "results.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
