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
``inplace``: for every function with arguments, every ``return X`` (and the end of the body) first computes X,
then writes into every numpy array and list among the arguments (also inside tuples, lists and dicts). With
``SWEEP_SPOILED=<file>`` set for the runner, each mutant that really wrote into something appends its function's
name there: a MISSED mutant not named there was given no array or list by any test.
``numbers``: for every function whose docstring says "Python float" or "Python int", every ``return X`` becomes
``return _numpy_numbers(X)`` (Python floats -> numpy float32, ints -> numpy int64, through tuples, lists and
dicts). A MISSED mutant returns those numbers where no test checks their type.
``noreturn``: for every function that returns a value, every ``return X`` still computes X (and whatever doing so
does: files written, variables created, ops built) but returns None. A MISSED mutant is a function whose result
no test reads: its side effects alone earned the points (k04 ``save_report``'s path, stop 35).
``finally``: for every function with a ``try: ... finally: ...``, the same without it: what the ``finally`` did
runs only when nothing raised (writers or sessions left open on an error). A MISSED mutant is one whose
clean-up on error no test checks.
``operators``: classic mutation operators, one mutant per place in a public function (nested functions included):
``reduce_mean``/``reduce_sum`` (and numpy's ``mean``/``sum``), ``argmax``/``argmin``, ``sigmoid``/``tanh``,
``softmax``/``log_softmax``, ``maximum``/``minimum``, ``relu`` -> ``elu``; an ``axis=`` constant moved (0 -> -1, else
-> 0); a constant index -1 <-> 0; ``<`` <-> ``<=``, ``>`` <-> ``>=``; a keyword's True <-> False; ``x + 1`` and
``x - 1`` -> ``x``. A MISSED mutant is either equivalent (``axis=-1`` of a 2-D tensor is ``axis=1``: read it) or a
change no test sees.
``twice``: state kept across calls (round Z8's class: a graph, a config or a result kept in a module global), two
mutants per public top-level function: ``first`` returns the first call's result on every later call, whatever
the arguments; ``same`` returns an earlier result when called again with the very same argument objects (doing
nothing the second time: no new graph, cell or optimizer, no training step). A MISSED ``first`` is a function no
test calls twice with different arguments; a MISSED ``same`` is either equivalent (a pure function: the same
inputs give the same result) or a function whose fresh object or repeated effect no test checks: read it.
"""
import argparse
import copy as _copy
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


SCRIBBLE = '''
def _scribble(result, given):
    import numpy as _np
    def spoil(v, depth=0):
        if isinstance(v, _np.ndarray) and v.size and v.flags.writeable and v.dtype != object:
            flat = v.reshape(-1) if v.flags.c_contiguous else None
            if flat is not None:
                flat[0] = (not flat[0]) if v.dtype == bool else flat[0] + 1
        elif isinstance(v, list) and depth < 3:
            for x in v:
                spoil(x, depth + 1)
            v.append(v[0] if v else 0)
        elif isinstance(v, (tuple, list)) and depth < 3:
            for x in v:
                spoil(x, depth + 1)
        elif isinstance(v, dict) and depth < 3:
            for x in list(v.values()):
                spoil(x, depth + 1)
    import os as _os
    before = repr(given)
    for v in given:
        spoil(v)
    if repr(given) != before and _os.environ.get("SWEEP_SPOILED"):  # something was written to: note whose
        with open(_os.environ["SWEEP_SPOILED"], "a") as _f:
            _f.write(_scribble.__qualname__.split(".")[0] + "\\n")
    return result
'''

NUMBERS = '''
def _numpy_numbers(v):
    import numpy as _np
    if type(v) is float:
        return _np.float32(v)
    if type(v) is int:
        return _np.int64(v)
    if isinstance(v, tuple) and not hasattr(v, "_fields"):
        return tuple(_numpy_numbers(x) for x in v)
    if isinstance(v, list):
        return [_numpy_numbers(x) for x in v]
    if isinstance(v, dict):
        return {k: _numpy_numbers(x) for k, x in v.items()}
    return v
'''

DROP = '''
def _dropped(v):
    return None
'''


class _WidenReturns(ast.NodeTransformer):
    """``return X`` -> ``return <helper>(X, *extra)`` in the function itself (not in the functions it defines)."""

    def __init__(self, helper: str = "_widen", extra: tuple = ()):
        self.depth, self.count = 0, 0
        self.helper, self.extra = helper, extra

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
            node.value = ast.Call(func=ast.Name(self.helper, ast.Load()),
                                  args=[node.value] + [ast.Name(n, ast.Load()) for n in self.extra], keywords=[])
        elif self.extra:
            self.count += 1
            node.value = ast.Call(func=ast.Name(self.helper, ast.Load()),
                                  args=[ast.Constant(None)] + [ast.Name(n, ast.Load()) for n in self.extra],
                                  keywords=[])
        return node


def _after_docstring(node) -> int:
    """Where a function's body starts after its docstring (0 when it has none)."""
    first = node.body[0]
    return 1 if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) else 0


def _first_statement(node):
    first = node.body[_after_docstring(node)]
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


def _rewritten_returns(kata_file: Path, helper_source: str, helper: str, wanted, prefix: str, what: str,
                       pass_args: bool = False) -> list[dict]:
    """One mutant per public function that ``wanted(node)`` accepts: its returns go through ``helper``."""
    source = kata_file.read_text(encoding="utf-8")
    helper_def = ast.parse(helper_source).body[0]
    out = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_") or not wanted(node):
            continue
        given = [x.arg for x in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
        if pass_args and not given:
            continue
        # with pass_args, the helper gets the arguments as given (captured first: a parameter the function rebinds
        # is still the caller's object), at every return and at the end of the body
        names = ("_sweep_given",) if pass_args else ()
        copy = ast.parse(ast.get_source_segment(source, node)).body[0]
        rewrite = _WidenReturns(helper, names)
        copy = rewrite.visit(copy)
        if pass_args:
            copy.body.insert(_after_docstring(copy), ast.parse(f"_sweep_given = ({', '.join(given)},)").body[0])
            rewrite.count += 1
            copy.body.append(ast.Expr(ast.Call(func=ast.Name(helper, ast.Load()),
                                               args=[ast.Constant(None), ast.Name(names[0], ast.Load())],
                                               keywords=[])))
        if not rewrite.count:
            continue
        copy.body.insert(_after_docstring(copy), helper_def)
        copy.decorator_list = []  # the runner keeps the original decorators
        out.append({"id": f"{prefix}-{node.name}".replace("_", "-"), "function": node.name,
                    "what": f"{node.name} {what}", "code": ast.unparse(copy) + "\n"})
    return out


def dtypes(kata_file: Path) -> list[dict]:
    return _rewritten_returns(
        kata_file, WIDEN, "_widen",
        lambda node: re.search(r"float32|int32|int64|float64", ast.get_docstring(node) or ""),
        "widened", "returns float64/int64 where it made float32/int32")


def inplace(kata_file: Path) -> list[dict]:
    return _rewritten_returns(kata_file, SCRIBBLE, "_scribble", lambda node: True, "changes-inputs",
                              "writes into the arrays and lists it was given, after computing its result",
                              pass_args=True)


def numbers(kata_file: Path) -> list[dict]:
    return _rewritten_returns(
        kata_file, NUMBERS, "_numpy_numbers",
        lambda node: re.search(r"Python (float|int)", " ".join((ast.get_docstring(node) or "").split())),
        "numpy-numbers", "returns numpy numbers where the docstring says Python floats or ints")


def noreturn(kata_file: Path) -> list[dict]:
    return _rewritten_returns(kata_file, DROP, "_dropped", lambda node: True, "returns-none",
                              "computes its result and returns None instead")


class _DropFinally(ast.NodeTransformer):
    def __init__(self):
        self.count = 0

    def visit_Try(self, node):
        self.generic_visit(node)
        if not node.finalbody:
            return node
        self.count += 1
        kept = node.body if not node.handlers and not node.orelse else [
            ast.Try(body=node.body, handlers=node.handlers, orelse=node.orelse, finalbody=[])]
        return kept + node.finalbody


def _public_copies(kata_file: Path):
    """(name, a fresh AST copy without decorators) of each public top-level function of the file."""
    source = kata_file.read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            copy = ast.parse(ast.get_source_segment(source, node)).body[0]
            copy.decorator_list = []  # the runner keeps the original decorators
            yield node.name, copy


def on_error(kata_file: Path) -> list[dict]:
    out = []
    for name, copy in _public_copies(kata_file):
        drop = _DropFinally()
        copy = drop.visit(copy)
        if not drop.count:
            continue
        out.append({"id": f"no-finally-{name}".replace("_", "-"), "function": name,
                    "what": f"{name} cleans up only when nothing raised (its finally removed)",
                    "code": ast.unparse(ast.fix_missing_locations(copy)) + "\n"})
    return out


SWAPS = {"reduce_mean": "reduce_sum", "reduce_sum": "reduce_mean", "mean": "sum", "sum": "mean", "argmax": "argmin",
         "argmin": "argmax", "sigmoid": "tanh", "tanh": "sigmoid", "softmax": "log_softmax",
         "log_softmax": "softmax", "maximum": "minimum", "minimum": "maximum", "relu": "elu"}
COMPARES = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}


def _mutations(node):
    """(description, apply) for each classic mutation of this one node; apply changes the node in place."""
    out = []
    if isinstance(node, ast.Attribute) and node.attr in SWAPS:
        def swap(n, new=SWAPS[node.attr]):
            n.attr = new
        out.append((f"{node.attr} -> {SWAPS[node.attr]}", swap))
    if isinstance(node, ast.keyword) and node.arg == "axis" and isinstance(node.value, ast.Constant) \
            and isinstance(node.value.value, int) and not isinstance(node.value.value, bool):
        new = -1 if node.value.value == 0 else 0
        def move(n, new=new):
            n.value = ast.Constant(new)
        out.append((f"axis={node.value.value} -> axis={new}", move))
    if isinstance(node, ast.keyword) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, bool):
        def flip(n):
            n.value = ast.Constant(not n.value.value)
        out.append((f"{node.arg}={node.value.value} -> {not node.value.value}", flip))
    if isinstance(node, ast.Subscript):
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        for i, part in enumerate(parts):
            value = part.value if isinstance(part, ast.Constant) else (
                -part.operand.value if isinstance(part, ast.UnaryOp) and isinstance(part.op, ast.USub)
                and isinstance(part.operand, ast.Constant) else None)
            if value in (0, -1) and not isinstance(value, bool):
                new = 0 if value == -1 else -1
                def index(n, i=i, new=new):
                    c = ast.Constant(new) if new >= 0 else ast.UnaryOp(ast.USub(), ast.Constant(-new))
                    if isinstance(n.slice, ast.Tuple):
                        n.slice.elts[i] = c
                    else:
                        n.slice = c
                out.append((f"index {value} -> {new} in {ast.unparse(node)[:60]}", index))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in COMPARES:
        def bound(n):
            n.ops = [COMPARES[type(n.ops[0])]()]
        out.append((f"{ast.unparse(node)[:60]}: {type(node.ops[0]).__name__} -> {COMPARES[type(node.ops[0])].__name__}",
                    bound))
    return out


class _OffByOne(ast.NodeTransformer):
    """``x + 1`` / ``x - 1`` (the ``target``-th such BinOp in walk order) -> ``x``."""

    def __init__(self, target):
        self.target, self.seen, self.done = target, -1, None

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, (ast.Add, ast.Sub)) and isinstance(node.right, ast.Constant) and node.right.value == 1:
            self.seen += 1
            if self.seen == self.target:
                self.done = ast.unparse(node)[:60]
                return node.left
        return node


