"""What a student handed in: only the kata files, read from a folder, a git repository or bundle, or a zip.

Everything else in a submission (tests, conftest, the harness, hidden files) is ignored: a submission is
``{module: source}`` for the ``katas/<module>.py`` files whose module is in the registry, nothing more.
Reading never executes anything, never follows a path out of the submission (zip members with ``..``
or absolute names are skipped), and refuses files larger than :data:`MAX_FILE_BYTES`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import subprocess
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from tfkata import registry

MAX_FILE_BYTES = 1_000_000  # a kata file is a few KB; anything this big is not one
_NAME = re.compile(r"[^A-Za-z0-9_.@+-]+")


class SubmissionError(ValueError):
    """A submission that cannot be read (the message names the path and what to do)."""


@dataclasses.dataclass(frozen=True)
class Submission:
    name: str  # the student's id: the folder / repository / archive name
    path: str  # where it was read from
    sources: dict  # module name -> source text (only katas/<module>.py of registered katas)
    ignored: tuple = ()  # other files that were present and not taken (for the report)

    @property
    def digest(self) -> str:
        """A fingerprint of what is graded (a changed submission is graded again)."""
        h = hashlib.sha256()
        for module in sorted(self.sources):
            h.update(module.encode() + b"\0" + self.sources[module].encode() + b"\0")
        return h.hexdigest()[:16]


def _modules() -> dict[str, str]:
    return {f"{k.module}.py": k.module for k in registry.katas()}


def student_name(path: Path) -> str:
    name = path.name
    for suffix in (".zip", ".bundle", ".git"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return _NAME.sub("_", name).strip("_") or "submission"


def read_submission(path: str | Path) -> Submission:
    """Read one submission; :class:`SubmissionError` names what is wrong."""
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path}: no such file or folder")
    if path.is_file() and zipfile.is_zipfile(path):
        return _from_zip(path)
    if path.is_file() and path.suffix == ".bundle":
        return _from_bundle(path)
    if path.is_dir():
        return _from_folder(path, student_name(path))
    raise SubmissionError(f"{path}: expected a folder, a git repository or bundle, or a .zip holding katas/*.py")


def _from_folder(folder: Path, name: str) -> Submission:
    """``folder/katas/*.py`` (or the kata files directly in ``folder``)."""
    modules = _modules()
    katas = folder / "katas" if (folder / "katas").is_dir() else folder
    sources, ignored = {}, []
    for file in sorted(katas.iterdir()) if katas.is_dir() else []:
        if file.name in modules and file.is_file() and not file.is_symlink():
            sources[modules[file.name]] = _text(file.read_bytes(), file)
        elif file.name not in ("__init__.py", "__pycache__"):
            ignored.append(file.name)
    if not sources:
        raise SubmissionError(f"{folder}: no kata files found (expected katas/k01_graph_session.py and the like)")
    return Submission(name, str(folder), sources, tuple(ignored))


def _from_zip(path: Path) -> Submission:
    modules = _modules()
    sources, ignored = {}, []
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            member = PurePosixPath(info.filename)
            if info.is_dir() or member.is_absolute() or ".." in member.parts:
                continue
            in_katas = len(member.parts) >= 2 and member.parts[-2] == "katas"
            if member.name in modules and (in_katas or len(member.parts) == 1):
                if info.file_size > MAX_FILE_BYTES:
                    raise SubmissionError(f"{path}: {info.filename} is {info.file_size} bytes, not a kata file")
                sources[modules[member.name]] = _text(zf.read(info), Path(info.filename))
            else:
                ignored.append(info.filename)
    if not sources:
        raise SubmissionError(f"{path}: the zip holds no katas/*.py kata file")
    return Submission(student_name(path), str(path), sources, tuple(ignored))


def _from_bundle(path: Path) -> Submission:
    """A ``git bundle``: cloned into a temporary folder (no hooks run), its HEAD's katas/ read."""
    with tempfile.TemporaryDirectory(prefix="tfkata-bundle-") as tmp:
        done = subprocess.run(["git", "clone", "-q", "--no-checkout", str(path), tmp], capture_output=True, text=True)
        if done.returncode != 0:
            raise SubmissionError(f"{path}: not a git bundle git can clone ({done.stderr.strip()[:200]})")
        listing = subprocess.run(["git", "-C", tmp, "ls-tree", "-r", "--name-only", "HEAD", "katas/"],
                                 capture_output=True, text=True)
        modules = _modules()
        sources = {}
        for name in listing.stdout.split():
            base = PurePosixPath(name).name
            if base in modules:
                blob = subprocess.run(["git", "-C", tmp, "show", f"HEAD:{name}"], capture_output=True)
                sources[modules[base]] = _text(blob.stdout, Path(name))
    if not sources:
        raise SubmissionError(f"{path}: the bundle's HEAD has no katas/*.py kata file")
    return Submission(student_name(path), str(path), sources)


def _text(data: bytes, where: Path) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise SubmissionError(f"{where}: {len(data)} bytes is not a kata file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace").read()
