"""THE one home of a run's data: written by the pytest plugin, read by ``kata``, ``.ci/run`` and the tests.

A :class:`Run` is one pytest run (target, versions, duration, status, per-kata grades, per-test
results); :meth:`Run.dump` / :meth:`Run.load` write and read it as JSON (``--results-json PATH``, and
``.tfkata/results-<id>.json`` for the learner's last run of each kata). Nothing else builds or parses
this JSON by hand. ``SCHEMA_VERSION`` changes with any change of fields; a checked-in golden file
(``tests/harness/golden/results.json``) pins the output.

Test statuses: ``pass``, ``fail``, ``todo`` (a function is still a stub), ``waiting`` (not run: a
training run waits for its unit tests, or a test needs another kata that does not pass yet), ``skip``
(slow, gpu) and ``error`` (a fixture failed).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA_VERSION = 7
READABLE_VERSIONS = (5, 6, 7)  # 5 lacks KataGrade.sources (read as unknown), 5 and 6 TestResult.uses
STATUSES = ("pass", "fail", "todo", "waiting", "skip", "error")
PROBLEMS = ("fail", "error", "todo")  # what a learner has to fix, in a test


class ResultsError(ValueError):
    """A results file that cannot be read as this schema."""


@dataclass
class Todo:
    """Where a stub still raises NotImplementedError."""

    kata: str
    function: str  # ``name`` or ``Class.method``
    file: str  # relative to the checkout, e.g. ``katas/k01_graph_session.py``
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def line_text(self) -> str:
        """The one line a TODO shows: ``TODO k01: define_add is not written yet (katas/…:23)``."""
        return f"TODO {self.kata}: {self.function} is not written yet ({self.where})"


@dataclass
class TestResult:
    id: str  # pytest node id
    name: str
    kata: str | None  # None for the harness's own tests (not graded)
    status: str
    points: int = 1
    points_earned: int = 0
    message: str | None = None  # one line: the failure, TODO line, waiting or skip reason
    report: str | None = None  # the failure as the learner sees it (short traceback)
    printed: str | None = None  # what the test printed (figures reached)
    covers: list[str] = field(default_factory=list)  # kata functions it grades
    training: bool = False
    differential: bool = False  # compares the function with the reference on generated inputs
    needs: list[str] = field(default_factory=list)  # other katas it uses
    todo: Todo | None = None
    about: str | None = None  # the kata function a failure is about (the one that raised, or its message names)
    uses: list[str] = field(default_factory=list)  # kata functions the test read (called or built on), covers or not
    duration: float = 0.0

    __test__ = False  # not a pytest test class

    @property
    def function(self) -> str | None:
        """The kata function this result is about: the stub it hit, else the first it covers."""
        if self.todo is not None and self.todo.kata == self.kata:
            return self.todo.function.split(".")[0]
        if self.about:
            return self.about
        return self.covers[0] if self.covers else None

    @property
    def is_problem(self) -> bool:
        return self.status in PROBLEMS


@dataclass
class KataGrade:
    id: str
    title: str
    module: str
    track: str
    passed: int = 0
    failed: int = 0
    todo: int = 0
    waiting: int = 0
    skipped: int = 0
    errors: int = 0
    points: int = 0
    points_possible: int = 0
    duration: float = 0.0
    sources: str | None = None  # sha256 of the learner's file and the test file when the run started


@dataclass
class Run:
    target: str  # katas | solutions
    status: str = "pass"  # pass | fail | error (a test file could not be collected)
    message: str | None = None
    tensorflow: str | None = None
    python: str | None = None
    started: float = 0.0  # epoch seconds
    duration: float = 0.0
    complete: bool = True  # every collected test of these katas ran (no -k / -x cut)
    points: dict = field(default_factory=lambda: {"earned": 0, "possible": 0})
    katas: list[KataGrade] = field(default_factory=list)
    tests: list[TestResult] = field(default_factory=list)
    version: int = SCHEMA_VERSION

    # ------------------------------------------------------------------ building
    @classmethod
    def grade(cls, target: str, tests: list[TestResult], katas, sources: dict | None = None, **fields) -> "Run":
        """A run from its test results; ``katas`` is the registry's list (grade rows in its order);
        ``sources``: kata id -> digest of the files graded (see :func:`tfkata.store.sources_digest`)."""
        for t in tests:
            t.points_earned = t.points if t.status == "pass" else 0
        rows = []
        for kata in katas:
            mine = [t for t in tests if t.kata == kata.id]
            if not mine:
                continue
            count = {s: sum(t.status == s for t in mine) for s in STATUSES}
            rows.append(KataGrade(
                id=kata.id, title=kata.title, module=kata.module, track=kata.track,
                passed=count["pass"], failed=count["fail"], todo=count["todo"], waiting=count["waiting"],
                skipped=count["skip"], errors=count["error"],
                points=sum(t.points_earned for t in mine),
                points_possible=sum(t.points for t in mine if t.status != "skip"),
                duration=round(sum(t.duration for t in mine), 3),
                sources=(sources or {}).get(kata.id),
            ))
        graded = [t for t in tests if t.kata is not None]
        ordered = graded + [t for t in tests if t.kata is None]
        run = cls(target=target, tests=ordered, katas=rows, **fields)
        run.points = {"earned": sum(r.points for r in rows), "possible": sum(r.points_possible for r in rows)}
        if run.message:
            run.status = "error"
        elif all(t.status in ("pass", "skip") for t in tests):
            run.status = "pass"
        else:
            run.status = "fail"
        return run

    def for_kata(self, kata_id: str) -> "Run":
        """This run restricted to one kata (what ``.tfkata/results-<id>.json`` holds)."""
        tests = [t for t in self.tests if t.kata == kata_id]
        rows = [k for k in self.katas if k.id == kata_id]
        status = "error" if not tests else ("pass" if all(t.status in ("pass", "skip") for t in tests) else "fail")
        message = None if tests else (self.message or f"no test of {kata_id} ran")
        earned = sum(t.points_earned for t in tests)
        possible = sum(t.points for t in tests if t.status != "skip")
        duration = rows[0].duration if rows and len(self.katas) > 1 else self.duration
        return dataclasses.replace(
            self, tests=tests, katas=rows, status=status, message=message, duration=duration,
            points={"earned": earned, "possible": possible},
        )

    # ------------------------------------------------------------------ reading
    @property
    def graded(self) -> list[TestResult]:
        return [t for t in self.tests if t.kata is not None]

    def count(self, *statuses: str) -> int:
        return sum(t.status in statuses for t in self.graded)

    @property
    def done(self) -> bool:
        """Every graded test that ran passed (skips aside), and at least one did."""
        ran = [t for t in self.graded if t.status != "skip"]
        return bool(ran) and all(t.status == "pass" for t in ran)

    @property
    def problems(self) -> list[TestResult]:
        return [t for t in self.graded if t.is_problem]

    @property
    def first_problem(self) -> TestResult | None:
        """The first failure or error (what the learner just broke), else the first TODO."""
        problems = self.problems
        return next((t for t in problems if t.status != "todo"), None) or next(iter(problems), None)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def dump(self, path: str | os.PathLike) -> None:
        """Write atomically (a reader never sees half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def from_dict(cls, data: dict) -> "Run":
        if not isinstance(data, dict) or data.get("version") not in READABLE_VERSIONS:
            got = data.get("version") if isinstance(data, dict) else type(data).__name__
            raise ResultsError(f"not a version-{SCHEMA_VERSION} results document (version {got!r})")
        try:
            tests = []
            for t in data["tests"]:
                t = dict(t)
                t["todo"] = Todo(**t["todo"]) if t.get("todo") else None
                tests.append(TestResult(**t))
            katas = [KataGrade(**k) for k in data["katas"]]
            fields = {k: v for k, v in data.items() if k not in ("tests", "katas", "version")}
            return cls(tests=tests, katas=katas, **fields)
        except (KeyError, TypeError) as exc:
            raise ResultsError(f"results document does not fit the schema: {exc}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Run":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultsError(str(exc).splitlines()[0][:160]) from None
        return cls.from_dict(data)
