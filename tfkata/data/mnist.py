"""MNIST for the katas: the raw uint8 arrays, verified, offline.

``load_mnist()`` returns a dict, not Keras' ``((x_train, y_train), (x_test, y_test))`` tuple:
``{"x_train": (60000, 28, 28) uint8, "y_train": (60000,) uint8, "x_test": (10000, 28, 28) uint8,
"y_test": (10000,) uint8}`` in the original order (the Keras ``mnist.npz`` layout). It uses the first file that exists of:

1. ``$KATA_DATA_DIR/mnist.npz`` (when ``KATA_DATA_DIR`` is set),
2. the copy bundled with this package (``tfkata/data/mnist.npz``, see ``MNIST.md`` for provenance
   and licence),
3. the Keras cache, ``~/.keras/datasets/mnist.npz``.

The file is read with ``np.load(..., allow_pickle=False)`` and every array's shape, dtype and
sha256 (of its raw bytes) is checked. A missing or corrupt file raises :class:`MnistDataError`
with one sentence naming the fix. Verified arrays are cached per process (keyed on the file's
path, size and mtime) and handed out read-only, so tests and katas never re-hash or share
mutations; normalising pixels and one-hot labels is the katas' job.
"""
from __future__ import annotations

import hashlib
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from tfkata.paths import data_file_candidates

FILENAME = "mnist.npz"
BUNDLED = Path(__file__).with_name(FILENAME)
KERAS_CACHE = Path("~/.keras/datasets") / FILENAME

# (shape, sha256 of np.ascontiguousarray(a).tobytes()) for each array; dtype is uint8 for all.
ARRAYS = {
    "x_train": ((60000, 28, 28), "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757"),
    "y_train": ((60000,), "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13"),
    "x_test": ((10000, 28, 28), "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161"),
    "y_test": ((10000,), "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5"),
}

_FIX = (
    "reinstall tf-katas or restore tfkata/data/mnist.npz from git (git checkout -- tfkata/data/mnist.npz), "
    "or put the Keras-layout mnist.npz in a folder and set KATA_DATA_DIR to that folder"
)


class MnistDataError(RuntimeError):
    """MNIST could not be found or failed its checks; the message names the fix."""


def candidates() -> list[Path]:
    """The places searched, in order (tfkata.paths: ``$KATA_DATA_DIR`` when set, the bundled file, the
    tf-katas cache, Keras's own cache)."""
    return data_file_candidates(FILENAME, bundled=BUNDLED, extra=(KERAS_CACHE.parent,))


def find_mnist() -> Path:
    """The first candidate file that exists, else :class:`MnistDataError`."""
    paths = candidates()
    for path in paths:
        if path.is_file():
            return path
    searched = ", ".join(str(p) for p in paths)
    raise MnistDataError(f"mnist.npz not found (searched {searched}): {_FIX}.")


def load_mnist() -> dict:
    """A DICT of the four verified MNIST arrays (read-only uint8), from the file :func:`find_mnist` finds.

    Returns ``{"x_train": uint8 [60000, 28, 28], "y_train": uint8 [60000], "x_test": uint8 [10000,
    28, 28], "y_test": uint8 [10000]}``: pixels 0..255, labels 0..9, in the original order. It is not
    Keras' ``mnist.load_data()`` tuple, so ``(x, y), (x2, y2) = load_mnist()`` does not work; index it
    by name::

        raw = load_mnist()
        x_train, y_train = raw["x_train"], raw["y_train"]

    The arrays are read-only: make a float copy (``raw["x_train"].astype(np.float32) / 255``)
    before changing them.
    """
    path = find_mnist().resolve()
    stat = path.stat()
    return dict(_load_verified(str(path), stat.st_size, stat.st_mtime_ns))


@lru_cache(maxsize=4)
def _load_verified(path: str, size: int, mtime_ns: int) -> tuple:
    def bad(why: str) -> MnistDataError:
        return MnistDataError(f"{path} is not a valid MNIST file ({why}): {_FIX}.")

    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = sorted(set(ARRAYS) - set(npz.files))
            if missing:
                raise bad(f"missing arrays {missing}")
            arrays = {key: npz[key] for key in ARRAYS}
    except MnistDataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise bad(f"cannot be read: {type(exc).__name__}: {exc}") from exc
    for key, (shape, digest) in ARRAYS.items():
        a = arrays[key]
        if a.dtype != np.uint8 or a.shape != shape:
            raise bad(f"{key} is {a.dtype} {a.shape}, expected uint8 {shape}")
        if hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() != digest:
            raise bad(f"the sha256 of {key} does not match")
        a.setflags(write=False)
    return tuple(arrays.items())
