"""The ``kata`` command: the learner loop on top of the graded tests (also ``python -m tfkata``).

    kata                  progress: a bar and a table of every kata (same as ``kata status``)
    kata status --refresh re-run every available kata's tests, then show the table
    kata run [K]          run one kata's tests: grade, first failure, the others one line each, a hint
    kata next             the first unfinished kata: title, slides, first TODO/failing test, command
    kata hint K [N]       the next (or Nth) hint for the function you are on; remembers what was shown
    kata watch [K]        re-run the kata you are on whenever katas/ is saved (a save cancels a run)
    kata reset K          restore the pristine stub (your file is backed up in .tfkata/backups/)
    kata diff K           your file against the reference solution, once the kata's tests pass
    kata mistakes K       once K passes: the common mistakes of K and what the tests say to each
    kata solutions [K..]  run the suite against solutions/ (the contributor's check)
    kata dev check        the contributors' whole check (CI runs it); kata dev mistakes [K..]
    kata grade SUBS...    the teacher's: grade a class of submissions (tfkata.grading)

This module only wires click commands; the rooms are runner (pytest), render (what is printed),
hints (which hint), watching (the loop) and checks (contributors). Nothing here imports TensorFlow.
"""
from __future__ import annotations

import sys

import click
from rich.table import Table
from rich.text import Text

from tfkata import registry
from tfkata.cli import hints as hint_policy
from tfkata.cli import render
from tfkata.cli.app import KATA, App, pass_app
from tfkata.progress import all_progress, current, progress, stubs_left
from tfkata.stubs import HEADER, stub_for

SOURCE_REPO = "https://github.com/soloice/tf-tutorial/blob/HEAD/"


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx):
    """tf-katas: learn TensorFlow by making graded tests pass.

    Edit katas/kNN_*.py (then: TF 1 via tf.compat.v1) or katas/nNN_*.py (now: TF 2), then
    `kata run kNN` (or `kata watch`). Katas are named by id (k04), alias (cnn) or module name.
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
        todo = [k for k in registry.katas() if progress(app.store, k).available]
        if todo:
            app.run(todo)
    rows = all_progress(app.store)
    app.warn_pending()
    done = sum(r.done for r in rows)
    fraction = sum(r.fraction for r in rows) / len(rows) if rows else 0.0
    earned, possible = sum(r.earned for r in rows), sum(r.possible for r in rows)
    head = Table.grid(padding=(0, 1))
    head.add_row(Text("progress", style="bold"), render.bar(fraction, 20), Text(f"{100 * fraction:.0f} %", style="bold"),
                 Text(f"· {done}/{len(rows)} katas done · {earned}/{possible} points recorded"))
    app.out.print(head)
    render.status_table(app.out, rows, app.store.results_path)
    nxt = current(app.store, rows)
    if nxt is None:
        if any(r.available for r in rows):
            app.out.print(Text("Every available kata is done.", style="bold green"))
    elif not any(r.results for r in rows):
        app.out.print(f"Start with: kata run {nxt.kata.id}   (kata status --refresh grades every kata)")
    else:
        app.out.print(f"Next: kata run {nxt.kata.id}   (kata next says what to do)")


@cli.command(short_help="Run a kata's tests: grade, first failure, hint.")
@click.argument("kata", type=KATA, required=False)
@click.option("--full", is_flag=True, help="Show TensorFlow's whole traceback (pytest --tb=long).")
@click.option("--all", "list_all", is_flag=True, help="List every test still to fix, not only the first 12.")
@pass_app
def run(app: App, kata: registry.Kata | None, full: bool, list_all: bool):
    """Run one kata's tests (default: the current kata) and show the grade and what to fix."""
    if kata is None:
        row = current(app.store)
        if row is None:
            app.out.print("Every available kata is done. Name one to run it again: kata run k01")
            return
        kata = row.kata
    app.available_or_fail(kata)
    row = app.run([kata], full=full)[kata.id]
    app.warn_pending()
    app.report(row, list_all=list_all)
    sys.exit(0 if row.done else 1)


