"""The ``kata`` command's shared state: the checkout, the learner's store, the consoles, and how a
command runs a kata's tests and prints a report. Click commands live in ``tfkata/cli/__init__.py``."""
from __future__ import annotations

import time

import click
from rich.console import Console
from rich.text import Text

from tfkata import registry
from tfkata.cli import render, runner
from tfkata.paths import repo_root
from tfkata.progress import progress
from tfkata.store import Store


class App:
    def __init__(self):
        try:
            self.root = repo_root()
        except FileNotFoundError as exc:
            raise click.ClickException(str(exc)) from None
        self.store = Store(self.root)
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def warn_pending(self) -> None:
        while self.store.warnings:
            self.err.print(Text("warning: " + self.store.warnings.pop(0), style="bold yellow"))

    def fail(self, message: str, code: int = 1):
        self.warn_pending()
        self.err.print(Text(message, style="red"))
        raise SystemExit(code)

    def need_pytest(self) -> None:
        problem = runner.need_pytest()
        if problem:
            self.fail(problem)

    def available_or_fail(self, kata: registry.Kata):
        row = progress(self.store, kata)
        if not row.available:
            if not (self.root / kata.path("solutions")).exists() or not (self.root / kata.test_file).exists():
                self.fail(f"{kata.id} ({kata.title}) is not available in this checkout: {row.missing} does not exist.")
            self.fail(f"{kata.path('katas')} is missing: kata reset {kata.id} restores the stub "
                      f"(your earlier files are in .tfkata/backups/ if you reset before).")
        return row

    def show_hint(self, kata: registry.Kata, func: str, number: int, label: str = "Hint") -> None:
        self.out.print(render.hint_text(kata, func, number, label))
        self.store.mark_hint(kata.id, func, number)

    def report(self, row, **kwargs) -> None:
        render.report(self.out, self.root, row, show_hint=lambda f, n: self.show_hint(row.kata, f, n), **kwargs)

    def screen_lines(self) -> int | None:
        return max(self.out.height - 14, 10) if self.out.is_terminal else None

    def run(self, katas: list[registry.Kata], *, full: bool = False):
        """Run the katas' tests; the first failure is shown as soon as it happens, the report at the end."""
        self.need_pytest()
        names = ", ".join(k.id for k in katas)
        running = runner.start(self.store, katas, full=full)
        try:
            if self.out.is_terminal:
                with self.out.status(f"running the tests of {names} ...", spinner="dots"):
                    self._tell_first_failure(running)
            else:
                self._tell_first_failure(running)
            return running.finish(self.store)
        except runner.RunFailed as exc:
            self.fail(str(exc))
        except KeyboardInterrupt:
            running.cancel()
            raise

    def _tell_first_failure(self, running: runner.Running) -> None:
        """Wait for the run; print its first failure the moment the plugin reports it."""
        told = False
        while not running.done():
            if not told and (first := running.first_failure()):
                told = True
                render.early_failure(self.out, first)
            time.sleep(0.1)


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
