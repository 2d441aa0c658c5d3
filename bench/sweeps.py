"""Mechanical mutation sweeps over every public kata function (stop 32 of issue 19).

Writes a scratch catalogue of mutants into a SCRATCH CLONE's tfkata/mistakes/ (never this checkout's), to be run
with the mistakes runner against that clone:

    git clone -q . /tmp/sweep && python bench/sweeps.py defaults /tmp/sweep    # 208 mutants (stop 32)
    cd /tmp/sweep && python -m tfkata.mistakes --root /tmp/sweep --view solutions --jobs 2 --json /tmp/sweep.json

(run the runner from inside the clone: it reads the catalogue of the checkout around the current folder).

``defaults``: for every defaulted parameter, the function with ``param = <default>`` as its first statement (the
argument ignored). A MISSED mutant is an argument no test sets to another value.
``dtypes``: for every function whose docstring names a dtype, every ``return X`` becomes ``return _widen(X)``
(numpy and tensor float32 -> float64, int32 -> int64, through tuples, lists and dicts). A MISSED mutant either
returns nothing to widen (a model, a function, variables: read its docstring) or a dtype no test checks.
"""
import argparse
import ast
import json
import re
from pathlib import Path

WIDEN = '''
def _widen(v):
    import numpy as _np
    import tensorflow as _tf
    if isinstance(v, _np.ndarray) and v.dtype == _np.float32:
        return v.astype(_np.float64)
    if isinstance(v, _np.ndarray) and v.dtype == _np.int32:
        return v.astype(_np.int64)
    if isinstance(v, _np.float32):
        return _np.float64(v)
    if _tf.is_tensor(v) and not isinstance(v, _tf.Variable) and v.dtype == _tf.float32:
        return _tf.cast(v, _tf.float64)
    if _tf.is_tensor(v) and not isinstance(v, _tf.Variable) and v.dtype == _tf.int32:
        return _tf.cast(v, _tf.int64)
    if isinstance(v, tuple) and not hasattr(v, "_fields"):
        return tuple(_widen(x) for x in v)
    if isinstance(v, list):
        return [_widen(x) for x in v]
    if isinstance(v, dict):
        return {k: _widen(x) for k, x in v.items()}
    return v
'''


class _WidenReturns(ast.NodeTransformer):
    """``return X`` -> ``return _widen(X)`` in the function itself (not in the functions it defines)."""

    def __init__(self):
        self.depth, self.count = 0, 0

    def visit_FunctionDef(self, node):
        self.depth += 1
        if self.depth == 1:
            self.generic_visit(node)
        self.depth -= 1
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        return node

    def visit_Return(self, node):
        if node.value is not None:
            self.count += 1
            node.value = ast.Call(func=ast.Name("_widen", ast.Load()), args=[node.value], keywords=[])
        return node


def _first_statement(node):
    body = node.body
    first = body[1] if isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) else body[0]
    return min([first.lineno] + [d.lineno for d in getattr(first, "decorator_list", [])])


def defaults(kata_file: Path) -> list[dict]:
    source = kata_file.read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    out = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        args = node.args
        positional = args.posonlyargs + args.args
        pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        for arg, default in pairs:
            at = _first_statement(node)
            head = lines[at - 1]
            indent = head[: len(head) - len(head.lstrip())]
            code = "".join(lines[node.lineno - 1: at - 1] + [f"{indent}{arg.arg} = {ast.unparse(default)}\n"]
                           + lines[at - 1: node.end_lineno])
            out.append({"id": f"{node.name}-ignores-{arg.arg}".replace("_", "-"), "function": node.name,
                        "what": f"{node.name} ignores {arg.arg} (always {ast.unparse(default)})", "code": code})
    return out


def dtypes(kata_file: Path) -> list[dict]:
    source = kata_file.read_text(encoding="utf-8")
    helper = ast.parse(WIDEN).body[0]
    out = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        if not re.search(r"float32|int32|int64|float64", ast.get_docstring(node) or ""):
            continue
        copy = ast.parse(ast.get_source_segment(source, node)).body[0]
        widen = _WidenReturns()
        copy = widen.visit(copy)
        if not widen.count:
            continue
        first = 1 if isinstance(copy.body[0], ast.Expr) and isinstance(getattr(copy.body[0], "value", None), ast.Constant) else 0
        copy.body.insert(first, helper)
        copy.decorator_list = []  # the runner keeps the original decorators
        out.append({"id": f"widened-{node.name}".replace("_", "-"), "function": node.name,
                    "what": f"{node.name} returns float64/int64 where it made float32/int32",
                    "code": ast.unparse(copy) + "\n"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", choices=("defaults", "dtypes"))
    parser.add_argument("clone", type=Path, help="a scratch clone: its tfkata/mistakes/*.toml are overwritten")
    args = parser.parse_args()
    if (args.clone / "tfkata" / "mistakes").resolve() == (Path(__file__).resolve().parents[1] / "tfkata" / "mistakes"):
        raise SystemExit("sweeps: give a scratch clone, not this checkout (its catalogue would be overwritten)")
    make = defaults if args.sweep == "defaults" else dtypes
    for kata_file in sorted((args.clone / "solutions").glob("[kn][0-9][0-9]_*.py")):
        entries = make(kata_file)
        text = []
        for e in entries:
            text += ["[[mistake]]"] + [f"{k} = {json.dumps(e[k])}" for k in ("id", "function", "what")]
            text += [f"expect = {json.dumps([e['function']])}", "code = '''\n" + e["code"] + "'''\n"]
        (args.clone / "tfkata" / "mistakes" / f"{kata_file.stem[:3]}.toml").write_text("\n".join(text), encoding="utf-8")
        print(f"{kata_file.stem[:3]}: {len(entries)} mutants")


if __name__ == "__main__":
    main()
