"""The end of a pytest run, as the learner reads it: one line per kata still to do, then the grade table."""
from __future__ import annotations

from pathlib import Path

from tfkata import source
from tfkata.results import Run

HEADER = f"{'kata':<5} {'title':<38} {'pass':>4} {'fail':>4} {'todo':>4} {'wait':>4} {'skip':>4} {'points':>9} {'time':>8}"


def todo_lines(run: Run, root: Path | None = None) -> list[str]:
    """One line per kata with stubs left: how many functions (stubs still in the file), the first one a
    test hit and where, what to run."""
    out = []
    for row in run.katas:
        todos = [t.todo for t in run.graded if t.kata == row.id and t.status == "todo" and t.todo]
        if not todos:
            continue
        first = todos[0]
        left = source.stub_functions(root / first.file) if root is not None else []
        funcs = list(dict.fromkeys(f.top for f in left)) or list(dict.fromkeys(t.function for t in todos))
        more = f" (+{len(funcs) - 1} more)" if len(funcs) > 1 else ""
        out.append(f"{row.id}  {len(funcs)} function{'s' if len(funcs) != 1 else ''} to write: "
                   f"{first.function} first ({first.where}){more}   → kata run {row.id}")
    return out


def waiting_lines(run: Run) -> list[str]:
    out = []
    for row in run.katas:
        waits = [t for t in run.graded if t.kata == row.id and t.status == "waiting"]
        if waits:
            reasons = list(dict.fromkeys(t.message or "waiting" for t in waits))
            out.append(f"{row.id}  {len(waits)} test{'s' if len(waits) != 1 else ''} waiting: {reasons[0]}"
                       + (f" (+{len(reasons) - 1} other reasons)" if len(reasons) > 1 else ""))
    return out


def grade_table(run: Run) -> list[str]:
    lines = [HEADER]
    for k in run.katas:
        points = f"{k.points}/{k.points_possible}"
        lines.append(
            f"{k.id:<5} {k.title[:38]:<38} {k.passed:>4} {k.failed + k.errors:>4} {k.todo:>4} {k.waiting:>4} "
            f"{k.skipped:>4} {points:>9} {k.duration:>7.1f}s"
        )
    total = {key: sum(getattr(k, key) for k in run.katas)
             for key in ("passed", "failed", "errors", "todo", "waiting", "skipped", "duration")}
    earned, possible = run.points["earned"], run.points["possible"]
    lines.append("-" * len(HEADER))
    lines.append(
        f"{'total':<44} {total['passed']:>4} {total['failed'] + total['errors']:>4} {total['todo']:>4} "
        f"{total['waiting']:>4} {total['skipped']:>4} {f'{earned}/{possible}':>9} {total['duration']:>7.1f}s"
    )
    pct = 100.0 * earned / possible if possible else 0.0
    lines.append(f"grade: {earned}/{possible} points ({pct:.0f} %)")
    harness = [t for t in run.tests if t.kata is None]
    if harness:
        bad = sum(t.status in ("fail", "error") for t in harness)
        lines.append(f"harness self-tests (not graded): {sum(t.status == 'pass' for t in harness)} passed, "
                     f"{bad} failed, {sum(t.status == 'skip' for t in harness)} skipped")
    return lines


def write(tr, run: Run, root: Path | None = None) -> None:
    """Write the summary to pytest's terminal reporter ``tr`` (``root``: the checkout)."""
    todo, waiting = todo_lines(run, root), waiting_lines(run)
    if todo:
        tr.section("TODO: functions still to write", sep="-", yellow=True)
        for line in todo:
            tr.write_line(line)
    if waiting:
        tr.section("waiting (not run, not failed)", sep="-", yellow=True)
        for line in waiting:
            tr.write_line(line)
    if not run.katas:
        return
    tr.section(f"grades ({run.target}/)", sep="=")
    for line in grade_table(run):
        tr.write_line(line)
