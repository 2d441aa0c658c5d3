"""Harness tests for tfkata/data/mnist.py: the bundled file, the search order (KATA_DATA_DIR, bundled,
Keras cache), the checksums, the in-process cache, and one clear error for a missing or bad file."""
import shutil

import numpy as np
import pytest

from tfkata.data import mnist as M

BUNDLED = M.BUNDLED  # the real file, before a test hides it


@pytest.fixture
def no_defaults(tmp_path, monkeypatch):
    """Nothing to find unless the test puts it there: no KATA_DATA_DIR, no bundled file, empty HOME."""
    monkeypatch.delenv("KATA_DATA_DIR", raising=False)
    monkeypatch.setattr(M, "BUNDLED", tmp_path / "bundled" / "mnist.npz")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def _write_npz(folder, **changes):
    folder.mkdir(parents=True, exist_ok=True)
    with np.load(BUNDLED, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(folder / "mnist.npz", **arrays)
    return folder / "mnist.npz"


def test_bundled_file_loads_verified_and_read_only(monkeypatch):
    monkeypatch.delenv("KATA_DATA_DIR", raising=False)
    data = M.load_mnist()
    assert sorted(data) == ["x_test", "x_train", "y_test", "y_train"]
    for key, (shape, _) in M.ARRAYS.items():
        assert data[key].shape == shape and data[key].dtype == np.uint8
        assert not data[key].flags.writeable, "cached arrays are shared: they must be read-only"
    assert np.bincount(data["y_test"]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(float(data["x_train"].mean()) - 33.3184) < 1e-3


def test_cached_per_process(monkeypatch):
    monkeypatch.delenv("KATA_DATA_DIR", raising=False)
    first, second = M.load_mnist(), M.load_mnist()
    assert first is not second, "each call returns its own dict"
    assert all(first[k] is second[k] for k in first), "the verified arrays are cached, not re-read and re-hashed"


def test_kata_data_dir_comes_first(no_defaults, monkeypatch):
    folder = no_defaults / "mine"
    path = _write_npz(folder)
    shutil.copy(path, no_defaults / "copy.npz")
    monkeypatch.setenv("KATA_DATA_DIR", str(folder))
    assert M.find_mnist() == path
    assert M.load_mnist()["y_train"].shape == (60000,)


def test_keras_cache_is_the_last_resort(no_defaults):
    path = _write_npz(no_defaults / "home" / ".keras" / "datasets")
    assert M.find_mnist() == path
    assert M.load_mnist()["x_test"].shape == (10000, 28, 28)


def test_missing_everywhere_names_the_fix(no_defaults):
    with pytest.raises(M.MnistDataError) as err:
        M.load_mnist()
    text = str(err.value)
    assert "not found" in text and "KATA_DATA_DIR" in text and "git checkout" in text
    assert str(M.BUNDLED) in text, "the message lists the places searched"


def test_not_a_zip(no_defaults, monkeypatch):
    folder = no_defaults / "bad"
    folder.mkdir()
    (folder / "mnist.npz").write_bytes(b"<html>404 not found</html>")
    monkeypatch.setenv("KATA_DATA_DIR", str(folder))
    with pytest.raises(M.MnistDataError, match="not a valid MNIST file.*cannot be read.*KATA_DATA_DIR"):
        M.load_mnist()


def test_tampered_array_fails_its_checksum(no_defaults, monkeypatch):
    with np.load(BUNDLED) as npz:
        x_test = npz["x_test"]
    x_test[0, 0, 0] ^= 1
    monkeypatch.setenv("KATA_DATA_DIR", str(_write_npz(no_defaults / "t", x_test=x_test).parent))
    with pytest.raises(M.MnistDataError, match="sha256 of x_test does not match"):
        M.load_mnist()


def test_wrong_dtype_and_missing_array(no_defaults, monkeypatch):
    with np.load(BUNDLED) as npz:
        y = npz["y_train"].astype(np.int64)
    monkeypatch.setenv("KATA_DATA_DIR", str(_write_npz(no_defaults / "d", y_train=y).parent))
    with pytest.raises(M.MnistDataError, match="y_train is int64"):
        M.load_mnist()
    monkeypatch.setenv("KATA_DATA_DIR", str(_write_npz(no_defaults / "m", y_test=None).parent))
    with pytest.raises(M.MnistDataError, match=r"missing arrays \['y_test'\]"):
        M.load_mnist()


def test_never_unpickles(no_defaults, monkeypatch):
    labels = np.empty(60000, dtype=object)
    labels[:] = 0
    monkeypatch.setenv("KATA_DATA_DIR", str(_write_npz(no_defaults / "p", y_train=labels).parent))
    with pytest.raises(M.MnistDataError, match="cannot be read"):
        M.load_mnist()