def operators(kata_file: Path) -> list[dict]:
    out = []
    for name, original in _public_copies(kata_file):
        before = ast.unparse(original)
        count = 0
        for position, target in enumerate(ast.walk(original)):
            for k, (desc, _) in enumerate(_mutations(target)):
                mutant = _copy.deepcopy(original)
                place = list(ast.walk(mutant))[position]
                _mutations(place)[k][1](place)
                code = ast.unparse(ast.fix_missing_locations(mutant))
                if code == before:
                    continue
                count += 1
                out.append({"id": f"op-{name}-{count}".replace("_", "-"), "function": name,
                            "what": f"{name}: {desc}", "code": code + "\n"})
        k = 0
        while True:
            mutant = _copy.deepcopy(original)
            rewrite = _OffByOne(k)
            mutant = rewrite.visit(mutant)
            if rewrite.done is None:
                break
            count += 1
            k += 1
            out.append({"id": f"op-{name}-{count}".replace("_", "-"), "function": name,
                        "what": f"{name}: {rewrite.done} -> without the 1",
                        "code": ast.unparse(ast.fix_missing_locations(mutant)) + "\n"})
    return out


TWICE = {
    "first": ("returns its first call's result on every later call, whatever the arguments", """
_sweep_memo = globals().setdefault('_sweep_first_results', {})
if NAME not in _sweep_memo:
    _sweep_memo[NAME] = _sweep_original(CALL)
return _sweep_memo[NAME]
"""),
    "same": ("returns an earlier result when called again with the same argument objects (does nothing the "
             "second time)", """
_sweep_memo = globals().setdefault('_sweep_same_args', {})
_sweep_given = (GIVEN,)
_sweep_key = (NAME,) + tuple(id(v) for v in _sweep_given)  # the arguments are kept alive: no id is reused
if _sweep_key not in _sweep_memo:
    _sweep_memo[_sweep_key] = (_sweep_given, _sweep_original(CALL))
return _sweep_memo[_sweep_key][1]
"""),
}


