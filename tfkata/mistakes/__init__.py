"""The mistake catalogue: known learner mistakes, and proof that the graded tests catch each one.

``tfkata/mistakes/kNN.toml`` lists, per kata, mistakes a learner is likely to make (``[[mistake]]``
tables; the format is in README.md beside this file). This module reads and validates them
(:func:`load`, :func:`load_all`), applies one to the reference source (:func:`apply`), and runs the
kata's tests against the mutated solution in a temporary copy of the checkout (:func:`run`), which
says whether a test caught it, which one, and with what message. ``python -m tfkata.mistakes``
is the command line.
"""
from __future__ import annotations

import ast
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from tfkata import registry
from tfkata.results import Run, TestResult
from tfkata.source import scan

CATALOGUE_DIR = Path(__file__).resolve().parent
KEYS = ("id", "function", "what", "replace", "code", "training", "expect", "about")
COPIED = ("katas", "solutions", "tests", "conftest.py", "pyproject.toml")
# "solutions": the mistake in solutions/, tests run with --solutions (a wrong reference must fail);
# "learner": as the learner sees it: the mistake in katas/, every other kata file the reference's code
# (the learner finished them), solutions/ untouched, tests run against katas/ (plain pytest), so the
# differential checks compare the mistake with the reference.
VIEWS = ("solutions", "learner")
IGNORED = ("__pycache__", ".tfkata", "kata-output", ".pytest_cache")
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_FUNCTION = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)?$")


class MistakeError(ValueError):
    """A catalogue entry is malformed or no longer applies to solutions/."""


@dataclasses.dataclass(frozen=True)
class Mistake:
    kata: str  # kata id, e.g. "k04"
    id: str  # kebab-case, unique within the kata
    function: str  # "conv2d" or "DataSet.next_batch"
    what: str  # one line a learner understands
    replace: tuple[tuple[str, str], ...]  # (old, new) pairs applied inside the function's text
    code: str | None  # or: the whole function rewritten
    training: bool  # only a training run can catch it
    expect: tuple[str, ...] = ()  # what the learner's first line must say (see :func:`tells`)
    about: str | None = None  # the function the failure must be about ("Stuck?"), when not ``function``

    @property
    def key(self) -> str:
        return f"{self.kata}/{self.id}"

    @property
    def module(self) -> str:
        return registry.get(self.kata).module


@dataclasses.dataclass(frozen=True)
class Outcome:
    mistake: Mistake
    caught: bool
    test_id: str | None = None  # pytest node id of the test that caught it
    test_name: str | None = None
    message: str | None = None  # that test's message
    seconds: float = 0.0
    by_training: bool = False  # the catching test is marked training
    error: str | None = None  # the run itself went wrong (timeout, no results, TODO, ...)
    skipped: bool = False  # a training mistake without runslow
    report: str | None = None  # the catching test's failure as a learner sees it (short traceback)
    view: str = "solutions"  # how it ran: see VIEWS
    by_differential: bool = False  # the catching test compares with the reference (tfkata.differential)
    pointed: str | None = None  # the kata function the failure is about: its "Stuck? kata hint K -f F" line

    @property
    def first_line(self) -> str:
        """The first line the learner sees (``kata run`` shows the report, whose first line is the message)."""
        text = (self.report or self.message or "").strip()
        return text.splitlines()[0].removeprefix("AssertionError: ") if text else ""

    @property
    def told(self) -> bool | None:
        """Caught, and the first line says what the entry's ``expect`` asks (None: no expect, or not caught)."""
        if not self.caught or not self.mistake.expect:
            return None
        return tells(self.first_line, self.mistake.expect)

    @property
    def points_right(self) -> bool | None:
        """Caught, and the failure is about the mistaken function (so "Stuck?" sends the learner to it)."""
        if not self.caught:
            return None
        return self.pointed is not None and self.pointed in _names(self.mistake.about or self.mistake.function)

    @property
    def status(self) -> str:
        """'caught', 'missed', 'skipped' or 'error'."""
        if self.skipped:
            return "skipped"
        if self.error:
            return "error"
        return "caught" if self.caught else "missed"

    def to_dict(self) -> dict:
        m = self.mistake
        return {
            "kata": m.kata, "id": m.id, "function": m.function, "what": m.what, "training": m.training,
            "status": self.status, "caught": self.caught, "test_id": self.test_id, "test_name": self.test_name,
            "message": self.message, "seconds": round(self.seconds, 2), "by_training": self.by_training,
            "error": self.error, "report": self.report, "view": self.view, "by_differential": self.by_differential,
            "expect": list(m.expect), "first_line": self.first_line, "told": self.told,
            "pointed": self.pointed, "points_right": self.points_right,
        }


