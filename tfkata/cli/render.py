"""What the ``kata`` command prints: grade lines, the report after a run, the status table, the diff."""
from __future__ import annotations

import datetime as _dt
import difflib
import time
from pathlib import Path

from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from tfkata import registry, source
from tfkata.feedback.upstream import failing_upstream
from tfkata.paths import OUTPUT_DIRNAME
from tfkata.progress import Progress

STATUS_STYLE = {
    "done": "bold green",
    "in progress": "yellow",
    "failing": "red",
    "TODO": "cyan",
    "error": "bold red",
    "not available yet": "dim",
}
MARK = {"fail": "✗", "error": "✗", "todo": "T", "waiting": "…"}
LIST_LIMIT = 12


def pct(earned: int, possible: int) -> str:
    return f"{100.0 * earned / possible:.0f} %" if possible else "0 %"


def ago(path: Path) -> str:
    try:
        seconds = time.time() - path.stat().st_mtime
    except OSError:
        return ""
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return _dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d")


def bar(fraction: float, width: int = 30) -> ProgressBar:
    return ProgressBar(total=100, completed=round(100 * fraction), width=width)


def bar_line(fraction: float, width: int = 40) -> Table:
    grid = Table.grid()
    grid.add_row(bar(fraction, width))
    return grid


def trim(text: str, max_lines: int | None) -> str:
    lines = text.rstrip().splitlines()
    if max_lines is None or len(lines) <= max_lines:
        return "\n".join(lines)
    keep = max(max_lines - 1, 4)
    head = keep // 3
    return "\n".join(lines[:head] + [f"... ({len(lines) - keep} lines; `kata run` shows them all) ..."]
                     + lines[-(keep - head):])


def grade_line(row: Progress) -> Text:
    k = row.kata
    line = Text()
    line.append(f"{k.id} · {k.title}", style="bold")
    line.append(f"  {row.earned}/{row.possible} points ({pct(row.earned, row.possible)})  ")
    parts = [f"{row.count('pass')} pass", f"{row.count('fail', 'error')} fail", f"{row.count('todo')} todo"]
    if row.count("waiting"):
        parts.append(f"{row.count('waiting')} waiting")
    if row.count("skip"):
        parts.append(f"{row.count('skip')} skip")
    line.append(" · ".join(parts))
    if row.results is not None:
        line.append(f" · {row.results.duration:.1f} s", style="dim")
    return line


def hint_text(kata: registry.Kata, func: str, number: int, label: str = "Hint") -> Text:
    hints = kata.hints[func]
    text = Text()
    text.append(f"{label} {number}/{len(hints)} for {func}: ", style="bold magenta")
    text.append(hints[number - 1])
    return text


def pictures(out: Console, root: Path, kata: registry.Kata, since: float | None = None) -> None:
    folder = root / OUTPUT_DIRNAME / kata.id
    files = sorted(p for p in folder.rglob("*.png") if p.is_file()) if folder.is_dir() else []
    if not files:
        return
    names = [p.relative_to(folder).as_posix() + (" (new)" if since is not None and p.stat().st_mtime >= since else "")
             for p in files]
    out.print(Text(f"Pictures in {OUTPUT_DIRNAME}/{kata.id}/: " + ", ".join(names), style="blue"))


def early_failure(out: Console, first: dict) -> None:
    """A run's first failure, printed while its other tests still run (the report follows)."""
    out.print(Text(f"✗ {first.get('test')}: {first.get('line')}", style="red"), soft_wrap=False)
    out.print(Text("  (the first failure; the other tests are still running, the full report follows)", style="dim"))


