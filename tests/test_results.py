"""Recycled memory for large results (``fastconv/_results.py``)."""

import gc

import numpy as np
import pytest

import fastconv
from fastconv import _results
from fastconv import reference as ref


@pytest.fixture
def small_threshold(monkeypatch):
    """Recycle every result of 1 KiB or more, starting from an empty store."""
    fastconv.release_memory()
    monkeypatch.setattr(_results, "MIN_BYTES", 1024)
    yield
    fastconv.release_memory()


def test_small_results_are_plain_numpy_arrays():
    a = _results.empty((3, 4), np.dtype(np.float32))
    assert a.flags.owndata and a.shape == (3, 4) and a.dtype == np.float32


def test_a_large_result_is_aligned_writable_and_reused_only_when_unreferenced(small_threshold):
    a = _results.empty((8, 50), np.dtype(np.float64))
    assert a.shape == (8, 50) and a.dtype == np.float64
    assert a.flags.c_contiguous and a.flags.writeable and a.ctypes.data % _results.ALIGN == 0
    address = a.ctypes.data
    view = a[2:]
    del a
    gc.collect()
    b = _results.empty((8, 50), np.dtype(np.float64))  # a view of the first result is alive
    assert b.ctypes.data != address
    view[:] = 1.0
    assert not np.shares_memory(view, b)
    del view
    gc.collect()
    assert _results.kept_bytes() == 8 * 50 * 8
    c = _results.empty((40, 10), np.dtype(np.float64))  # same size, another shape: same block
    assert c.ctypes.data == address and _results.kept_bytes() == 0


def test_release_memory_frees_the_kept_blocks(small_threshold):
    a = _results.empty((1000,), np.dtype(np.float32))
    del a
    gc.collect()
    assert fastconv.release_memory() == 4000
    assert _results.kept_bytes() == 0 and fastconv.release_memory() == 0


def test_at_most_max_kept_bytes_are_kept_the_newest_first(small_threshold, monkeypatch):
    monkeypatch.setattr(_results, "MAX_KEPT_BYTES", 5000)
    older = _results.empty((750,), np.dtype(np.float32))  # 3000 bytes
    newer = _results.empty((1000,), np.dtype(np.float32))  # 4000 bytes
    addresses = older.ctypes.data, newer.ctypes.data
    del older
    gc.collect()
    del newer
    gc.collect()
    assert _results.kept_bytes() == 4000  # both would pass 5000: the older block went
    again = _results.empty((1000,), np.dtype(np.float32))
    assert again.ctypes.data == addresses[1] and _results.kept_bytes() == 0


def test_results_in_recycled_memory_hold_no_stale_values(small_threshold):
    # every public function fully writes its result, whatever was there before
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    for trial in range(3):
        dy = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
        np.testing.assert_allclose(fastconv.conv2d(x, w, padding=1),
                                   ref.conv2d(x, w, padding=1), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(fastconv.conv2d_grad_input(x.shape, w, dy, padding=1),
                                   ref.conv2d_grad_input(x.shape, w, dy, padding=1),
                                   rtol=1e-4, atol=1e-4)
        values, idx = fastconv.max_pool2d(x * (trial + 1), 2)
        want_values, want_idx = ref.max_pool2d(x * (trial + 1), 2)
        np.testing.assert_array_equal(values, want_values)
        np.testing.assert_array_equal(idx, want_idx)
        g = fastconv.max_pool2d_backward(values, idx, x.shape)
        np.testing.assert_array_equal(g, ref.max_pool2d_backward(values, idx, x.shape))
        del values, idx, g
        gc.collect()
    assert _results.kept_bytes() > 0  # the loop did recycle


def test_results_from_align_min_bytes_are_cache_line_aligned(monkeypatch):
    # the kernels write results this large with whole-line non-temporal stores
    monkeypatch.setattr(_results, "ALIGN_MIN_BYTES", 4096)
    for n in (512, 513, 1000, 4099):
        a = _results.empty((n,), np.dtype(np.float64))
        assert a.shape == (n,) and a.flags.c_contiguous and a.flags.writeable
        assert a.ctypes.data % _results.ALIGN == 0
        a[:] = 1.0
    assert _results.empty((511,), np.dtype(np.float64)).flags.owndata  # below: plain np.empty
