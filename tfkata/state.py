"""The learner's local state, read and written by the ``kata`` command (never by the tests).

Everything lives in ``.tfkata/`` at the repository root (git ignores it):

* ``results-<id>.json``  the last graded run of one kata: the plugin's ``--results-json`` schema
  restricted to that kata, each test with two more keys from the run's JUnit XML: ``report`` (the
  failure in full) and ``printed`` (what the test printed).
* ``state.json``         which hints were shown: ``{"version": 1, "hints": {"k01": {"define_add": [1, 2]}}}``.
* ``backups/``           the learner's file before each ``kata reset``, and any broken state file.

A broken state or results file is moved into ``backups/`` with a warning, never silently dropped.

Pictures: a kata that writes PNGs (k04 digits and curves, k08 heatmaps) writes them under
``kata-output/<id>/`` (:func:`output_dir`); ``kata run`` lists what it finds there.
"""
from __future__ import annotations

import ast
import dataclasses
import datetime as _dt
import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from tfkata import registry

STATE_DIRNAME = ".tfkata"
from tfkata.paths import OUTPUT_DIRNAME, output_dir  # noqa: F401  (re-exported)
STATE_VERSION = 1
_TODO = re.compile(r"TODO (?P<kata>\S+): (?P<func>\S+) is not written yet \((?P<where>[^)]*)\)")


def _stamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _free_path(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/stem-<timestamp><suffix>``, with ``-2``, ``-3`` ... if that name is taken."""
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{stem}-{_stamp()}"
    path = folder / f"{base}{suffix}"
    n = 2
    while path.exists():
        path = folder / f"{base}-{n}{suffix}"
        n += 1
    return path


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the store
class Store:
    """The ``.tfkata/`` folder of one checkout. ``warnings`` collects what the CLI must tell."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.dir = self.root / STATE_DIRNAME
        self.backups = self.dir / "backups"
        self.warnings: list[str] = []
        self._state: dict | None = None

    # paths ------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.dir / "state.json"

    def results_path(self, kata: registry.Kata) -> Path:
        return self.dir / f"results-{kata.id}.json"

    def rel(self, path: Path) -> str:
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def _quarantine(self, path: Path, why: str, what: str) -> None:
        """Move a file we cannot read into backups/ and say so."""
        dest = _free_path(self.backups, path.stem + "-broken", path.suffix)
        shutil.move(str(path), str(dest))
        self.warnings.append(
            f"{self.rel(path)} could not be read ({why}); kept it as {self.rel(dest)} and {what}."
        )

    # hints state ------------------------------------------------------------------------
    @property
    def state(self) -> dict:
        if self._state is None:
            self._state = self._load_state()
        return self._state

    def _load_state(self) -> dict:
        fresh = {"version": STATE_VERSION, "hints": {}}
        path = self.state_path
        if not path.exists():
            return fresh
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            _check_state(data)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            self._quarantine(path, str(exc).splitlines()[0][:120], "started a fresh one (your results are not affected)")
            return fresh
        return data

    def save(self) -> None:
        _atomic_write(self.state_path, json.dumps(self.state, indent=2, ensure_ascii=False) + "\n")

    def shown_hints(self, kata_id: str, func: str) -> list[int]:
        return list(self.state["hints"].get(kata_id, {}).get(func, []))

    def mark_hint(self, kata_id: str, func: str, number: int) -> None:
        funcs = self.state["hints"].setdefault(kata_id, {})
        shown = set(funcs.get(func, []))
        shown.add(int(number))
        funcs[func] = sorted(shown)
        self.save()

    # results ----------------------------------------------------------------------------
    def load_results(self, kata: registry.Kata) -> dict | None:
        path = self.results_path(kata)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
                raise ValueError("not a results file (no 'tests' list)")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            self._quarantine(path, str(exc).splitlines()[0][:120], f"will show {kata.id} as not run")
            return None
        return data

    def write_results(self, kata: registry.Kata, data: dict) -> None:
        _atomic_write(self.results_path(kata), json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def forget_results(self, kata: registry.Kata) -> None:
        path = self.results_path(kata)
        if path.exists():
            path.unlink()

    def backup_learner_file(self, kata: registry.Kata) -> Path:
        src = self.root / kata.path("katas")
        dest = _free_path(self.backups, kata.module, ".py")
        shutil.copy2(src, dest)
        return dest


def _check_state(data) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("hints"), dict):
        raise ValueError("expected an object with a 'hints' object")
    for kata_id, funcs in data["hints"].items():
        if not isinstance(funcs, dict) or not all(
            isinstance(v, list) and all(isinstance(i, int) for i in v) for v in funcs.values()
        ):
            raise ValueError(f"hints of {kata_id!r} should map function names to lists of hint numbers")


# --------------------------------------------------------------------------- results files
def split_results(data: dict, katas: list[registry.Kata]) -> dict[str, dict]:
    """One results document per kata out of a run over several test files."""
    out = {}
    for kata in katas:
        tests = [t for t in data.get("tests", []) if t.get("kata") == kata.id]
        rows = [k for k in data.get("katas", []) if k.get("id") == kata.id]
        if tests:
            status = "pass" if all(t["status"] in ("pass", "skip") for t in tests) else "fail"
            message = None
        else:
            status, message = "error", data.get("message") or f"no test of {kata.id} ran"
        earned = sum(t.get("points_earned", 0) for t in tests)
        possible = sum(t.get("points", 0) for t in tests if t["status"] != "skip")
        duration = data.get("duration")
        if len(katas) > 1:  # the run's wall time covers every kata: keep this kata's own test time
            duration = rows[0]["duration"] if rows else None
        out[kata.id] = dict(
            data,
            duration=duration,
            status=status,
            message=message,
            points={"earned": earned, "possible": possible},
            katas=rows,
            tests=tests,
        )
    return out


def read_junit(path: Path) -> dict[str, dict]:
    """nodeid-ish key ``'<classname>::<name>'`` -> {"text": failure text, "out": printed output}."""
    out: dict[str, dict] = {}
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError):
        return out
    for case in tree.iter("testcase"):
        text = ""
        for tag in ("failure", "error"):
            node = case.find(tag)
            if node is not None:
                text = (node.text or node.get("message") or "").rstrip()
                break
        printed = []
        for node in case.findall("system-out"):
            for line in (node.text or "").splitlines():
                if line.startswith("---") and "Captured" in line:
                    continue
                printed.append(line)
        key = f"{case.get('classname', '')}::{case.get('name', '')}"
        out[key] = {"text": text, "out": "\n".join(printed).strip()}
    return out