def source_links(kata: registry.Kata) -> list[str]:
    """The tutorial files a kata comes from, as links into soloice/tf-tutorial."""
    return [SOURCE_REPO + part.strip().split(" ")[0] for part in kata.source.split(",") if part.strip()]


@cli.command(name="next", short_help="The first unfinished kata and what to do.")
@pass_app
def next_(app: App):
    """The first unfinished kata: what it is, what to write first, and the command to run."""
    rows = all_progress(app.store)
    app.warn_pending()
    row = current(app.store, rows)
    out = app.out
    if row is None:
        out.print(Text("Every available kata is done.", style="bold green"))
        return
    k = row.kata
    out.print(Text(f"Next: {k.id} · {k.title}  (alias {k.alias})", style="bold"))
    out.print(Text(f"  tutorial: {k.heading}   slides: {k.slide}"))
    for link in source_links(k):
        out.print(Text(f"  from: {link}", style="dim"))
    if k.twin:
        out.print(Text(f"  the TF 2 port of {k.twin}: its equivalence tests compare with your {k.twin}", style="dim"))
    out.print(Text(f"  edit: {k.path('katas')}"))
    test = row.first_problem
    if test is not None:
        what = "TODO" if test.status == "todo" else "failing"
        line = f"  first {what} test: {test.name}"
        if test.function:
            line += f"  →  {test.function}"
        if test.todo:
            line += f"  ({test.todo.where})"
        out.print(Text(line, style="cyan" if what == "TODO" else "red"))
        if row.stale:
            out.print(Text("  (you edited the file since that run)", style="dim"))
    else:
        left = stubs_left(app.store, k)
        if left:
            out.print(Text(f"  not run yet; first function to write: {left[0].name}  ({k.path('katas')}:{left[0].line})", style="cyan"))
        else:
            out.print(Text("  not run yet", style="cyan"))
    out.print(Text(f"  run: kata run {k.id}   ·   hints: kata hint {k.id}   ·   watch: kata watch {k.id}"))


@cli.command(short_help="The next (or Nth) hint for the function you are on.")
@click.argument("kata", type=KATA)
@click.argument("number", type=click.IntRange(min=1), required=False)
@click.option("-f", "--function", "func", metavar="NAME", help="The function to get a hint for.")
@pass_app
def hint(app: App, kata: registry.Kata, number: int | None, func: str | None):
    """Show the next hint for KATA (or hint NUMBER); remembers what was shown.

    Without -f, the hint is for the function you are on: the function of the first TODO or failing
    test of your last run (the function that test covers), else the first stub left in your file.
    """
    if not kata.hints:
        app.fail(f"{kata.id} has no hints yet.")
    if func is not None and func not in kata.hints:
        app.fail(f"{kata.id} has no function {func!r}; its functions: {', '.join(kata.hints)}")
    app.warn_pending()
    if number is not None:
        func = func or hint_policy.focus(app.store, kata)
        if func is None:
            app.fail(f"{kata.id} is done; name the function: kata hint {kata.id} {number} -f FUNCTION")
        if number > len(kata.hints[func]):
            app.fail(f"{func} has {len(kata.hints[func])} hints; ask for 1 to {len(kata.hints[func])}.")
        app.show_hint(kata, func, number)
        return
    pick = hint_policy.next_hint(app.store, kata, func)
    if pick.number is None:
        app.out.print(pick.note)
        return
    app.show_hint(kata, pick.func, pick.number)