def twice(kata_file: Path) -> list[dict]:
    out = []
    for name, copy in _public_copies(kata_file):
        a = copy.args
        call = [x.arg for x in a.posonlyargs + a.args] + ([f"*{a.vararg.arg}"] if a.vararg else []) \
            + [f"{x.arg}={x.arg}" for x in a.kwonlyargs] + ([f"**{a.kwarg.arg}"] if a.kwarg else [])
        given = [x.arg for x in a.posonlyargs + a.args] + ([a.vararg.arg] if a.vararg else []) \
            + [x.arg for x in a.kwonlyargs] + ([a.kwarg.arg] if a.kwarg else [])
        for kind, (what, template) in TWICE.items():
            if kind == "same" and not given:
                continue  # without arguments, "same" is "first"
            inner = _copy.deepcopy(copy)
            inner.name = "_sweep_original"
            wrapper = _copy.deepcopy(copy)
            body = template.replace("NAME", repr(name)).replace("CALL", ", ".join(call)) \
                .replace("GIVEN", ", ".join(given) or "None")
            wrapper.body = wrapper.body[:_after_docstring(wrapper)] + [inner] + ast.parse(body).body
            out.append({"id": f"twice-{kind}-{name}".replace("_", "-"), "function": name, "what": f"{name} {what}",
                        "code": ast.unparse(ast.fix_missing_locations(wrapper)) + "\n"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", choices=("defaults", "dtypes", "inplace", "numbers", "finally", "noreturn",
                                                 "operators", "twice"))
    parser.add_argument("clone", type=Path, help="a scratch clone: its tfkata/mistakes/*.toml are overwritten")
    args = parser.parse_args()
    if (args.clone / "tfkata" / "mistakes").resolve() == (Path(__file__).resolve().parents[1] / "tfkata" / "mistakes"):
        raise SystemExit("sweeps: give a scratch clone, not this checkout (its catalogue would be overwritten)")
    make = {"defaults": defaults, "dtypes": dtypes, "inplace": inplace, "numbers": numbers,
            "finally": on_error, "noreturn": noreturn, "operators": operators, "twice": twice}[args.sweep]
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