def _names(function: str) -> set[str]:
    """What a result may call the function: ``"DataSet.next_batch"`` is also ``DataSet`` and ``next_batch``."""
    return {function, *function.split(".")}


# --------------------------------------------------------------------------- catalogue
def catalogue_path(kata_id: str) -> Path:
    return CATALOGUE_DIR / f"{registry.get(kata_id).id}.toml"


def load(kata_id: str) -> list[Mistake]:
    """The mistakes of one kata (id, alias or module), in file order; [] when it has no catalogue."""
    kata = registry.get(kata_id)
    path = catalogue_path(kata.id)
    if not path.is_file():
        return []
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise MistakeError(f"{_rel(path)}: not valid TOML: {exc}") from None
    extra = set(data) - {"mistake"}
    if extra:
        raise MistakeError(f"{_rel(path)}: unknown top-level key(s) {sorted(extra)}; use [[mistake]] tables")
    out, seen = [], set()
    for n, entry in enumerate(data.get("mistake", []), 1):
        m = _parse(kata.id, entry, f"{_rel(path)}, [[mistake]] #{n} (id {entry.get('id', '?')!r})")
        if m.id in seen:
            raise MistakeError(f"{_rel(path)}, [[mistake]] #{n}: duplicate id {m.id!r}")
        seen.add(m.id)
        out.append(m)
    return out


def load_all() -> list[Mistake]:
    """Every kata's mistakes, in registry order."""
    return [m for kata in registry.katas() for m in load(kata.id)]


def tells(line: str, expect) -> bool:
    """Whether ``line`` says every item of ``expect``: a plain item is a case-insensitive substring, an item
    ``re:PATTERN`` a case-insensitive regular expression, and ``a|b`` (plain) accepts either word."""
    for item in expect:
        if item.startswith("re:"):
            if not re.search(item[3:], line, re.I):
                return False
        elif not any(alt.strip().lower() in line.lower() for alt in item.split("|")):
            return False
    return True


def _parse(kata_id: str, entry: dict, where: str) -> Mistake:
    def fail(text: str):
        raise MistakeError(f"{where}: {text}")

    unknown = set(entry) - set(KEYS)
    if unknown:
        fail(f"unknown key(s) {sorted(unknown)}; allowed: {', '.join(KEYS)}")
    for key in ("id", "function", "what"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            fail(f"'{key}' is missing or not a non-empty string")
    if not _ID.match(entry["id"]):
        fail(f"id {entry['id']!r} is not kebab-case (lower-case words joined by '-')")
    if not _FUNCTION.match(entry["function"]):
        fail(f"function {entry['function']!r} must be a name or Class.method")
    if "\n" in entry["what"].strip():
        fail("'what' must be one line")
    if ("replace" in entry) == ("code" in entry):
        fail("give exactly one of 'replace' (a list of [old, new] pairs) or 'code' (the function rewritten)")
    replace: tuple = ()
    if "replace" in entry:
        pairs = entry["replace"]
        ok = isinstance(pairs, list) and pairs and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p) for p in pairs)
        if not ok:
            fail("'replace' must be a non-empty list of [old, new] string pairs")
        if any(not old or old == new for old, new in pairs):
            fail("each 'replace' pair needs a non-empty old string and a different new string")
        replace = tuple((old, new) for old, new in pairs)
    code = entry.get("code")
    if code is not None and (not isinstance(code, str) or not code.strip()):
        fail("'code' must be a non-empty string holding the whole function")
    training = entry.get("training", False)
    if not isinstance(training, bool):
        fail("'training' must be true or false")
    expect = entry.get("expect")
    if expect is None:
        fail("'expect' is missing: the words the learner's first line must say, e.g. expect = [\"padding\", \"SAME\"]")
    if not isinstance(expect, list) or not expect or not all(isinstance(x, str) and x.strip() for x in expect):
        fail("'expect' must be a list of non-empty strings (words the first line must say; 're:' for a regex)")
    for item in expect:
        if item.startswith("re:"):
            try:
                re.compile(item[3:])
            except re.error as exc:
                fail(f"'expect' item {item!r} is not a valid regular expression: {exc}")
    about = entry.get("about")
    if about is not None and (not isinstance(about, str) or not _FUNCTION.match(about)):
        fail("'about' must be a function name (the one the first failure is about, when not 'function')")
    return Mistake(kata_id, entry["id"], entry["function"], entry["what"].strip(), replace, code, training,
                   tuple(expect), about)


