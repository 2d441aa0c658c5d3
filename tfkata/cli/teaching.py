"""The teacher's command: ``kata grade SUBMISSION... --out DIR`` (the work is in :mod:`tfkata.grading`)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from tfkata import registry
from tfkata.paths import repo_root


def register(cli: click.Group) -> None:
    cli.add_command(grade)


@click.command(short_help="Grade a class: every submission against this checkout's tests.")
@click.argument("submissions", nargs=-1, required=False)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("grades"),
              show_default=True, help="Folder for grades.csv, summary.txt and one folder per student.")
@click.option("--katas", "kata_ids", default="", metavar="k01,n01", help="Only these katas (default: all).")
@click.option("--profile", type=click.Choice(["unit", "full"]), default="unit", show_default=True,
              help="unit: every test but the training runs; full: all of them.")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Submissions graded at once (default: cores).")
@click.option("--time-limit", type=float, default=1800.0, show_default=True, help="Seconds per submission.")
@click.option("--memory-mb", type=float, default=6144.0, show_default=True, help="Memory per submission (MB).")
@click.option("--gradescope-zip", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Instead of grading: build Gradescope's autograder zip at this path.")
def grade(submissions, out, kata_ids, profile, jobs, time_limit, memory_mb, gradescope_zip):
    """Grade every SUBMISSION (a folder or git repository holding katas/*.py, a git bundle, or a zip) against
    the pristine tests of this checkout, each in its own process and temporary copy, with a time and a
    memory limit. Only the kata files of a submission are taken. Writes OUT/grades.csv, a report per
    student and a summary; a re-run skips the submissions that did not change."""
    from tfkata.grading.classroom import grade_class
    from tfkata.grading.grader import Limits
    from tfkata.grading.submissions import SubmissionError

    root = repo_root()
    try:
        katas = [registry.get(k.strip()) for k in kata_ids.split(",") if k.strip()] or list(registry.katas())
    except registry.UnknownKata as exc:
        raise click.UsageError(str(exc)) from None
    if gradescope_zip is not None:
        from tfkata.grading.gradescope import build_zip

        build_zip(root, gradescope_zip, katas=[k.id for k in katas], profile=profile)
        click.echo(f"wrote {gradescope_zip}: upload it as the autograder (README: Teaching with tf-katas)")
        return
    if not submissions:
        raise click.UsageError("name the submissions to grade (folders, git bundles or zips), e.g. kata grade subs/*")
    limits = Limits(seconds=time_limit, memory_mb=memory_mb)
    try:
        results = grade_class(list(submissions), out, root, katas=katas, profile=profile,
                              jobs=jobs or os.cpu_count() or 1, limits=limits, log=click.echo)
    except SubmissionError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(0 if results else 1)