def report(out: Console, root: Path, row: Progress, *, show_hint, max_lines: int | None = None,
           figures: bool = True, list_all: bool = False) -> None:
    """What ``kata run`` and ``kata watch`` print after a run. ``show_hint(func, n)`` prints and records a hint."""
    k = row.kata
    out.print(grade_line(row))
    out.print(bar_line(row.fraction))
    res = row.results
    if row.status == "error":
        out.print(Text(f"Could not grade {k.id}: {(res.message if res else None) or 'no test ran'}", style="bold red"))
        return
    if figures:
        printed = [(t.name, t.printed) for t in row.tests if t.printed and t.status == "pass"]
        if printed:
            out.print(Text("Printed by the passing tests:", style="dim"))
            for name, text in printed[:12]:
                out.print(Text(f"  {name}: {text.strip().splitlines()[-1]}", style="dim"))
    since = res.started if res else None
    if row.done:
        out.print(Text(f"✔ {k.id} done: every test passes.", style="bold green"))
        out.print(f"Compare with the reference: kata diff {k.id}  ·  common mistakes: kata mistakes {k.id}  ·  next: kata next")
        pictures(out, root, k, since)
        return
    test = row.first_problem
    waiting = [t for t in row.tests if t.status == "waiting"]
    try:
        calls = source.callees((root / k.path("katas")).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        calls = {}
    if test is None:
        if waiting:
            out.print(Text(f"Waiting: {waiting[0].message}", style="yellow"))
        else:
            reasons = sorted({t.message or "skipped" for t in row.tests})
            out.print(Text(f"No test of {k.id} was graded: every one was skipped ({'; '.join(reasons)[:300]})", style="yellow"))
        return
    out.print()
    func, first_listed = test.function, None
    if test.status == "todo":
        out.print(Text(f"TODO  {test.name}", style="bold cyan"))
        out.print(Text("  " + (test.message or "")))
        if func in k.hints:
            show_hint(func, 1)
            out.print(Text(f"More hints: kata hint {k.id}", style="dim"))
    else:
        where = test.id.split("::")[0]
        out.print(Text(f"First failure: {test.name}  ({where})", style="bold red"))
        out.print(Text(trim(test.report or test.message or "(no details)", max_lines)))
        if test.printed:
            out.print(Text("printed:\n" + trim(test.printed, 8), style="dim"))
        upstream = failing_upstream(test, row.problems, calls=calls)
        if upstream:
            out.print(Text(f"It uses {upstream}, whose own test fails too (below): fix {upstream} first.", style="bold"))
            func = upstream
            first_listed = upstream
        if func in k.hints:
            out.print(Text(f"Stuck? kata hint {k.id} -f {func}", style="dim"))
    others = [t for t in row.problems if t is not test]
    failing = [t for t in others if t.status != "todo"]
    if first_listed:  # "(below)": its own failing tests lead the list, never cut off
        failing.sort(key=lambda t: t.function != first_listed)
    todo_funcs = list(dict.fromkeys(t.function or t.name for t in others if t.status == "todo"))
    if failing:
        out.print(Text(f"Also failing ({len(failing)}):", style="bold"))
        shown = failing if list_all else failing[:LIST_LIMIT]
        for t in shown:
            first = (t.message or "").splitlines()[0] if t.message else ""  # whole: rich wraps it
            upstream = failing_upstream(t, row.problems, calls=calls)
            if upstream:  # a knock-on: its own guess at the cause comes second, as what it saw
                first = (f"likely a knock-on: it uses {upstream}, whose own test fails too; fix {upstream} first. "
                         f"It saw: {first}")
            out.print(Text(f"  {MARK.get(t.status, '?')} {t.name}: {first}"))
        if len(shown) < len(failing):
            out.print(Text(f"  ... {len(failing) - len(shown)} more: kata run {k.id} --all", style="dim"))
    if todo_funcs:
        n = sum(t.status == "todo" for t in others)
        out.print(Text(f"Still to write ({n} test{'s' if n != 1 else ''}): {', '.join(todo_funcs)}", style="cyan"))
    if waiting:
        out.print(Text(f"Waiting ({len(waiting)} not run yet): {waiting[0].message}", style="yellow"))
    pictures(out, root, k, since)


def status_table(out: Console, rows: list[Progress], results_path) -> None:
    cells = []
    for r in rows:
        label = "not available" if not r.available else r.status
        if r.passed_before and r.available:
            label += " (this file passed; the last run was of another)"
        elif r.stale and r.available:
            label += " (changed since)"
        ran = r.results is not None
        graded = len(r.tests) - r.count("skip")
        tests = (f"{graded}/{graded}" if r.passed_before else f"{r.count('pass')}/{graded}") if ran else "-"
        points = f"{r.earned}/{r.possible}" if ran else "-"
        last = ago(results_path(r.kata)) if ran else ""
        twin = f" ← {r.kata.twin}" if r.kata.twin else ""
        cells.append((r, [r.kata.id, f"{r.kata.title} ({r.kata.alias}){twin}", label, tests, points, last]))
    names = ("kata", "title", "status", "tests", "points", "last run")
    widths = [max([len(n)] + [len(c[i]) for _, c in cells]) for i, n in enumerate(names)]
    title_width = max(12, out.width - (sum(widths) - widths[1]) - 3 * (len(names) - 1))
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for i, name in enumerate(names):
        if name == "title":
            table.add_column(name, no_wrap=True, overflow="ellipsis", max_width=title_width)
        else:
            table.add_column(name, no_wrap=True, min_width=widths[i])
    track = None
    for r, c in cells:
        if track is not None and r.kata.track != track:
            table.add_section()
        track = r.kata.track
        table.add_row(c[0], c[1], Text(c[2], style=STATUS_STYLE.get(r.status, "")), *c[3:])
    out.print(table)
    if any(r.kata.track == "now" for r in rows):
        out.print(Text("kNN: then (TF 1 through tf.compat.v1, as the slides) · nNN: now (TF 2 idiom; "
                       "nNN ← kNN is the port of kNN, proven equal to your kNN)", style="dim"))


def diff_lines(mine_text: str, ref_text: str, mine_name: str, ref_name: str) -> list[Text]:
    out = []
    for line in difflib.unified_diff(mine_text.splitlines(keepends=True), ref_text.splitlines(keepends=True),
                                     fromfile=mine_name, tofile=ref_name):
        line = line.rstrip("\n")
        style = ""
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("@@"):
            style = "cyan"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        out.append(Text(line, style=style))
    return out