@cli.command(short_help="Re-run the kata you are on whenever katas/ is saved.")
@click.argument("kata", type=KATA, required=False)
@click.option("--once", is_flag=True, help="Stop after the first re-run caused by a saved file.")
@click.option("--timeout", type=float, default=None, metavar="SECONDS", help="Stop after this many seconds.")
@pass_app
def watch(app: App, kata: registry.Kata | None, once: bool, timeout: float | None):
    """Re-run KATA (default: the kata whose file you saved last) whenever a file in katas/ is saved.
    Saving while the tests run cancels that run and starts again. Ctrl-C stops."""
    from tfkata.cli import watching

    app.need_pytest()
    pinned = kata is not None
    if kata is None:
        kata = watching.working_on(app.store)
        if kata is None:
            app.out.print("Every available kata is done; name one to watch it: kata watch k01")
            return
    else:
        app.available_or_fail(kata)
    watching.watch(app, kata, pinned=pinned, once=once, timeout=timeout,
                   show=lambda row: app.report(row, max_lines=app.screen_lines(), figures=False))


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
    if not yes and target.exists() and not click.confirm(
        f"Replace {kata.path('katas')} with the pristine stub? (your file is backed up first)"
    ):
        app.out.print("Nothing changed.")
        return
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
            app.fail(f"{kata.id}: {app.store.rel(path)} does not exist" + (f" (kata reset {kata.id} restores it)" if path == mine else ""))
    if not force:
        row = progress(app.store, kata)
        if row.results is None:
            app.fail(f"refusing: {kata.id} has no recorded run yet; pass its tests first (kata run {kata.id}) or use --force.")
        if not row.done:
            app.fail(f"refusing: {kata.id}'s last run is not all green ({row.earned}/{row.possible} points); "
                     f"pass its tests first (kata run {kata.id}) or use --force.")
    app.warn_pending()
    mine_text = mine.read_text(encoding="utf-8")
    header = HEADER.format(id=kata.id, module=kata.module, test_file=kata.test_file)
    if mine_text.startswith(header):
        mine_text = mine_text[len(header):]
    lines = render.diff_lines(mine_text, ref.read_text(encoding="utf-8"),
                              f"{kata.path('katas')} (yours)", f"{kata.path('solutions')} (reference)")
    if not lines:
        app.out.print(f"{kata.path('katas')} is identical to the reference solution.")
    for line in lines:
        app.out.print(line, soft_wrap=True)


@cli.command(short_help="The common mistakes of a kata, once it passes.")
@click.argument("kata", type=KATA)
@pass_app
def mistakes(app: App, kata: registry.Kata):
    """Once KATA passes: its catalogued common mistakes and what the tests say to each. Each runs
    against a temporary copy of the reference (a few seconds each, the first time)."""
    from tfkata import mistakes as catalogue
    from tfkata.cli.lessons import lessons

    entries = catalogue.load(kata.id)
    if not entries:
        app.out.print(f"{kata.id} has no catalogued mistakes yet.")
        return
    if not progress(app.store, kata).done:
        app.out.print(f"{kata.id} has {len(entries)} catalogued common mistakes; finish the kata "
                      f"(kata run {kata.id}) to see them and what the tests say to each.")
        return
    app.need_pytest()
    if app.out.is_terminal:
        with app.out.status(f"running {len(entries)} mistakes against the reference ...", spinner="dots"):
            rows = lessons(app.store, kata)
    else:
        rows = lessons(app.store, kata)
    app.out.print(Text(f"{kata.id} · {kata.title}: {len(rows)} common mistakes and what the tests say", style="bold"))
    for row in rows:
        app.out.print(Text(f"• {row['function']}: {row['what']}", style="bold"))
        if row["status"] == "caught":
            first = (row["message"] or "").splitlines()[0] if row["message"] else ""
            app.out.print(Text(f"  {row['test_name']}: {first}"))
        elif row["status"] == "skipped":
            app.out.print(Text("  only a training run shows it (the accuracy or perplexity stays low)", style="dim"))
        else:
            app.out.print(Text(f"  ({row['status']}: {row['error'] or 'no test failed'})", style="yellow"))


from tfkata.cli import contributors, teaching  # noqa: E402  (register `kata solutions|dev|grade`)

contributors.register(cli)
teaching.register(cli)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="kata")


if __name__ == "__main__":
    main()
