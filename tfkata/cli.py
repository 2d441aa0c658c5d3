"""The ``kata`` command: the learner loop on top of the graded tests (also ``python -m tfkata``).

    kata                  progress: a bar and a table of every kata (same as ``kata status``)
    kata status --refresh re-run every available kata's tests, then show the table
    kata run [K]          run one kata's tests: grade line, first failure in full, hint 1 for a TODO
    kata next             the first unfinished kata: title, slide, first TODO/failing test, command
    kata hint K [N]       the next (or Nth) hint, function by function; remembers what was shown
    kata watch [K]        re-run the current kata whenever a file in katas/ is saved
    kata reset K          restore the pristine stub (your file is backed up in .tfkata/backups/)
    kata diff K           your file against the reference solution, once the kata's tests pass
    kata solutions [K..]  run the suite against solutions/ (the contributor's check)

Katas are named by id (``k04``), alias (``cnn``) or module (``k04_cnn_mnist``). The tests run in
a pytest subprocess; the last results per kata and the shown hints live in ``.tfkata/``
(see tfkata/state.py). Nothing here imports TensorFlow.
"""
from __future__ import annotations

import datetime as _dt
import difflib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from tfkata import registry, state as st
from tfkata.loader import repo_root
from tfkata.stubs import HEADER, stub_for

STATUS_STYLE = {
    "done": "bold green",
    "in progress": "yellow",
    "TODO": "cyan",
    "error": "bold red",
    "not available yet": "dim",
}


# --------------------------------------------------------------------------- plumbing
class App:
    def __init__(self):
        try:
            self.root = repo_root()
        except FileNotFoundError as exc:
            raise click.ClickException(str(exc)) from None
        self.store = st.Store(self.root)
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def warn_pending(self) -> None:
        while self.store.warnings:
            self.err.print(Text("warning: " + self.store.warnings.pop(0), style="bold yellow"))

    def fail(self, message: str, code: int = 1):
        self.warn_pending()
        self.err.print(Text(message, style="red"))
        raise SystemExit(code)


pass_app = click.make_pass_decorator(App)


class KataType(click.ParamType):
    """A kata id, alias or module name; an unknown one lists the valid ones."""

    name = "kata"

    def convert(self, value, param, ctx):
        if isinstance(value, registry.Kata):
            return value
        try:
            return registry.get(str(value))
        except registry.UnknownKata as exc:
            self.fail(str(exc), param, ctx)


KATA = KataType()


def _pct(earned: int, possible: int) -> str:
    return f"{100.0 * earned / possible:.0f} %" if possible else "0 %"


def _ago(path: Path) -> str:
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


def _bar(fraction: float, width: int = 30) -> ProgressBar:
    return ProgressBar(total=100, completed=round(100 * fraction), width=width)


def _bar_line(fraction: float, width: int = 40) -> Table:
    """A bar on a line of its own (a ProgressBar alone ends no line)."""
    grid = Table.grid()
    grid.add_row(_bar(fraction, width))
    return grid


# --------------------------------------------------------------------------- running the tests
class RunFailed(Exception):
    pass


def _need_pytest(app: App) -> None:
    import importlib.util

    if importlib.util.find_spec("pytest") is None:
        app.fail("pytest is not installed in this Python; install the test extra: pip install -e '.[test]'")


