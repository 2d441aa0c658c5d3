"""The learner's local store: ``.tfkata/`` at the repository root (git ignores it).

* ``results-<id>.json``  the last complete graded run of one kata (a :class:`tfkata.results.Run`),
  written by the pytest plugin whenever a run against katas/ covers every test of that kata — plain
  ``pytest`` as well as ``kata run``.
* ``state.json``         which hints were shown: ``{"version": 1, "hints": {"k01": {"define_add": [1, 2]}}}``.
* ``backups/``           the learner's file before each ``kata reset``, and any broken state file.

A broken state or results file is moved into ``backups/`` with a warning, never silently dropped.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from pathlib import Path

from tfkata import registry
from tfkata.results import ResultsError, Run

STATE_DIRNAME = ".tfkata"
PASSED_KEPT = 20  # digests of passing complete runs kept per kata (.tfkata/passed/<id>.sha256, one a line)
STATE_VERSION = 1


def _free_path(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/stem-<timestamp><suffix>``, with ``-2``, ``-3`` ... if that name is taken."""
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{stem}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    path = folder / f"{base}{suffix}"
    n = 2
    while path.exists():
        path = folder / f"{base}-{n}{suffix}"
        n += 1
    return path


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _check_state(data) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("hints"), dict):
        raise ValueError("expected an object with a 'hints' object")
    for kata_id, funcs in data["hints"].items():
        if not isinstance(funcs, dict) or not all(
            isinstance(v, list) and all(isinstance(i, int) for i in v) for v in funcs.values()
        ):
            raise ValueError(f"hints of {kata_id!r} should map function names to lists of hint numbers")


class Store:
    """The ``.tfkata/`` folder of one checkout. ``warnings`` collects what the CLI must tell."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.dir = self.root / STATE_DIRNAME
        self.backups = self.dir / "backups"
        self.warnings: list[str] = []
        self._state: dict | None = None

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
        self.warnings.append(f"{self.rel(path)} could not be read ({why}); kept it as {self.rel(dest)} and {what}.")

    # hints --------------------------------------------------------------------------------
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
        atomic_write(self.state_path, json.dumps(self.state, indent=2, ensure_ascii=False) + "\n")

    def shown_hints(self, kata_id: str, func: str) -> list[int]:
        return list(self.state["hints"].get(kata_id, {}).get(func, []))

    def mark_hint(self, kata_id: str, func: str, number: int) -> None:
        funcs = self.state["hints"].setdefault(kata_id, {})
        funcs[func] = sorted(set(funcs.get(func, [])) | {int(number)})
        self.save()

    # results ------------------------------------------------------------------------------
    def load_results(self, kata: registry.Kata) -> Run | None:
        path = self.results_path(kata)
        if not path.exists():
            return None
        try:
            return Run.load(path)
        except ResultsError as exc:
            self._quarantine(path, str(exc)[:120], f"will show {kata.id} as not run")
            return None

    def write_results(self, kata: registry.Kata, run: Run) -> None:
        run.dump(self.results_path(kata))
        grade = next((g for g in run.katas if g.id == kata.id), None)
        if run.done and grade is not None and grade.sources:  # what passed, for kata_done after a failed try
            kept = [d for d in self.passed_digests(kata) if d != grade.sources][-(PASSED_KEPT - 1):]
            atomic_write(self.passed_path(kata), "".join(d + "\n" for d in kept + [grade.sources]))

    def passed_digests(self, kata: registry.Kata) -> list[str]:
        """The sources digests of the complete runs of ``kata`` that passed (the last PASSED_KEPT), oldest first."""
        try:
            return self.passed_path(kata).read_text(encoding="utf-8").split()
        except (OSError, UnicodeDecodeError):
            return []

    def passed_path(self, kata: registry.Kata) -> Path:
        return self.dir / "passed" / f"{kata.id}.sha256"

    def forget_results(self, kata: registry.Kata) -> None:
        self.results_path(kata).unlink(missing_ok=True)

    # the kata file as the last run graded it (kata run puts the functions changed since first) ---------
    def ran_path(self, kata: registry.Kata) -> Path:
        return self.dir / "ran" / f"{kata.module}.py"

    def ran_source(self, kata: registry.Kata) -> str | None:
        try:
            return self.ran_path(kata).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def remember_ran(self, kata: registry.Kata, text: str) -> None:
        atomic_write(self.ran_path(kata), text)

    def backup_learner_file(self, kata: registry.Kata) -> Path:
        dest = _free_path(self.backups, kata.module, ".py")
        shutil.copy2(self.root / kata.path("katas"), dest)
        return dest

    def kata_done(self, kata: registry.Kata) -> bool:
        """The last recorded run of ``kata`` passed and neither its file nor its tests changed since; or the
        file and tests are byte for byte those of an earlier complete run that passed (a try that failed,
        then undone, does not make the learner run the kata again before its twin may use it; nor does putting
        back any of the last PASSED_KEPT files that passed)."""
        run = self.load_results(kata)
        if run is not None and run.done and not is_stale(self.root, kata, self.results_path(kata), run):
            return True
        current = sources_digest(self.root, kata)
        return current is not None and current in self.passed_digests(kata)


def sources_digest(root: Path, kata: registry.Kata) -> str | None:
    """sha256 over the learner's file and the kata's test file (None if one is missing)."""
    digest = hashlib.sha256()
    try:
        for rel in (kata.path("katas"), kata.test_file):
            digest.update(rel.encode() + b"\0" + (Path(root) / rel).read_bytes() + b"\0")
    except OSError:
        return None
    return digest.hexdigest()


def is_stale(root: Path, kata: registry.Kata, recorded: Path, run: Run | None = None) -> bool:
    """The learner's file (or the kata's test file) changed since ``recorded`` was graded: by content
    where the run holds its digest (saving an unchanged file changes nothing), else by modification time."""
    grade = next((g for g in run.katas if g.id == kata.id), None) if run is not None else None
    if grade is not None and grade.sources:
        return sources_digest(root, kata) != grade.sources
    try:
        when = recorded.stat().st_mtime
        return any((root / p).stat().st_mtime > when for p in (kata.test_file, kata.path("katas")))
    except OSError:
        return False
