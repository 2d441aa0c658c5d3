"""``kata grade``: a class of submissions on one machine, in parallel, resumable.

    OUT/grades.csv                      one row per student: points per kata, total, percent, status, seconds
    OUT/summary.txt                     the distribution, the tests most often failed, the catalogued mistakes
                                        most often matched, flagged submissions
    OUT/students/<name>/grade.json      the parent's grade (tfkata.grading.grader.Graded)
    OUT/students/<name>/report.txt      what the student reads: the grade table, each failing test's first line
    OUT/students/<name>/child-results.json, pytest.log   what the graded process wrote (evidence, not the grade)

A re-run skips a student whose submission (its kata files), profile and katas are unchanged; one that
crashes, hangs or runs out of memory is recorded as such and the class goes on.
"""
from __future__ import annotations

import collections
import csv
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tfkata import registry
from tfkata.grading import grader
from tfkata.grading.flags import flags_for
from tfkata.grading.matching import most_matched
from tfkata.grading.submissions import Submission, SubmissionError, read_submission


class TamperedCheckout(RuntimeError):
    """The teacher's own checkout changed during a grade: nothing after it can be trusted."""


def _fingerprint(root: Path) -> str:
    """The tests, the reference and the harness: a change regrades everyone."""
    import hashlib

    h = hashlib.sha256()
    for folder in ("tests", "solutions", "tfkata"):
        for path in sorted((root / folder).rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return h.hexdigest()[:16]


def student_report(g: grader.Graded, flags: dict, katas) -> str:
    lines = [f"tf-katas grade for {g.name}: {g.earned}/{g.possible} points ({g.percent:.0f} %) — {g.status}"]
    if g.message:
        lines.append(f"  {g.message}")
    lines.append("")
    lines.append(f"{'kata':<5} {'title':<40} {'points':>9}")
    for k in katas:
        earned, possible = g.points.get(k.id, [0, 0])
        lines.append(f"{k.id:<5} {k.title[:40]:<40} {earned:>4}/{possible:<4}")
    failing = [t for t in g.tests if t.points_earned == 0]
    if failing:
        lines += ["", "Tests without points (first line of each):"]
        for t in failing:
            first = (t.message or t.status).strip().splitlines()[0] if (t.message or t.status) else t.status
            lines.append(f"  {t.kata} {t.name} [{t.status}]: {first}")
    if flags:
        lines += ["", "For the teacher (read, not a verdict):"]
        for module, items in flags.items():
            lines += [f"  katas/{module}.py: {item}" for item in items]
    return "\n".join(lines) + "\n"


class Progress:
    """One status line: done / running / failed and the time left, redrawn as students finish."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.done, self.failed, self.running = total, 0, 0, 0
        self.started = time.monotonic()
        self.stream = stream
        self.lock = threading.Lock()

    def update(self, *, start: bool = False, finish: str | None = None) -> None:
        with self.lock:
            if start:
                self.running += 1
            if finish is not None:
                self.running -= 1
                self.done += 1
                self.failed += finish != "graded"
            elapsed = time.monotonic() - self.started
            left = elapsed / self.done * (self.total - self.done) if self.done else 0
            bar = "#" * int(30 * self.done / max(self.total, 1))
            line = (f"[{bar:<30}] {self.done}/{self.total} done · {self.running} running · {self.failed} not graded "
                    f"normally · {elapsed:.0f} s" + (f", about {left:.0f} s left" if self.done else ""))
            end = "\r" if self.stream.isatty() and self.done < self.total else "\n"
            if end == "\n" and finish is None:
                return  # not a terminal: one line per finished student
            print(line, end=end, file=self.stream, flush=True)


def grade_class(paths: list[str], out: Path, root: Path, *, katas=None, profile: str = "unit", jobs: int = 2,
                limits: grader.Limits | None = None, log=print) -> list[grader.Graded]:
    """Grade every submission in ``paths`` into ``out`` (see the module docstring)."""
    limits = limits or grader.Limits()
    katas = list(katas or registry.katas())
    out.mkdir(parents=True, exist_ok=True)
    subs: list[Submission] = []
    unreadable: list[grader.Graded] = []
    for p in paths:
        try:
            subs.append(read_submission(p))
        except SubmissionError as exc:
            name = Path(p).name
            unreadable.append(grader.Graded(name, "unreadable", 0.0, {k.id: [0, 0] for k in katas}, [], str(exc)))
    names = collections.Counter(s.name for s in subs)
    if any(n > 1 for n in names.values()):
        dupes = sorted(n for n, c in names.items() if c > 1)
        raise SubmissionError(f"two submissions share a name: {', '.join(dupes)} (rename one folder or archive)")
    stamp = {"profile": profile, "katas": [k.id for k in katas], "checkout": _fingerprint(root)}
    base_dir = out / ".baseline"
    cached = base_dir / "baseline.json"
    if cached.is_file() and json.loads(cached.read_text()).get("stamp") == stamp:
        base = grader.Baseline(json.loads(cached.read_text())["tests"])
    else:
        log(f"kata grade: running the pristine stubs once ({len(katas)} katas, {profile} profile) ...")
        base = grader.baseline(root, katas, profile, limits, base_dir)
        cached.write_text(json.dumps({"stamp": stamp, "tests": base.tests}), encoding="utf-8")
    results: list[grader.Graded] = []
    todo = []
    for sub in subs:
        folder = out / "students" / sub.name
        saved = folder / "grade.json"
        if saved.is_file():
            data = json.loads(saved.read_text(encoding="utf-8"))
            if data.get("stamp") == stamp and data["grade"].get("digest") == sub.digest:
                results.append(grader.from_dict(data["grade"]))
                continue
        todo.append(sub)
    if len(results):
        log(f"kata grade: {len(results)} unchanged submission(s) kept from the last run")
    progress = Progress(len(todo))

    def one(sub: Submission) -> grader.Graded:
        progress.update(start=True)
        folder = out / "students" / sub.name
        try:
            g = grader.grade(sub, root, base, katas, profile, limits, folder)
        except TamperedCheckout:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken submission never stops the class
            g = grader.Graded(sub.name, "crashed", 0.0, {k.id: [0, sum(v[1] for v in base.for_katas({k.id}).values())]
                                                       for k in katas}, [], f"grading failed: {exc}", sub.digest)
        if _fingerprint(root) != stamp["checkout"]:
            raise TamperedCheckout(f"the checkout's tests/, solutions/ or tfkata/ changed while {sub.name} was graded: "
                                   f"restore them (git checkout -- tests solutions tfkata), read that submission, "
                                   f"and grade again")
        flags = flags_for(sub.sources, root)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.txt").write_text(student_report(g, flags, katas), encoding="utf-8")
        (folder / "grade.json").write_text(json.dumps({"stamp": stamp, "grade": grader.to_dict(g), "flags": flags},
                                                      indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        progress.update(finish=g.status)
        return g

    if todo:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for fut in as_completed([pool.submit(one, s) for s in todo]):
                results.append(fut.result())
    results += unreadable
    results.sort(key=lambda g: g.name)
    write_csv(out / "grades.csv", results, katas)
    summary = summarise(results, katas, out)
    (out / "summary.txt").write_text(summary, encoding="utf-8")
    log(summary)
    return results


def write_csv(path: Path, results, katas) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["student", *[k.id for k in katas], "total", "possible", "percent", "status", "seconds"])
        for g in results:
            w.writerow([g.name, *[g.points.get(k.id, [0, 0])[0] for k in katas], g.earned, g.possible,
                        f"{g.percent:.1f}", g.status, g.seconds])


def summarise(results, katas, out: Path) -> str:
    graded = [g for g in results if g.possible]
    lines = [f"kata grade: {len(results)} submissions · {sum(g.status == 'graded' for g in results)} graded normally"]
    buckets = collections.Counter(min(int(g.percent // 10) * 10, 90) for g in graded)
    lines.append("distribution (percent):")
    for lo in range(0, 100, 10):
        lines.append(f"  {lo:>3}-{lo + 9 if lo < 90 else 100:<3} {'#' * buckets.get(lo, 0)} {buckets.get(lo, 0) or ''}")
    failed = collections.Counter(f"{t.kata} {t.name}" for g in graded for t in g.tests if t.points_earned == 0
                                 and t.status in ("fail", "error"))
    if failed:
        lines.append("tests most often failed (not TODO, not waiting for a failing function):")
        lines += [f"  {n:>3} × {name}" for name, n in failed.most_common(8)]
    matched = most_matched(graded)
    if matched:
        lines.append("catalogued mistakes most often matched (by each failing test's first line; a hint, not proof):")
        lines += [f"  {c:>3} × {m.key} ({m.function}): {m.what}"[:160] for m, c in matched]
    odd = [g for g in results if g.status != "graded"]
    if odd:
        lines.append("not graded normally:")
        lines += [f"  {g.name}: {g.status} — {g.message}" for g in odd]
    flagged = []
    for g in results:
        saved = out / "students" / g.name / "grade.json"
        if saved.is_file():
            flags = json.loads(saved.read_text(encoding="utf-8")).get("flags") or {}
            if flags:
                flagged.append(f"  {g.name}: " + "; ".join(f"{m}: {', '.join(v)}" for m, v in flags.items())[:300])
    if flagged:
        lines.append("flagged for the teacher (students/<name>/report.txt):")
        lines += flagged
    lines.append(f"grades: {out / 'grades.csv'}")
    return "\n".join(lines) + "\n"
