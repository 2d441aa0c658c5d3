"""The contributors' commands of ``kata``: ``kata solutions`` and ``kata dev check|mistakes``
(the checks themselves are in :mod:`tfkata.cli.checks`)."""
from __future__ import annotations

import subprocess
import sys

import click
from rich.text import Text

from tfkata import registry
from tfkata.cli import runner
from tfkata.cli.app import App, pass_app


def register(cli: click.Group) -> None:
    cli.add_command(solutions)
    cli.add_command(dev)


@click.command(short_help="Run the suite against solutions/ (contributors).",
             context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
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
    app.need_pytest()
    app.out.print(Text("$ " + " ".join(["pytest", "--solutions", *files, *extra]), style="dim"))
    sys.exit(subprocess.call([sys.executable, "-m", "pytest", "--solutions", *files, *extra],
                             cwd=app.root, env=runner.pytest_env()))


@click.group()
def dev():
    """Contributors' checks (CI runs them)."""


@dev.command(name="check")
@click.option("--static", "static_only", is_flag=True, help="Only the checks that need no TensorFlow (steps 1-4).")
@click.option("--solutions-json", type=click.Path(dir_okay=False), default=None,
              help="Reuse the results of a `pytest --solutions --results-json` run instead of running it again.")
@pass_app
def dev_check(app: App, static_only: bool, solutions_json: str | None):
    """katas/ generated from solutions/, registry hints, test coverage, mistake catalogues, every stub
    TODO, every solution passing. Exit 1 with the list of problems."""
    from tfkata.cli import checks
    from tfkata.results import ResultsError, Run

    steps = [("static checks (stubs, registry, covers, catalogues)", lambda: checks.static_problems(app.root))]
    if not static_only:
        steps.append(("pytest against katas/ (every graded test TODO or waiting)",
                      lambda: checks.stub_problems(*reversed(checks.pytest_run(app.root)))))
        if solutions_json:
            def reuse():
                try:
                    return checks.solution_problems(Run.load(solutions_json), 0)
                except ResultsError as exc:
                    return [f"{solutions_json}: {exc}"]
            steps.append((f"pytest --solutions (from {solutions_json})", reuse))
        else:
            steps.append(("pytest --solutions (every test passes)",
                          lambda: checks.solution_problems(*reversed(checks.pytest_run(app.root, "--solutions")))))
    bad = 0
    for title, step in steps:
        problems = step()
        bad += len(problems)
        mark = Text("ok  ", style="green") if not problems else Text("FAIL", style="bold red")
        app.out.print(Text.assemble(mark, f" {title}"))
        for p in problems:
            app.out.print(Text(f"     {p}"))
    app.out.print(f"dev check: {bad} problem{'s' if bad != 1 else ''}")
    sys.exit(1 if bad else 0)


@dev.command(name="mistakes", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dev_mistakes(args: tuple[str, ...]):
    """Prove every catalogued mistake is caught: python -m tfkata.mistakes ARGS (kata ids, --runslow, --id)."""
    from tfkata.mistakes.__main__ import main as run_mistakes

    sys.exit(run_mistakes(list(args)))
