"""Reading kata and solution files without importing them (no TensorFlow needed): the ONE ``ast`` scanner.

Used by the stub generator (:mod:`tfkata.stubs`), the learner's progress (which functions are still
stubs), the contributors' check and the repository tests (same public API in katas/ and solutions/).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Function:
    """A top-level function, a class, or a method (``Class.method``) of a module."""

    name: str  # ``f``, ``Class`` or ``Class.method``
    kind: str  # function | class | method
    line: int  # the ``def``/``class`` line (1-based)
    first: int  # the first line including decorators
    end: int  # the last line
    body_start: int  # the first line after the docstring (or the first body line)
    body_indent: int  # column of the body's statements
    signature: str | None  # ``ast.unparse(args)`` for functions and methods
    docstring: str | None
    is_stub: bool  # the body is only ``raise NotImplementedError(...)``
    public: bool  # no leading underscore (``__init__`` counts as public)

    @property
    def top(self) -> str:
        """The top-level name (``Class`` for ``Class.method``): the registry's hint key."""
        return self.name.split(".")[0]


def _has_docstring(body) -> bool:
    return bool(body) and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
        and isinstance(body[0].value.value, str)


def _is_stub(node) -> bool:
    body = list(node.body)
    if _has_docstring(body):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def _function(node, name: str, kind: str) -> Function:
    body = node.body
    has_doc = _has_docstring(body)
    if has_doc:
        body_start = body[0].end_lineno + 1
        first_stmt = body[1] if len(body) > 1 else None
    else:
        body_start, first_stmt = body[0].lineno, body[0]
    indent = (first_stmt or body[0]).col_offset
    short = name.rsplit(".", 1)[-1]
    return Function(
        name=name,
        kind=kind,
        line=node.lineno,
        first=min([d.lineno for d in node.decorator_list] + [node.lineno]),
        end=node.end_lineno,
        body_start=body_start,
        body_indent=indent,
        signature=ast.unparse(node.args) if kind != "class" else None,
        docstring=ast.get_docstring(node),
        is_stub=kind != "class" and _is_stub(node),
        public=not short.startswith("_") or short == "__init__",
    )


def scan(source: str) -> list[Function]:
    """Every top-level function and class and every method, in file order."""
    out = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append(_function(node, node.name, "function"))
        elif isinstance(node, ast.ClassDef):
            out.append(_function(node, node.name, "class"))
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    out.append(_function(sub, f"{node.name}.{sub.name}", "method"))
    return out


def changed(old: str, new: str) -> list[str]:
    """The top-level functions and classes of ``new`` whose text differs from ``old``'s (or that are new),
    in file order; every one when ``old`` does not parse, none when ``new`` does not."""
    def texts(source: str) -> dict[str, str]:
        lines = source.splitlines()
        try:
            return {f.name: "\n".join(lines[f.first - 1:f.end]) for f in scan(source) if f.kind != "method"}
        except (SyntaxError, ValueError):
            return {}

    before = texts(old)
    return [name for name, text in texts(new).items() if before.get(name) != text]


def callees(source: str) -> dict[str, set[str]]:
    """For each top-level function and class of ``source``, the other top-level functions and classes it
    reaches through its body's calls and names, transitively (``build_training_model`` -> ``lstm_cell``);
    ``{}`` when ``source`` does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    tops = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    direct = {name: {m.id for m in ast.walk(node) if isinstance(m, ast.Name) and m.id in tops and m.id != name}
              for name, node in tops.items()}
    reach: dict[str, set[str]] = {}
    for name in tops:
        seen, todo = set(), list(direct[name])
        while todo:
            n = todo.pop()
            if n not in seen and n != name:
                seen.add(n)
                todo.extend(direct[n])
        reach[name] = seen
    return reach


def scan_file(path: str | Path) -> list[Function]:
    """:func:`scan` of a file; an unreadable or unparsable file gives an empty list."""
    try:
        return scan(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return []


def public_names(path: str | Path) -> list[str]:
    """The public top-level functions and classes: what the registry gives hints for, in file order."""
    return [f.name for f in scan_file(path) if f.kind in ("function", "class") and f.public]


def public_api(path: str | Path) -> dict[str, tuple[str | None, str | None]]:
    """name -> (signature, docstring) for public functions, classes and public methods (``__init__`` too)."""
    out = {}
    for f in scan_file(path):
        if not f.public or (f.kind == "method" and not _public_class(f)):
            continue
        out[f.name] = ("class" if f.kind == "class" else f.signature, f.docstring)
    return out


def _public_class(f: Function) -> bool:
    return not f.top.startswith("_")


def stub_functions(path: str | Path) -> list[Function]:
    """Functions and methods whose body is still the stub's ``raise NotImplementedError``, in file order."""
    return [f for f in scan_file(path) if f.is_stub]


def _mark_name(dec) -> str | None:
    """``covers`` for ``@pytest.mark.covers(...)``, ``training`` for ``@pytest.mark.training``."""
    target = dec.func if isinstance(dec, ast.Call) else dec
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute) and target.value.attr == "mark":
        return target.attr
    return None


@dataclass(frozen=True)
class TestDecl:
    """What a test function declares with its markers."""

    name: str
    line: int
    covers: tuple[str, ...]
    training: bool
    needs: tuple[str, ...]

    __test__ = False


def _strings(node, names: dict) -> list[str] | None:
    """The strings a marker argument stands for: a string, a module-level tuple of strings named or
    starred (``covers(*MODEL)``), or a sum of those; None when it cannot be read statically."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Starred):
        return _strings(node.value, names)
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, (ast.Tuple, ast.List)):
        parts = [_strings(e, names) for e in node.elts]
        return None if any(p is None for p in parts) else [x for p in parts for x in p]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _strings(node.left, names), _strings(node.right, names)
        return None if left is None or right is None else left + right
    return None


def test_declarations(path: str | Path) -> list[TestDecl]:
    """Every ``test_*`` function of a test file with its ``covers``/``training``/``needs`` markers
    (arguments may be strings or module-level tuples of strings: ``covers(*MODEL, "train")``)."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return []
    names: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = _strings(node.value, names)
            if value is not None:
                names[node.targets[0].id] = value
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or not node.name.startswith("test"):
            continue
        covers, needs, training = [], [], False
        for dec in node.decorator_list:
            mark = _mark_name(dec)
            args = [x for a in getattr(dec, "args", []) for x in (_strings(a, names) or [])]
            if mark == "covers":
                covers.extend(args)
            elif mark == "needs":
                needs.extend(args)
            elif mark == "training":
                training = True
        out.append(TestDecl(node.name, node.lineno, tuple(covers), training, tuple(needs)))
    return out


test_declarations.__test__ = False  # not a pytest test
