"""``kata watch``: re-run a kata whenever a file in katas/ is saved; a save during a run cancels it."""
from __future__ import annotations

import datetime as _dt
import time

from rich.text import Text

from tfkata import registry
from tfkata.cli import render, runner
from tfkata.progress import current, progress
from tfkata.store import Store


def working_on(store: Store) -> registry.Kata | None:
    """The kata the learner is on: the most recently saved kata file whose kata is not done, else the
    first unfinished kata."""
    best = None
    for kata in registry.katas():
        path = store.root / kata.path("katas")
        if not path.exists():
            continue
        row = progress(store, kata)
        if row.done and not row.stale:
            continue
        when = path.stat().st_mtime
        if best is None or when > best[0]:
            best = (when, kata)
    if best is not None:
        return best[1]
    row = current(store)
    return row.kata if row else None


def watch(app, kata: registry.Kata, *, pinned: bool, once: bool, timeout: float | None, show) -> None:
    """Loop until Ctrl-C (or ``once``/``timeout``). ``show(row)`` prints a finished run's report."""
    import watchfiles

    out, store = app.out, app.store
    deadline = time.monotonic() + timeout if timeout else None
    running: runner.Running | None = None
    from_save = False  # the run in progress was started by a saved file

    def begin(k: registry.Kata) -> runner.Running:
        if out.is_terminal:
            out.clear()
        out.print(Text(f"kata watch · {k.id} · {_dt.datetime.now().strftime('%H:%M:%S')} · running …", style="dim"))
        return runner.start(store, [k])

    row = progress(store, kata)
    if row.results is not None and not row.stale:
        out.print(Text(f"kata watch · {kata.id} · last run unchanged since", style="dim"))
        show(row)
    else:
        running = begin(kata)
    announced = told = False
    try:
        for changes in watchfiles.watch(store.root / "katas", watch_filter=watchfiles.PythonFilter(),
                                        yield_on_timeout=True, rust_timeout=300, raise_interrupt=False):
            if changes:
                chosen = kata
                if not pinned:
                    for _, path in sorted(changes, key=lambda c: c[1]):
                        changed = registry.for_source_file(path)
                        if changed is not None and progress(store, changed).available:
                            chosen = changed
                            break
                if running is not None and not running.done():
                    running.cancel()
                    out.print(Text("(file saved: the running tests were cancelled)", style="dim"))
                kata = chosen
                running = begin(kata)
                from_save = True
                announced = told = False
            elif running is not None and not running.done() and not told and (first := running.first_failure()):
                render.early_failure(out, first)
                told = True
            elif running is not None and running.done():
                try:
                    row = running.finish(store)[kata.id]
                except runner.RunFailed as exc:
                    out.print(Text(str(exc), style="red"))
                else:
                    show(row)
                    if row.done and not pinned:
                        nxt = current(store)
                        if nxt is not None:
                            out.print(Text(f"On to {nxt.kata.id} · {nxt.kata.title}: edit {nxt.kata.path('katas')}", style="bold"))
                            kata = nxt.kata
                running = None
                if once and from_save:
                    return
                announced = told = False
            if running is None and not announced:
                out.print(Text(f"watching katas/ · save a file to re-run {kata.id} · Ctrl-C to stop", style="dim"))
                announced = True
            if deadline is not None and time.monotonic() > deadline:
                out.print(Text(f"watch: stopped after {timeout:g} s", style="dim"))
                return
    except KeyboardInterrupt:
        out.print(Text("watch: stopped", style="dim"))
    finally:
        if running is not None:
            running.cancel()
