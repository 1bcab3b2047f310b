"""Tests of the data sets: IDX parsing, MNIST checks and the digits split."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from mon2hls.data import DATA_DIR_VARIABLE, load_dataset, load_digits, load_mnist, parse_idx, read_idx
from mon2hls.data.mnist import MNIST_FILES
from mon2hls.errors import DataError


def idx_bytes(array: np.ndarray) -> bytes:
    type_codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, type_codes[array.dtype], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_fake_mnist(folder: Path, compress: bool) -> None:
    """Write MNIST-named IDX files with small random content (their checksums are wrong)."""
    rng = np.random.default_rng(0)
    for images_file, labels_file in MNIST_FILES.values():
        images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=5, dtype=np.uint8)
        for idx_file, array in ((images_file, images), (labels_file, labels)):
            data = idx_bytes(array)
            if compress:
                (folder / (idx_file.stem + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / idx_file.stem).write_bytes(data)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_plain_and_gzip(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(images)
    path = tmp_path / "images.idx"
    path.write_bytes(gzip.compress(data) if compress else data)

    result = read_idx(path)

    assert result.dtype == np.uint8
    assert result.shape == (2, 3, 4)
    np.testing.assert_array_equal(result, images)


def test_parse_idx_big_endian_int32():
    values = np.array([1, -2, 70000], dtype=">i4")

    result = parse_idx(idx_bytes(values))

    np.testing.assert_array_equal(result, [1, -2, 70000])
    assert result.dtype == np.dtype(np.int32)


def test_parse_idx_rejects_truncated_file():
    data = idx_bytes(np.zeros((4, 4), dtype=np.uint8))[:-3]

    with pytest.raises(DataError, match=r"^short\.idx has 25 bytes, but its header \(shape \(4, 4\), uint8\) requires 28$"):
        parse_idx(data, "short.idx")


def test_parse_idx_rejects_bad_magic():
    with pytest.raises(DataError, match=r"^bad\.idx is not an IDX file"):
        parse_idx(b"PK\x03\x04rest", "bad.idx")


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_checksum_mismatch(tmp_path, compress):
    write_fake_mnist(tmp_path, compress)

    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.* is corrupt or not the MNIST file") as info:
        load_mnist("test", tmp_path)
    assert str(tmp_path) in str(info.value)
    assert "2646ac647ad5339dbf082846283269ea" in str(info.value)


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_unverified_reads_fake_files(tmp_path, compress):
    write_fake_mnist(tmp_path, compress)

    dataset = load_mnist("train", tmp_path, verify=False)

    assert dataset.raw.shape == (5, 784)
    assert dataset.labels.dtype == np.int64


def test_load_mnist_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"

    with pytest.raises(DataError, match=r"does not exist or is not a folder") as info:
        load_mnist("test", missing)
    assert str(missing) in str(info.value)
    assert DATA_DIR_VARIABLE in str(info.value)


def test_load_mnist_folder_without_files(tmp_path):
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\[\.gz\] not found in") as info:
        load_mnist("test", tmp_path)
    assert "--data-dir" in str(info.value)


def test_load_mnist_reads_environment_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(tmp_path / "absent"))

    with pytest.raises(DataError, match=rf"from {DATA_DIR_VARIABLE}"):
        load_mnist("test")


def test_load_mnist_unknown_split(tmp_path):
    with pytest.raises(DataError, match=r"unknown MNIST split 'valid'; choose one of: train, test"):
        load_mnist("valid", tmp_path)


@pytest.mark.shared
def test_mnist_test_split(mnist_dir):
    dataset = load_mnist("test", mnist_dir)

    assert dataset.raw.shape == (10000, 784)
    assert dataset.raw.dtype == np.uint8
    assert dataset.raw.max() == 255
    counts = np.bincount(dataset.labels, minlength=10)
    assert counts.sum() == 10000
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert dataset.labels[:5].tolist() == [7, 2, 1, 0, 4]


@pytest.mark.shared
def test_mnist_train_split(mnist_dir):
    dataset = load_mnist("train", mnist_dir)

    assert dataset.raw.shape == (60000, 784)
    counts = np.bincount(dataset.labels, minlength=10)
    assert counts.sum() == 60000
    assert counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.mark.shared
def test_mnist_features_normalized(mnist_dir):
    dataset = load_mnist("test", mnist_dir)

    features = dataset.model_inputs()

    assert features.dtype == np.float64
    assert features.min() == pytest.approx(-0.1307 / 0.3081)
    assert features.max() == pytest.approx((1.0 - 0.1307) / 0.3081)


def test_digits_split():
    train = load_digits("train")
    test = load_digits("test")

    assert train.raw.shape == (1437, 64)
    assert test.raw.shape == (360, 64)
    assert test.raw.max() == 16
    assert np.bincount(test.labels).tolist() == [36, 36, 35, 37, 36, 37, 36, 36, 35, 36]


def test_digits_split_is_deterministic():
    first = load_digits("test")

    second = load_dataset("digits", "test")

    np.testing.assert_array_equal(first.raw, second.raw)
    np.testing.assert_array_equal(first.labels, second.labels)


def test_dataset_head():
    dataset = load_digits("test")

    assert len(dataset.head(10)) == 10
    assert dataset.head(None) is dataset
    with pytest.raises(DataError, match=r"sample limit must be a positive whole number, not 0"):
        dataset.head(0)


def test_load_dataset_unknown_name():
    with pytest.raises(DataError, match=r"unknown data set 'cifar10'; choose one of: mnist, digits"):
        load_dataset("cifar10", "test")