def junit_key(nodeid: str) -> str:
    """``tests/test_x.py::TestA::test_b[1]`` -> ``tests.test_x.TestA::test_b[1]`` (junit's naming)."""
    parts = nodeid.split("::")
    module = parts[0][:-3] if parts[0].endswith(".py") else parts[0]
    classname = ".".join([module.replace("/", ".")] + parts[1:-1])
    return f"{classname}::{parts[-1]}"


# --------------------------------------------------------------------------- progress
@dataclasses.dataclass
class Progress:
    kata: registry.Kata
    available: bool
    missing: str | None  # what is missing when not available
    results: dict | None
    stale: bool  # the learner's file (or the test file) changed after the last recorded run

    @property
    def tests(self) -> list[dict]:
        return list((self.results or {}).get("tests", []))

    @property
    def earned(self) -> int:
        return sum(t.get("points_earned", 0) for t in self.tests)

    @property
    def possible(self) -> int:
        return sum(t.get("points", 0) for t in self.tests if t.get("status") != "skip")

    def count(self, *statuses: str) -> int:
        return sum(t.get("status") in statuses for t in self.tests)

    @property
    def done(self) -> bool:
        graded = [t for t in self.tests if t.get("status") != "skip"]
        return bool(graded) and all(t.get("status") == "pass" for t in graded)

    @property
    def status(self) -> str:
        """done | in progress | TODO | error | not available yet"""
        if not self.available:
            return "not available yet"
        if self.results is None:
            return "TODO"
        if not self.tests:
            return "error"
        if self.done:
            return "done"
        return "in progress" if self.count("pass") else "TODO"

    @property
    def fraction(self) -> float:
        return self.earned / self.possible if self.possible else 0.0

    @property
    def first_problem(self) -> dict | None:
        for t in self.tests:
            if t.get("status") in ("fail", "todo", "error"):
                return t
        return None


def progress(store: Store, kata: registry.Kata) -> Progress:
    root = store.root
    needed = [kata.test_file, kata.path("katas")]
    missing = [p for p in needed if not (root / p).exists()]
    results = store.load_results(kata) if not missing else None
    stale = False
    if results is not None:
        try:
            recorded = store.results_path(kata).stat().st_mtime
            stale = any((root / p).stat().st_mtime > recorded for p in needed)
        except OSError:
            stale = False
    return Progress(kata, not missing, ", ".join(missing) or None, results, stale)


def all_progress(store: Store) -> list[Progress]:
    return [progress(store, k) for k in registry.katas()]


def current(store: Store, rows: list[Progress] | None = None) -> Progress | None:
    """The first available kata that is not done (None when every available kata is done)."""
    for row in rows if rows is not None else all_progress(store):
        if row.available and not row.done:
            return row
    return None


# --------------------------------------------------------------------------- functions & hints
def parse_todo(message: str | None) -> tuple[str, str] | None:
    """(function, 'file:line') from the plugin's TODO line."""
    match = _TODO.search(message or "")
    return (match.group("func"), match.group("where")) if match else None


def hint_function(kata: registry.Kata, func: str | None) -> str | None:
    """The registry's hint key for a function name (``Class.method`` falls back to ``Class``)."""
    if not func:
        return None
    if func in kata.hints:
        return func
    head = func.split(".")[0]
    return head if head in kata.hints else None


def function_of_test(kata: registry.Kata, test: dict | None) -> str | None:
    """The kata function a failing test is about: the TODO line says it; else the longest function
    name inside the test's name (test_define_add_runs_to_five -> define_add)."""
    if test is None:
        return None
    todo = parse_todo(test.get("message"))
    if todo:
        found = hint_function(kata, todo[0])
        if found:
            return found
    name = test.get("name", "")
    best = None
    for func in kata.hints:
        if func in name and (best is None or len(func) > len(best)):
            best = func
    return best


def todo_functions(path: Path) -> list[tuple[str, int]]:
    """(name, line) of every function in a kata file whose body is still the stub's ``raise
    NotImplementedError``, in file order, without importing it (no TensorFlow needed)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return []
    found = []

    def is_stub(fn) -> bool:
        body = list(fn.body)
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
            body = body[1:]
        if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
            return False
        exc = body[0].exc
        if isinstance(exc, ast.Call):
            exc = exc.func
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_stub(node):
            found.append((node.name, node.lineno))
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_stub(sub):
                    found.append((f"{node.name}.{sub.name}", sub.lineno))
    return found
