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
import ast
import sys
from pathlib import Path

from tfkata import registry

HEADER = (
    "# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run\n"
    "#   kata run {id}        (or: pytest {test_file})\n"
    "# Generated from solutions/{module}.py by `python -m tfkata.stubs {id}`; `kata reset {id}` restores it.\n"
)


def _stub_body(node: ast.FunctionDef, lines: list[str], kata_id: str, qualname: str) -> tuple[int, int, list[str]]:
    """(first line to replace, last line, replacement) for one function, 1-based inclusive."""
    body = node.body
    has_doc = (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )
    start = (body[0].end_lineno + 1) if has_doc else body[0].lineno
    first = body[1] if has_doc and len(body) > 1 else (None if has_doc else body[0])
    indent = " " * (first.col_offset if first is not None else body[0].col_offset)
    stub = f'{indent}raise NotImplementedError("{kata_id}: {qualname}")\n'
    return start, node.end_lineno, [stub]


def make_stub(source: str, kata: registry.Kata) -> str:
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, list[str]]] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name.startswith("_"):
                first = min([d.lineno for d in node.decorator_list] + [node.lineno])
                end = node.end_lineno
                # also drop the blank lines that followed it
                while end < len(lines) and not lines[end].strip():
                    end += 1
                edits.append((first, end, []))
            else:
                edits.append(_stub_body(node, lines, kata.id, node.name))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    edits.append(_stub_body(sub, lines, kata.id, f"{node.name}.{sub.name}"))
    for start, end, new in sorted(edits, reverse=True):
        lines[start - 1 : end] = new
    text = "".join(lines)
    return HEADER.format(id=kata.id, module=kata.module, test_file=kata.test_file) + text


def stub_for(kata: registry.Kata, root: Path) -> str:
    return make_stub((root / kata.path("solutions")).read_text(encoding="utf-8"), kata)


def main(argv: list[str] | None = None) -> int:
    from tfkata.loader import repo_root

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
