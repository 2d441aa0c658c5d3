"""``python -m tfkata.mistakes [kNN ...] [--id ID] [--runslow] [--json PATH] [--check] [--jobs N]``

Applies each catalogued mistake to a temporary copy of the checkout, runs the kata's tests against
it, and prints one line per mistake (caught / MISSED / skipped / ERROR) and a summary. Exit status 1
when a mistake was missed or a run went wrong. ``--check`` only validates the catalogues and applies
every mistake to solutions/ (no tests run: a second or so).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tfkata import registry
from tfkata.mistakes import VIEWS, MistakeError, Outcome, check, load, load_all, run
from tfkata.mistakes.batch import run_many
from tfkata.paths import repo_root

WIDTH = 110


def line_for(o: Outcome) -> str:
    """``k04/conv-valid-padding  learner  caught  3.1 s  test_conv2d_same_padding: <message>``"""
    head = f"{o.mistake.key:<34} {o.view:<9} "
    if o.status == "skipped":
        return head + "skipped  (training mistake: run with --runslow)"
    label = {"caught": "caught", "missed": "MISSED", "error": "ERROR"}[o.status]
    head += f"{label:<7} {o.seconds:5.1f} s  "
    if o.status == "caught":
        first = o.first_line or "(no message)"
        if len(first) > WIDTH:
            first = first[: WIDTH - 3] + "..."
        where = " (training test)" if o.by_training else " (differential)" if o.by_differential else ""
        told = {True: "told", False: "MISTOLD", None: "no expect"}[o.told]
        wanted = f"  [expected to say: {', '.join(o.mistake.expect)}]" if o.told is False else ""
        if o.points_right is False:
            wanted += f"  [about {o.pointed or 'no function'}, not {o.mistake.about or o.mistake.function}]"
        return head + f"{told:<9} {o.test_name}{where}: {first}{wanted}"
    if o.status == "missed":
        return head + f"no test failed; {o.mistake.function}: {o.mistake.what}"
    return head + (o.error or "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfkata.mistakes", description=__doc__.split("\n\n")[1])
    parser.add_argument("katas", nargs="*", help="kata ids or aliases (default: every kata with a catalogue)")
    parser.add_argument("--id", action="append", default=[], metavar="ID", help="only this mistake (repeatable)")
    parser.add_argument("--runslow", action="store_true", help="also run the training mistakes (minutes each)")
    parser.add_argument("--json", metavar="PATH", help="write the outcomes to PATH as JSON")
    parser.add_argument("--check", action="store_true", help="validate and apply only; run no tests")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mistake (default 600)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="N worker processes (default 1)")
    parser.add_argument("--isolated", action="store_true",
                        help="a fresh pytest process per mistake instead of warm workers (slower)")
    parser.add_argument("--root", type=Path, default=None, help="the checkout (default: the one around cwd)")
    parser.add_argument("--view", choices=(*VIEWS, "both"), default="both",
                        help="solutions: the mistake in solutions/, pytest --solutions; learner: as the learner "
                             "sees it (the mistake in katas/, every other kata the reference, solutions/ "
                             "untouched, plain pytest); both (default)")
    args = parser.parse_args(argv)

    try:
        root = (args.root or repo_root()).resolve()
        if args.katas:
            mistakes = [m for key in args.katas for m in load(key)]
        else:
            mistakes = load_all()
    except (MistakeError, registry.UnknownKata, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.id:
        unknown = [i for i in args.id if not any(i in (m.id, m.key) for m in mistakes)]
        if unknown:
            print(f"error: no mistake {', '.join(unknown)} in the chosen catalogue(s)", file=sys.stderr)
            return 2
        mistakes = [m for m in mistakes if m.id in args.id or m.key in args.id]
    if not mistakes:
        print("no mistakes catalogued for the chosen katas (tfkata/mistakes/kNN.toml)")
        return 0

    if args.check:
        bad = 0
        for m in mistakes:
            try:
                check(m, root)
                print(f"{m.key:<34} ok       {m.function}: {m.what}")
            except MistakeError as exc:
                bad += 1
                print(f"{m.key:<34} ERROR    {exc}")
        print(f"{len(mistakes) - bad} apply cleanly, {bad} do not")
        return 1 if bad else 0

    views = VIEWS if args.view == "both" else (args.view,)
    started = time.monotonic()
    if args.isolated:  # a fresh pytest process per mistake: slower, nothing shared
        outcomes = []
        jobs = [(m, view) for m in mistakes for view in views]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for o in pool.map(lambda j: run(j[0], root, runslow=args.runslow, timeout=args.timeout, view=j[1]), jobs):
                outcomes.append(o)
                print(line_for(o), flush=True)
    else:  # warm worker processes, TensorFlow imported once each (tfkata/mistakes/batch.py)
        outcomes = run_many(mistakes, root, runslow=args.runslow, timeout=args.timeout, jobs=args.jobs,
                            report=lambda o: print(line_for(o), flush=True), views=views)
    # A mistake that only a differential check catches cannot be caught with --solutions (the check then
    # compares the reference with itself): it counts as caught when the learner view caught it there.
    learner_by_differential = {o.mistake.key for o in outcomes
                               if o.view == "learner" and o.status == "caught" and o.by_differential}
    for view in views:
        mine = [o for o in outcomes if o.view == view]
        count = {s: sum(o.status == s for o in mine) for s in ("caught", "missed", "skipped", "error")}
        covered = sum(o.status == "missed" and o.mistake.key in learner_by_differential for o in mine)
        print(f"{view}: {count['caught']} caught, {count['missed'] - covered} missed, {count['skipped']} skipped "
              f"(training)" + (f", {count['error']} errors" if count["error"] else "")
              + (f"; {covered} more caught only by a differential check (learner view)" if covered else ""))
    if "learner" in views:
        keys = sorted(learner_by_differential)
        print(f"caught only by a differential check (they need a concept message): {len(keys)}"
              + (f" ({', '.join(keys)})" if keys else ""))
    # What the learner is told is judged as the learner sees it (the learner view when it ran).
    judged = [o for o in outcomes if o.view == ("learner" if "learner" in views else views[0])]
    mistold = sorted(o.mistake.key for o in judged if o.told is False)
    no_expect = sum(o.told is None and o.caught for o in judged)
    print(f"told: {sum(o.told is True for o in judged)} right, {len(mistold)} MISTOLD"
          + (f" ({', '.join(mistold)})" if mistold else "") + f", {no_expect} caught with no 'expect' yet")
    # ... and so is the function it is about: "Stuck? kata hint K -f F" must send the learner to the mistake.
    elsewhere = sorted(f"{o.mistake.key} -> {o.pointed}" for o in judged if o.points_right is False)
    print(f"about the mistaken function ('Stuck?' names it): {sum(o.points_right is True for o in judged)}, "
          f"about ANOTHER: {len(elsewhere)}" + (f" ({', '.join(elsewhere)})" if elsewhere else ""))
    count = {s: sum(o.status == s for o in outcomes) for s in ("caught", "missed", "skipped", "error")}
    count["missed"] -= sum(o.status == "missed" and o.mistake.key in learner_by_differential for o in outcomes)
    summary = (f"{count['caught']} caught, {count['missed']} missed, {count['skipped']} skipped (training)"
               + (f", {count['error']} errors" if count["error"] else "")
               + f" in {time.monotonic() - started:.0f} s")
    print(summary)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": 2, "mistakes": [o.to_dict() for o in outcomes]}
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 1 if count["missed"] or count["error"] or mistold or elsewhere else 0


if __name__ == "__main__":
    sys.exit(main())
