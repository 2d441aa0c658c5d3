"""What a teacher should look at in a submission, found by reading it (nothing is run):

* functions identical to the reference (``solutions/``), ignoring docstrings, comments and formatting;
* code that reaches for the harness rather than for TensorFlow: imports of the reference, of pytest or
  the harness, of modules that inspect or rewrite a running program (``gc``, ``inspect``, ``ctypes``,
  ``signal``, ``subprocess``...), and calls that end or fork the process or write files.

A flag is not a verdict: ``os`` is fine in a kata that makes a folder; the teacher reads the line.
"""
from __future__ import annotations

import ast
from pathlib import Path

SUSPECT_MODULES = {
    "solutions": "imports the reference solutions",
    "tfkata": "imports the grading harness",
    "pytest": "imports pytest", "_pytest": "imports pytest's internals", "pluggy": "imports pytest's plugin system",
    "gc": "inspects live objects (gc)", "inspect": "inspects the running program", "ctypes": "calls C directly",
    "signal": "handles signals", "subprocess": "starts processes", "multiprocessing": "starts processes",
    "importlib": "imports modules by name", "builtins": "changes builtins", "sys": "uses sys",
    "shutil": "copies or deletes files", "atexit": "runs code at exit",
}
SUSPECT_CALLS = {
    "os._exit": "ends the process", "sys.exit": "ends the process", "exit": "ends the process",
    "quit": "ends the process", "os.fork": "forks", "os.system": "runs a shell command", "os.kill": "sends a signal",
    "exec": "executes code from a string", "eval": "evaluates code from a string", "__import__": "imports by name",
    "open": "opens a file", "setattr": "sets attributes by name",
}


def _normalised(node: ast.AST) -> str:
    """A function's code without its docstring and names of nothing (formatting, comments vanish in the AST)."""
    node = ast.fix_missing_locations(node)
    body = list(getattr(node, "body", []))
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    clone = type(node)(**{f: getattr(node, f) for f in node._fields})
    clone.body = body
    return ast.dump(clone, annotate_fields=False, include_attributes=False)


def _functions(tree: ast.AST) -> dict[str, ast.AST]:
    out = {}
    for node in getattr(tree, "body", []):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    out[f"{node.name}.{item.name}"] = item
    return out


def identical_to_reference(source: str, reference: str) -> list[str]:
    """Public functions of ``source`` whose code equals the reference's (docstrings aside)."""
    try:
        mine, ref = _functions(ast.parse(source)), _functions(ast.parse(reference))
    except SyntaxError:
        return []
    return sorted(name for name, node in mine.items()
                  if not name.split(".")[-1].startswith("_") and name in ref
                  and _normalised(node) == _normalised(ref[name]))


def suspicious(source: str) -> list[str]:
    """``'line 12: import gc (inspects live objects (gc))'`` for each suspect import or call."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"line {exc.lineno}: does not parse ({exc.msg})"]
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in SUSPECT_MODULES:
                found.append(f"line {node.lineno}: import {name} ({SUSPECT_MODULES[top]})")
        if isinstance(node, ast.Call):
            called = _dotted(node.func)
            if called in SUSPECT_CALLS:
                found.append(f"line {node.lineno}: {called}(...) ({SUSPECT_CALLS[called]})")
    return found


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def flags_for(sources: dict, root: Path) -> dict[str, list[str]]:
    """module -> the lines a teacher should read (identical functions first)."""
    out = {}
    for module, text in sorted(sources.items()):
        ref_path = Path(root) / "solutions" / f"{module}.py"
        lines = []
        if ref_path.is_file():
            same = identical_to_reference(text, ref_path.read_text(encoding="utf-8"))
            if same:
                lines.append(f"identical to the reference: {', '.join(same)}")
        reference = ref_path.read_text(encoding="utf-8") if ref_path.is_file() else ""
        usual = {line.split(": ", 1)[1] for line in suspicious(reference)}  # what the reference does too
        lines += [line for line in suspicious(text) if line.split(": ", 1)[-1] not in usual]
        if lines:
            out[module] = lines
    return out