def _rel(path: Path) -> str:
    try:
        return path.relative_to(CATALOGUE_DIR.parent.parent).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- applying
def function_span(source: str, function: str) -> tuple[int, int, int]:
    """(first line incl. decorators, last line, def's line), 1-based, of ``name`` or ``Class.method``."""
    for f in scan(source):
        if f.name == function:
            return f.first, f.end, f.line
    raise KeyError(f"no {function}")


def apply(m: Mistake, source: str) -> str:
    """``source`` (the kata's solution module) with the mistake applied inside ``m.function``."""
    where = f"{m.key} no longer applies to solutions/{m.module}.py"
    fix = f"update tfkata/mistakes/{m.kata}.toml"
    try:
        first, last, def_line = function_span(source, m.function)
    except KeyError:
        raise MistakeError(f"{where}: there is no function {m.function}; {fix}") from None
    lines = source.splitlines(keepends=True)
    text = "".join(lines[first - 1:last])
    if m.code is None:
        for old, new in m.replace:
            count = text.count(old)
            if count != 1:
                raise MistakeError(f"{where}: {old!r} found {count} times in {m.function}; {fix}")
            text = text.replace(old, new)
    else:
        indent = re.match(r"[ \t]*", lines[def_line - 1]).group(0)
        code = textwrap.dedent(m.code).strip("\n") + "\n"
        try:
            tree = ast.parse(code)
        except SyntaxError as exc:
            raise MistakeError(f"{m.key}: 'code' is not valid Python (line {exc.lineno}: {exc.msg})") from None
        name = m.function.split(".")[-1]
        defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        if not any(isinstance(n, defs) and n.name == name for n in tree.body):
            raise MistakeError(f"{m.key}: 'code' must define {name} at its top level")
        if not code.lstrip().startswith("@"):  # keep the original decorators
            first = def_line
        text = textwrap.indent(code, indent, lambda line: line.strip() != "")
    mutated = "".join(lines[:first - 1]) + text + "".join(lines[last:])
    if mutated == source:
        raise MistakeError(f"{m.key}: applying it changes nothing in {m.function}; {fix}")
    try:
        ast.parse(mutated)
    except SyntaxError as exc:
        raise MistakeError(f"{m.key}: solutions/{m.module}.py no longer parses with it applied "
                           f"(line {exc.lineno}: {exc.msg}); {fix}") from None
    return mutated


def check(m: Mistake, root: Path) -> str:
    """Validate ``m`` against the checkout at ``root`` (public function, applies cleanly); the mutated source."""
    kata = registry.get(m.kata)
    if m.function.split(".")[0] not in kata.hints:
        raise MistakeError(f"{m.key}: {m.function.split('.')[0]} is not a public function of {kata.id} "
                           f"(a hint key in tfkata/registry.toml)")
    if m.about is not None and m.about.split(".")[0] not in kata.hints:
        raise MistakeError(f"{m.key}: about = {m.about!r} is not a public function of {kata.id}")
    return apply(m, (Path(root) / "solutions" / f"{kata.module}.py").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- running
def copy_checkout(root: Path, work: Path, *, finished: bool = False) -> None:
    """What a mistake run needs of the checkout (katas/, solutions/, tests/, conftest, pyproject) in ``work``;
    ``finished``: katas/ holds the reference's code (a learner who finished every kata)."""
    for name in COPIED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns(*IGNORED))
        elif src.is_file():
            shutil.copy2(src, work / name)
    if finished:
        for path in (work / "solutions").glob("*.py"):
            shutil.copy2(path, work / "katas" / path.name)


