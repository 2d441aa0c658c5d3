"""Make a kata's stub file from its solution, so the two can never drift apart.

``katas/<module>.py`` is ``solutions/<module>.py`` with every public function and method body
replaced by ``raise NotImplementedError("kNN: <name>")`` (signature and docstring kept) and every
private top-level function (``_helper``) removed. Imports, constants and comments stay.

    python -m tfkata.stubs k04          # rewrite katas/k04_cnn_mnist.py from its solution
    python -m tfkata.stubs --check      # exit 1 if any committed stub differs (CI runs this)

``kata reset K`` uses the same function to restore a learner's file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tfkata import registry
from tfkata.source import scan

HEADER = (
    "# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run\n"
    "#   kata run {id}        (or: pytest {test_file})\n"
    "# Generated from solutions/{module}.py by `python -m tfkata.stubs {id}`; `kata reset {id}` restores it.\n"
)


def make_stub(source: str, kata: registry.Kata) -> str:
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, list[str]]] = []
    for f in scan(source):
        if f.kind == "function" and not f.public:
            end = f.end
            while end < len(lines) and not lines[end].strip():  # also drop the blank lines that followed it
                end += 1
            edits.append((f.first, end, []))
        elif f.kind == "function" or (f.kind == "method" and not f.top.startswith("_")):
            stub = f'{" " * f.body_indent}raise NotImplementedError("{kata.id}: {f.name}")\n'
            edits.append((f.body_start, f.end, [stub]))
    for start, end, new in sorted(edits, reverse=True):
        lines[start - 1 : end] = new
    return HEADER.format(id=kata.id, module=kata.module, test_file=kata.test_file) + "".join(lines)


def stub_for(kata: registry.Kata, root: Path) -> str:
    return make_stub((root / kata.path("solutions")).read_text(encoding="utf-8"), kata)


def main(argv: list[str] | None = None) -> int:
    from tfkata.paths import repo_root

    parser = argparse.ArgumentParser(prog="python -m tfkata.stubs", description=__doc__.splitlines()[0])
    parser.add_argument("katas", nargs="*", help="kata ids/aliases (default: every kata with a solution)")
    parser.add_argument("--check", action="store_true", help="only report stubs that differ; exit 1 if any")
    args = parser.parse_args(argv)
    root = repo_root()
    chosen = [registry.get(k) for k in args.katas] if args.katas else list(registry.katas())
    differ = []
    for kata in chosen:
        if not (root / kata.path("solutions")).exists():
            continue
        text = stub_for(kata, root)
        path = root / kata.path("katas")
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                differ.append(kata.path("katas"))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {kata.path('katas')}")
    if differ:
        print("stubs out of date (run: python -m tfkata.stubs): " + ", ".join(differ))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
