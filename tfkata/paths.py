"""Where things are: the checkout, a kata's output folder, the data folders. One rule for each.

* :func:`repo_root`: the tf-katas checkout (the folder holding ``katas/`` and ``solutions/``).
* :func:`reference_file`: a kata's reference solution, ``<repo>/solutions/<module>.py`` (or the package
  ``$TFKATA_REFERENCE`` names: ``kata grade`` renames solutions/ in a graded copy).
* :func:`output_dir`: ``<repo>/kata-output/<id>/``, where a kata writes its pictures (k04's digits
  and curve, k08's heatmaps); katas, solutions and the ``kata`` command all use it.
* :func:`data_file_candidates`: where a data file is looked for, in order: ``$KATA_DATA_DIR``, then
  the copy bundled in ``tfkata/data/``, then the per-user cache (:func:`cache_dir`), then any extra
  folders the loader names (e.g. Keras's ``~/.keras/datasets``). :func:`download_dir` is where a
  download goes: ``$KATA_DATA_DIR`` if set, else the cache.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

OUTPUT_DIRNAME = "kata-output"
DATA_DIR_ENV = "KATA_DATA_DIR"
BUNDLED_DATA = Path(__file__).resolve().parent / "data"
REFERENCE_ENV = "TFKATA_REFERENCE"  # kata grade renames solutions/ in a graded copy (a submission cannot
                                   # simply `import solutions`) and names the new package here


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The tf-katas checkout: the folder at or above ``start`` (default: cwd) holding katas/ and solutions/."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "katas").is_dir() and (folder / "solutions").is_dir():
            return folder
    folder = Path(__file__).resolve().parent.parent  # an editable install: the package sits in the checkout
    if (folder / "katas").is_dir():
        return folder
    raise FileNotFoundError(
        f"no tf-katas checkout at or above {here}: cd into the folder you cloned (it holds katas/)"
    )


def reference_package() -> str:
    """The package of the reference solutions: ``solutions``, or the one ``$TFKATA_REFERENCE`` names."""
    package = os.environ.get(REFERENCE_ENV, "solutions")
    if not package.isidentifier():
        raise ValueError(f"{REFERENCE_ENV} must name a package folder of the checkout, got {package!r}")
    return package


def reference_file(module: str, root: str | os.PathLike | None = None) -> Path:
    """The reference solution of the kata module ``module`` (``k01_graph_session``) in the checkout ``root``."""
    return Path(root or repo_root()) / reference_package() / f"{module}.py"


def output_dir(kata_id: str, root: str | os.PathLike | None = None, create: bool = True) -> Path:
    """``<repo>/kata-output/<id>/`` (created unless ``create=False``)."""
    from tfkata import registry

    folder = Path(root or repo_root()) / OUTPUT_DIRNAME / registry.get(kata_id).id
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def env_data_dir() -> Path | None:
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tf-katas`` (default ``~/.cache/tf-katas``; ``%LOCALAPPDATA%\\tf-katas`` on Windows)."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "tf-katas"
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join("~", ".cache")
    return Path(base).expanduser() / "tf-katas"


def download_dir() -> Path:
    """Where a downloaded file goes: ``$KATA_DATA_DIR`` if set, else :func:`cache_dir` (not created here)."""
    return env_data_dir() or cache_dir()


def data_file_candidates(name: str, *, bundled: Path | None = None, extra: tuple[Path, ...] = ()) -> list[Path]:
    """Every place ``name`` is looked for, in order: ``$KATA_DATA_DIR`` (only when set), the bundled
    file (``bundled``, default ``tfkata/data/<name>``), the per-user cache, then the ``extra`` folders."""
    env = env_data_dir()
    out = [env / name] if env else []
    out.append(bundled if bundled is not None else BUNDLED_DATA / name)
    out += [cache_dir() / name] + [Path(folder).expanduser() / name for folder in extra]
    return list(dict.fromkeys(out))