def pytest_args(m: Mistake, view: str, results: Path) -> list[str]:
    """The pytest arguments of one mistake's run (``view``: see VIEWS)."""
    args = ["-x", "-q", "-p", "no:cacheprovider", f"tests/test_{m.module}.py", "--results-json", str(results),
            "--first-tests-of", m.function]
    if view == "solutions":
        args.insert(0, "--solutions")
    else:  # the other katas are finished: tests that use them do not wait
        args += ["--assume-done", ",".join(k.id for k in registry.katas() if k.id != m.kata)]
    if not m.training:
        args += ["-m", "not training"]
    return args


def mutated_path(m: Mistake, work: Path, view: str) -> Path:
    """The file the mistake goes into: solutions/ or, as the learner sees it, katas/."""
    return Path(work) / ("solutions" if view == "solutions" else "katas") / f"{m.module}.py"


def run(m: Mistake, root: Path, *, runslow: bool = False, timeout: float = 600, view: str = "solutions") -> Outcome:
    """Apply ``m`` in a temporary copy of the checkout at ``root`` and run the kata's tests there.

    A unit mistake runs ``-m "not training"`` (a unit test must catch it); a ``training`` mistake
    runs the whole test file, and only with ``runslow`` (else the outcome is ``skipped``).
    """
    if m.training and not runslow:
        return Outcome(m, caught=False, skipped=True, view=view)
    started = time.monotonic()
    try:
        mutated = check(m, root)
    except MistakeError as exc:
        return Outcome(m, caught=False, error=str(exc), view=view)
    with tempfile.TemporaryDirectory(prefix=f"tfkata-mistake-{m.kata}-") as tmp:
        work = Path(tmp)
        copy_checkout(Path(root), work, finished=view == "learner")
        mutated_path(m, work, view).write_text(mutated, encoding="utf-8")
        results = work / "results.json"
        cmd = [sys.executable, "-m", "pytest", *pytest_args(m, view, results)]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env.pop("TFKATA_TARGET", None)
        try:
            code, output = _call(cmd, work, env, timeout)
        except subprocess.TimeoutExpired:
            return Outcome(m, caught=False, seconds=time.monotonic() - started, view=view,
                           error=f"the test run took longer than {timeout:g} s and was stopped")
        return outcome_from(m, results, code, output, time.monotonic() - started, view)


def outcome_from(m: Mistake, results: Path, code: int, output: str, seconds: float,
                 view: str = "solutions") -> Outcome:
    """What one run of the kata's tests against the mutated solution says about ``m``."""
    problem = _first_problem(results) if results.is_file() else None
    if problem is None:
        if code == 0:
            return Outcome(m, caught=False, seconds=seconds, view=view)
        tail = " | ".join(l for l in output.strip().splitlines()[-3:])
        return Outcome(m, caught=False, seconds=seconds, view=view, error=f"pytest exited with code {code}: {tail}")
    found = dict(test_id=problem.id, test_name=problem.name, message=problem.message, seconds=seconds,
                 by_training=problem.training, report=problem.report, view=view,
                 by_differential=problem.differential, pointed=problem.function)
    if problem.status == "todo":
        return Outcome(m, caught=False, **found,
                       error="the mutated solution raised NotImplementedError (TODO), which is not a catch")
    return Outcome(m, caught=True, **found)


def _call(cmd: list[str], cwd: Path, env: dict, timeout: float) -> tuple[int, str]:
    """Run ``cmd`` in its own process group (so a timeout kills TensorFlow's threads too)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, AttributeError):  # pragma: no cover
            proc.kill()
        proc.communicate()
        raise
    return proc.returncode, output


def _first_problem(path: Path) -> TestResult | None:
    """The first graded test that failed, errored or hit a TODO, from a results file (tfkata/results.py)."""
    return Run.load(path).first_problem