def run_tests(app: App, katas: list[registry.Kata]) -> dict[str, st.Progress]:
    """Run the tests of ``katas`` (all available) in ONE pytest subprocess against katas/, record
    the results per kata in .tfkata/, and return the fresh progress rows."""
    _need_pytest(app)
    store = app.store
    store.dir.mkdir(parents=True, exist_ok=True)
    tag = f"run-{os.getpid()}"
    json_path, xml_path = store.dir / f"{tag}.json", store.dir / f"{tag}.xml"
    cmd = [
        sys.executable, "-m", "pytest", *[k.test_file for k in katas],
        "--results-json", str(json_path), "--junitxml", str(xml_path),
        "-o", "junit_logging=system-out", "-q",
    ]
    env = dict(os.environ, TFKATA_TARGET="katas")
    names = ", ".join(k.id for k in katas)
    started = time.time()
    try:
        if app.out.is_terminal:
            with app.out.status(f"running the tests of {names} ...", spinner="dots"):
                proc = subprocess.run(cmd, cwd=app.root, env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        else:
            proc = subprocess.run(cmd, cwd=app.root, env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if not json_path.exists():
            tail = "\n".join(proc.stdout.strip().splitlines()[-25:])
            raise RunFailed(f"pytest stopped before grading (exit code {proc.returncode}):\n{tail}")
        data = json.loads(json_path.read_text(encoding="utf-8"))
        details = st.read_junit(xml_path)
        for t in data.get("tests", []):
            extra = details.get(st.junit_key(t["id"]), {})
            t["report"] = extra.get("text") or None
            t["printed"] = extra.get("out") or None
        data["started"] = started
        data["pytest_exit_code"] = proc.returncode
        if data.get("message") or not data.get("tests"):
            data["output_tail"] = "\n".join(proc.stdout.strip().splitlines()[-25:])
        for kata_id, doc in st.split_results(data, katas).items():
            store.write_results(registry.get(kata_id), doc)
    finally:
        for path in (json_path, xml_path):
            if path.exists():
                path.unlink()
    return {k.id: st.progress(store, k) for k in katas}


def _available_or_fail(app: App, kata: registry.Kata) -> st.Progress:
    row = st.progress(app.store, kata)
    if not row.available:
        app.fail(f"{kata.id} ({kata.title}) is not available yet: {row.missing} does not exist.")
    return row


# --------------------------------------------------------------------------- showing results
def grade_line(row: st.Progress) -> Text:
    k = row.kata
    line = Text()
    line.append(f"{k.id} · {k.title}", style="bold")
    line.append(f"  {row.earned}/{row.possible} points ({_pct(row.earned, row.possible)})  ")
    line.append(
        f"{row.count('pass')} pass · {row.count('fail', 'error')} fail · {row.count('todo')} todo"
        + (f" · {row.count('skip')} skip" if row.count("skip") else "")
    )
    duration = (row.results or {}).get("duration")
    if duration is not None:
        line.append(f" · {duration:.1f} s", style="dim")
    return line


def _screen_lines(app: App) -> int | None:
    """How many lines of a failure fit on one screen in watch mode (no limit when not a terminal)."""
    return max(app.out.height - 14, 10) if app.out.is_terminal else None


def _trim(text: str, max_lines: int | None) -> str:
    lines = text.rstrip().splitlines()
    if max_lines is None or len(lines) <= max_lines:
        return "\n".join(lines)
    keep = max(max_lines - 1, 4)
    head = keep // 3
    tail = keep - head
    return "\n".join(lines[:head] + [f"... ({len(lines) - keep} lines; `kata run` shows them all) ..."] + lines[-tail:])


def show_hint(app: App, kata: registry.Kata, func: str, number: int, *, label: str = "Hint") -> None:
    hints = kata.hints.get(func, [])
    if not 1 <= number <= len(hints):
        return
    text = Text()
    text.append(f"{label} {number}/{len(hints)} for {func}: ", style="bold magenta")
    text.append(hints[number - 1])
    app.out.print(text)
    app.store.mark_hint(kata.id, func, number)


def pictures(app: App, kata: registry.Kata, since: float | None = None) -> None:
    folder = app.root / st.OUTPUT_DIRNAME / kata.id
    if not folder.is_dir():
        return
    files = sorted(p for p in folder.rglob("*.png") if p.is_file())
    if not files:
        return
    names = []
    for p in files:
        new = since is not None and p.stat().st_mtime >= since
        names.append(p.relative_to(folder).as_posix() + (" (new)" if new else ""))
    app.out.print(Text(f"Pictures in {app.store.rel(folder)}/: " + ", ".join(names), style="blue"))


def report(app: App, row: st.Progress, *, max_lines: int | None = None, figures: bool = True) -> None:
    """What `kata run` and `kata watch` print after a run."""
    k = row.kata
    out = app.out
    out.print(grade_line(row))
    out.print(_bar_line(row.fraction))
    if row.status == "error":
        res = row.results or {}
        out.print(Text(f"Could not grade {k.id}: {res.get('message') or 'no test ran'}", style="bold red"))
        if res.get("output_tail"):
            out.print(Text(_trim(res["output_tail"], max_lines)))
        return
    if figures:
        printed = [(t["name"], t["printed"]) for t in row.tests if t.get("printed") and t.get("status") == "pass"]
        if printed:
            out.print(Text("Printed by the passing tests:", style="dim"))
            for name, text in printed[:12]:
                out.print(Text(f"  {name}: {text.strip().splitlines()[-1]}", style="dim"))
    if row.done:
        out.print(Text(f"✔ {k.id} done: every test passes.", style="bold green"))
        out.print(f"Compare with the reference: kata diff {k.id}  ·  next kata: kata next")
        pictures(app, k, (row.results or {}).get("started"))
        return
    test = row.first_problem
    if test is None:  # nothing failed, nothing passed: every test was skipped
        reasons = sorted({t.get("message") or "skipped" for t in row.tests})
        out.print(Text(f"No test of {k.id} was graded: every one was skipped ({'; '.join(reasons)[:300]})", style="yellow"))
        return
    others = sum(t["status"] in ("fail", "todo", "error") for t in row.tests) - 1
    out.print()
    if test["status"] == "todo":
        out.print(Text(f"TODO  {test['name']}", style="bold cyan"))
        out.print(Text("  " + (test.get("message") or "")))
        func = st.function_of_test(k, test)
        if func:
            show_hint(app, k, func, 1)
            out.print(Text(f"More hints: kata hint {k.id}", style="dim"))
    else:
        where = test["id"].split("::")[0]
        out.print(Text(f"First failure: {test['name']}  ({where})", style="bold red"))
        body = test.get("report") or test.get("message") or "(no details)"
        out.print(Text(_trim(body, max_lines)))
        if test.get("printed"):
            out.print(Text("printed:\n" + _trim(test["printed"], 8), style="dim"))
        func = st.function_of_test(k, test)
        if func:
            out.print(Text(f"Stuck? kata hint {k.id} -f {func}", style="dim"))
    if others > 0:
        out.print(Text(f"(+ {others} more test{'s' if others > 1 else ''} to fix or write)", style="dim"))
    pictures(app, k, (row.results or {}).get("started"))


# --------------------------------------------------------------------------- the commands
@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx):
    """tf-katas: learn TensorFlow by making graded tests pass.

    Edit katas/kNN_*.py, then `kata run kNN` (or `kata watch`). Katas are named by id (k04),
    alias (cnn) or module name (k04_cnn_mnist).
    """
    ctx.obj = App()
    ctx.obj.store.state  # a broken state file is reported (and set aside) before anything else
    ctx.obj.warn_pending()
    ctx.call_on_close(ctx.obj.warn_pending)
    if ctx.invoked_subcommand is None:
        ctx.invoke(status)


@cli.command(short_help="A progress bar and a table of every kata.")
@click.option("--refresh", is_flag=True, help="Re-run the tests of every available kata first.")
@pass_app
def status(app: App, refresh: bool):
    """Progress: a bar and a table of every kata, from the last recorded results."""
    if refresh:
        todo = [k for k in registry.katas() if st.progress(app.store, k).available]
        if todo:
            try:
                run_tests(app, todo)
            except RunFailed as exc:
                app.fail(str(exc))
    rows = st.all_progress(app.store)
    app.warn_pending()
    done = sum(r.done for r in rows)
    fraction = sum(r.fraction for r in rows) / len(rows) if rows else 0.0
    earned, possible = sum(r.earned for r in rows), sum(r.possible for r in rows)
    head = Table.grid(padding=(0, 1))
    head.add_row(
        Text("progress", style="bold"),
        _bar(fraction, 20),
        Text(f"{100 * fraction:.0f} %", style="bold"),
        Text(f"· {done}/{len(rows)} katas done · {earned}/{possible} points recorded"),
    )
    app.out.print(head)
    cells = []
    for r in rows:
        label = "not available" if not r.available else r.status
        if r.stale and r.available:
            label += " (changed since)"
        tests = f"{r.count('pass')}/{len(r.tests) - r.count('skip')}" if r.results else "-"
        points = f"{r.earned}/{r.possible}" if r.results else "-"
        last = _ago(app.store.results_path(r.kata)) if r.results else ""
        cells.append((r, [r.kata.id, f"{r.kata.title} ({r.kata.alias})", label, tests, points, last]))
    names = ("kata", "title", "status", "tests", "points", "last run")
    widths = [max([len(n)] + [len(c[i]) for _, c in cells]) for i, n in enumerate(names)]
    title_width = max(12, app.out.width - (sum(widths) - widths[1]) - 3 * (len(names) - 1))
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for i, name in enumerate(names):
        if name == "title":
            table.add_column(name, no_wrap=True, overflow="ellipsis", max_width=title_width)
        else:
            table.add_column(name, no_wrap=True, min_width=widths[i])
    for r, c in cells:
        table.add_row(c[0], c[1], Text(c[2], style=STATUS_STYLE.get(r.status, "")), *c[3:])
    app.out.print(table)
    nxt = st.current(app.store, rows)
    if nxt is None:
        if any(r.available for r in rows):
            app.out.print(Text("Every available kata is done.", style="bold green"))
    elif not any(r.results for r in rows):
        app.out.print(f"Start with: kata run {nxt.kata.id}   (kata status --refresh grades every kata)")
    else:
        app.out.print(f"Next: kata run {nxt.kata.id}   (kata next says what to do)")


@cli.command(short_help="Run a kata's tests: grade, first failure, hint.")
@click.argument("kata", type=KATA, required=False)
@pass_app
def run(app: App, kata: registry.Kata | None):
    """Run one kata's tests (default: the current kata) and show the grade and first failure."""
    if kata is None:
        row = st.current(app.store)
        if row is None:
            app.out.print("Every available kata is done. Name one to run it again: kata run k01")
            return
        kata = row.kata
    _available_or_fail(app, kata)
    try:
        row = run_tests(app, [kata])[kata.id]
    except RunFailed as exc:
        app.fail(str(exc))
    app.warn_pending()
    report(app, row)
    sys.exit(0 if row.done else 1)


@cli.command(name="next", short_help="The first unfinished kata and what to do.")
@pass_app
def next_(app: App):
    """The first unfinished kata: what it is, what to write first, and the command to run."""
    rows = st.all_progress(app.store)
    app.warn_pending()
    row = st.current(app.store, rows)
    missing = [r.kata.id for r in rows if not r.available]
    out = app.out
    if row is None:
        out.print(Text("Every available kata is done.", style="bold green"))
        if missing:
            out.print(f"Not available yet: {', '.join(missing)}")
        return
    k = row.kata
    out.print(Text(f"Next: {k.id} · {k.title}  (alias {k.alias})", style="bold"))
    out.print(Text(f"  tutorial: {k.heading}   slide: {k.slide}"))
    if k.source:
        out.print(Text(f"  from: {k.source}", style="dim"))
    out.print(Text(f"  edit: {k.path('katas')}"))
    test = row.first_problem
    if test is not None:
        what = "TODO" if test["status"] == "todo" else "failing"
        func = st.function_of_test(k, test)
        line = f"  first {what} test: {test['name']}"
        if func:
            line += f"  →  {func}"
        todo = st.parse_todo(test.get("message"))
        if todo:
            line += f"  ({todo[1]})"
        out.print(Text(line, style="cyan" if what == "TODO" else "red"))
        if row.stale:
            out.print(Text("  (you edited the file since that run)", style="dim"))
    else:
        todos = st.todo_functions(app.root / k.path("katas"))
        if todos:
            name, line_no = todos[0]
            out.print(Text(f"  not run yet; first function to write: {name}  ({k.path('katas')}:{line_no})", style="cyan"))
        else:
            out.print(Text("  not run yet", style="cyan"))
    out.print(Text(f"  run: kata run {k.id}   ·   hints: kata hint {k.id}   ·   watch: kata watch {k.id}"))


def _focus(app: App, kata: registry.Kata) -> str | None:
    """The function the learner is on: the last run's first TODO/failure, else the first stub left
    in the file, else the first function with a hint not shown yet."""
    row = st.progress(app.store, kata)
    if row.results is not None and not row.stale and not row.done:
        func = st.function_of_test(kata, row.first_problem)
        if func:
            return func
    for name, _ in st.todo_functions(app.root / kata.path("katas")):
        func = st.hint_function(kata, name)
        if func:
            return func
    for func, hints in kata.hints.items():
        if len(app.store.shown_hints(kata.id, func)) < len(hints):
            return func
    return next(iter(kata.hints), None)


@cli.command(short_help="The next (or Nth) hint; remembers what was shown.")
@click.argument("kata", type=KATA)
@click.argument("number", type=click.IntRange(min=1), required=False)
@click.option("-f", "--function", "func", metavar="NAME", help="The function to get a hint for.")
@pass_app
def hint(app: App, kata: registry.Kata, number: int | None, func: str | None):
    """Show the next hint for KATA (or hint NUMBER of the current function); remembers what was shown.

    Hints come function by function: first the function you are on (the first TODO or failing
    test of your last run, or the first stub left in your file), then the others in order.
    """
    if not kata.hints:
        app.fail(f"{kata.id} has no hints yet.")
    if func is not None:
        if func not in kata.hints:
            app.fail(f"{kata.id} has no function {func!r}; its functions: {', '.join(kata.hints)}")
    else:
        func = _focus(app, kata)
    app.warn_pending()
    if number is not None:
        hints = kata.hints[func]
        if number > len(hints):
            app.fail(f"{func} has {len(hints)} hints; ask for 1 to {len(hints)}.")
        show_hint(app, kata, func, number)
        return
    names = list(kata.hints)
    start = names.index(func)
    for name in names[start:] + names[:start]:
        shown = app.store.shown_hints(kata.id, name)
        unseen = [n for n in range(1, len(kata.hints[name]) + 1) if n not in shown]
        if unseen:
            if name != func:
                app.out.print(Text(
                    f"(all {len(kata.hints[func])} hints for {func} were shown: kata hint {kata.id} N -f {func} shows one again)",
                    style="dim",
                ))
            show_hint(app, kata, name, unseen[0])
            return
    app.out.print(f"Every hint of {kata.id} has been shown. Show one again: kata hint {kata.id} N -f FUNCTION")
    for name, hints in kata.hints.items():
        app.out.print(Text(f"  {name}: {len(hints)} hints", style="dim"))


@cli.command(short_help="Re-run the current kata whenever katas/ is saved.")
@click.argument("kata", type=KATA, required=False)
@click.option("--once", is_flag=True, help="Stop after the first re-run caused by a saved file.")
@click.option("--timeout", type=float, default=None, metavar="SECONDS", help="Stop after this many seconds.")
@pass_app
def watch(app: App, kata: registry.Kata | None, once: bool, timeout: float | None):
    """Re-run the current kata (or KATA) whenever a file in katas/ is saved. Ctrl-C stops."""
    import watchfiles

    deadline = time.monotonic() + timeout if timeout else None
    pinned = kata
    if kata is None:
        row = st.current(app.store)
        if row is None:
            app.out.print("Every available kata is done; name one to watch it: kata watch k01")
            return
        kata = row.kata
    else:
        _available_or_fail(app, kata)
    folder = app.root / "katas"

    def one_run(k: registry.Kata) -> registry.Kata:
        if app.out.is_terminal:
            app.out.clear()
        stamp = _dt.datetime.now().strftime("%H:%M:%S")
        app.out.print(Text(f"kata watch · {k.id} · {stamp}", style="dim"))
        try:
            row = run_tests(app, [k])[k.id]
        except RunFailed as exc:
            app.out.print(Text(str(exc), style="red"))
            return k
        app.warn_pending()
        report(app, row, max_lines=_screen_lines(app), figures=False)
        if row.done and pinned is None:
            nxt = st.current(app.store)
            if nxt is not None:
                app.out.print(Text(f"On to {nxt.kata.id} · {nxt.kata.title}: edit {nxt.kata.path('katas')}", style="bold"))
                return nxt.kata
        return k

    try:
        row = st.progress(app.store, kata)
        if row.results is not None and not row.stale:
            # nothing changed since the last recorded run: show it instead of running again
            app.out.print(Text(f"kata watch · {kata.id} · last run {_ago(app.store.results_path(kata))}, nothing changed since", style="dim"))
            report(app, row, max_lines=_screen_lines(app), figures=False)
        else:
            kata = one_run(kata)
        waiting_line = True
        for changes in watchfiles.watch(
            folder, watch_filter=watchfiles.PythonFilter(), yield_on_timeout=True,
            rust_timeout=300, raise_interrupt=False,
        ):
            if changes:
                chosen = kata
                if pinned is None:
                    for _, path in sorted(changes, key=lambda c: c[1]):
                        changed = registry.for_source_file(path)
                        if changed is not None and st.progress(app.store, changed).available:
                            chosen = changed
                            break
                kata = one_run(chosen)
                if once:
                    return
                waiting_line = True
            elif waiting_line:
                # printed once the watcher is running, so a save from now on is seen
                app.out.print(Text(
                    f"watching katas/ · save a file to re-run {kata.id} · Ctrl-C to stop", style="dim"
                ))
                waiting_line = False
            if deadline is not None and time.monotonic() > deadline:
                app.out.print(Text(f"watch: stopped after {timeout:g} s", style="dim"))
                return
    except KeyboardInterrupt:
        app.out.print(Text("watch: stopped", style="dim"))


@cli.command(short_help="Restore a kata's stub (your file is backed up).")
@click.argument("kata", type=KATA)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def reset(app: App, kata: registry.Kata, yes: bool):
    """Restore KATA's pristine stub; your current file is backed up in .tfkata/backups/ first."""
    if not (app.root / kata.path("solutions")).exists():
        app.fail(f"{kata.id} is not available yet: {kata.path('solutions')} does not exist.")
    target = app.root / kata.path("katas")
    stub = stub_for(kata, app.root)
    if target.exists() and target.read_text(encoding="utf-8") == stub:
        app.out.print(f"{kata.path('katas')} is already the pristine stub; nothing to do.")
        return
    if not yes:
        click.confirm(
            f"Replace {kata.path('katas')} with the pristine stub? (your file is backed up first)",
            abort=True,
        )
    if target.exists():
        backup = app.store.backup_learner_file(kata)
        app.out.print(f"Backed up your file to {app.store.rel(backup)}")
    target.write_text(stub, encoding="utf-8")
    app.store.forget_results(kata)
    app.out.print(Text(f"Restored {kata.path('katas')}; {kata.id} is TODO again (kata run {kata.id}).", style="green"))


@cli.command(short_help="Your file against the reference, once it passes.")
@click.argument("kata", type=KATA)
@click.option("--force", is_flag=True, help="Show it even though the kata's tests do not all pass yet.")
@pass_app
def diff(app: App, kata: registry.Kata, force: bool):
    """Your KATA file against the reference solution (unified diff), once the kata's tests pass."""
    mine, ref = app.root / kata.path("katas"), app.root / kata.path("solutions")
    for path in (mine, ref):
        if not path.exists():
            app.fail(f"{kata.id} is not available yet: {app.store.rel(path)} does not exist.")
    if not force:
        row = st.progress(app.store, kata)
        if row.results is None:
            app.fail(f"refusing: {kata.id} has no recorded run yet; pass its tests first (kata run {kata.id}) or use --force.")
        if not row.done:
            app.fail(
                f"refusing: {kata.id}'s last run is not all green ({row.earned}/{row.possible} points); "
                f"pass its tests first (kata run {kata.id}) or use --force."
            )
    app.warn_pending()
    mine_text = mine.read_text(encoding="utf-8")
    header = HEADER.format(id=kata.id, module=kata.module, test_file=kata.test_file)
    if mine_text.startswith(header):  # the stub's banner is noise here
        mine_text = mine_text[len(header):]
    lines = list(difflib.unified_diff(
        mine_text.splitlines(keepends=True), ref.read_text(encoding="utf-8").splitlines(keepends=True),
        fromfile=f"{kata.path('katas')} (yours)", tofile=f"{kata.path('solutions')} (reference)",
    ))
    if not lines:
        app.out.print(f"{kata.path('katas')} is identical to the reference solution.")
        return
    for line in lines:
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
        app.out.print(Text(line, style=style), soft_wrap=True)


@cli.command(
    short_help="Run the suite against solutions/ (contributors).",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def solutions(app: App, args: tuple[str, ...]):
    """Run the suite against solutions/ (pytest --solutions): the check a contributor runs.

    ARGS: kata names narrow it to those katas' tests; anything else goes to pytest
    (e.g. kata solutions k04 --runslow -x).
    """
    files, extra = [], []
    for arg in args:
        kata = None
        if not arg.startswith("-"):
            try:
                kata = registry.get(arg)
            except registry.UnknownKata:
                kata = None
        if kata is None:
            extra.append(arg)
        elif (app.root / kata.test_file).exists():
            files.append(kata.test_file)
        else:
            app.fail(f"{kata.id} is not available yet: {kata.test_file} does not exist.")
    _need_pytest(app)
    cmd = [sys.executable, "-m", "pytest", "--solutions", *files, *extra]
    app.out.print(Text("$ " + " ".join(["pytest", "--solutions", *files, *extra]), style="dim"))
    env = {k: v for k, v in os.environ.items() if k != "TFKATA_TARGET"}
    sys.exit(subprocess.call(cmd, cwd=app.root, env=env))


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="kata")


if __name__ == "__main__":
    main()
