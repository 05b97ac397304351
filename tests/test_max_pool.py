"""max_pool2d / max_pool1d against the NumPy reference: values and indices exactly."""

import importlib
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastconv
from fastconv import reference as ref

from _cases import pool_cases, pool_input

FUNCS = {
    2: (fastconv.max_pool2d, fastconv.max_pool2d_backward, ref.max_pool2d, ref.max_pool2d_backward),
    1: (fastconv.max_pool1d, fastconv.max_pool1d_backward, ref.max_pool1d, ref.max_pool1d_backward),
}


def _run(case, x, spatial):
    fwd, bwd, rfwd, rbwd = FUNCS[spatial]
    out, idx = fwd(x, **case.kwargs)
    rout, ridx = rfwd(x.astype(np.float64), **case.kwargs)
    assert out.dtype == x.dtype and idx.dtype == np.int64
    assert out.shape == rout.shape == idx.shape
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(out, rout.astype(x.dtype))  # NaN == NaN here

    g = np.random.default_rng(0).integers(-3, 4, out.shape).astype(x.dtype)
    gx = bwd(g, idx, x.shape)
    assert gx.dtype == x.dtype and gx.shape == x.shape
    # small integers: sums are exact in any order, so compare exactly
    np.testing.assert_array_equal(gx, rbwd(g.astype(np.float64), ridx, x.shape))

    # the same results written into caller-supplied arrays that hold garbage
    bufs = (np.full(out.shape, np.nan, x.dtype), np.full(idx.shape, -7, np.int64))
    returned = fwd(x, **case.kwargs, out=bufs)
    assert returned[0] is bufs[0] and returned[1] is bufs[1]
    np.testing.assert_array_equal(bufs[0], out)
    np.testing.assert_array_equal(bufs[1], idx)
    gbuf = np.full(x.shape, np.nan, x.dtype)
    assert bwd(g, idx, x.shape, out=gbuf) is gbuf
    np.testing.assert_array_equal(gbuf, gx)


@given(case=pool_cases(spatial=2), seed=st.integers(0, 2**16),
       style=st.sampled_from(["uniform", "ties", "special"]))
def test_max_pool2d_matches_reference(case, seed, style):
    _run(case, pool_input(case.x_shape, case.dtype, seed, style), 2)


@given(case=pool_cases(spatial=1, max_size=20), seed=st.integers(0, 2**16),
       style=st.sampled_from(["uniform", "ties", "special"]))
def test_max_pool1d_matches_reference(case, seed, style):
    _run(case, pool_input(case.x_shape, case.dtype, seed, style), 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_go_to_first_maximum(dtype):
    x = np.array([[[[1, 3, 3], [3, 0, 3], [2, 3, 3]]]], dtype)
    out, idx = fastconv.max_pool2d(x, 2, stride=1)
    np.testing.assert_array_equal(out[0, 0], [[3, 3], [3, 3]])
    np.testing.assert_array_equal(idx[0, 0], [[1, 1], [3, 5]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_wins_with_index_of_last_nan(dtype):
    x = np.array([[[[np.nan, 5], [np.nan, 7]]]], dtype)
    out, idx = fastconv.max_pool2d(x, 2)
    assert np.isnan(out[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 2
    x = np.array([[[[9, np.nan], [1, 2]]]], dtype)  # NaN after the maximum still wins
    out, idx = fastconv.max_pool2d(x, 2)
    assert np.isnan(out[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1


def test_all_minus_inf_window_reports_first_in_bounds_element():
    x = np.full((1, 1, 4, 4), -np.inf)
    out, idx = fastconv.max_pool2d(x, 3, stride=2, padding=1)
    assert np.all(out == -np.inf)
    # windows start at -1 (padding): first in-bounds element is row/col 0, then 1
    np.testing.assert_array_equal(idx[0, 0], [[0, 1], [4, 5]])


def test_ceil_mode_drops_window_starting_in_padding():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    out, _ = fastconv.max_pool2d(x, 2, stride=2, ceil_mode=True)
    assert out.shape == (1, 1, 3, 3)  # last window holds only row/col 4
    np.testing.assert_array_equal(out[0, 0, 2], [21, 23, 24])
    # (5 + 2*1 - 1 - 1 + 1) // 2 + 1 = 4, but the 4th window would start at 6 - 1 = 5,
    # inside the right padding, so it is dropped
    out, _ = fastconv.max_pool2d(x, 2, stride=2, padding=1, ceil_mode=True)
    assert out.shape == (1, 1, 3, 3)
    out, _ = fastconv.max_pool2d(np.zeros((1, 1, 6, 6)), 2, stride=2, padding=1, ceil_mode=True)
    assert out.shape == (1, 1, 4, 4)


def test_overlapping_windows_accumulate_gradient():
    x = np.array([[[[0, 0, 0], [0, 9, 0], [0, 0, 0]]]], np.float64)
    out, idx = fastconv.max_pool2d(x, 2, stride=1)
    assert np.all(idx == 4)
    gx = fastconv.max_pool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), idx, x.shape)
    expect = np.zeros((3, 3))
    expect[1, 1] = 10.0
    np.testing.assert_array_equal(gx[0, 0], expect)


def test_backward_routes_only_to_argmax():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 8, 8))
    out, idx = fastconv.max_pool2d(x, 2)
    g = rng.standard_normal(out.shape)
    gx = fastconv.max_pool2d_backward(g, idx, x.shape)
    assert np.count_nonzero(gx) == out.size  # non-overlapping: one winner per window
    np.testing.assert_array_equal(np.take_along_axis(gx.reshape(2, 3, -1),
                                                     idx.reshape(2, 3, -1), axis=2),
                                  g.reshape(2, 3, -1))


_POOL_KERNELS = importlib.import_module("fastconv.kernels.max_pool2d")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_kernel_skips_and_counts_indices_outside_the_plane(dtype):
    # the public layer leaves the range check of its own results to the kernel
    rng = np.random.default_rng(5)
    g = rng.standard_normal((2, 3, 2, 2)).astype(dtype)
    idx = np.stack([rng.permutation(16)[:4] for _ in range(6)]).reshape(g.shape)  # no sums
    idx[0, 1, 0, 0], idx[1, 2, 1, 1], idx[1, 0, 0, 1] = -1, 16, -(1 << 62)
    guarded = np.full((2 * 3 * 16 + 32,), 7, dtype)  # 16 guard elements on each side
    gx = guarded[16:-16].reshape(2, 3, 4, 4)
    assert _POOL_KERNELS.max_pool2d_backward(g, idx, gx) == 3
    keep = (idx >= 0) & (idx < 16)
    expect = ref.max_pool2d_backward(np.where(keep, g, 0), np.where(keep, idx, 0), gx.shape)
    np.testing.assert_array_equal(gx, expect.astype(dtype))
    assert np.all(guarded[:16] == 7) and np.all(guarded[-16:] == 7)
    assert _POOL_KERNELS.max_pool2d_backward(g, np.where(keep, idx, 0), gx) == 0


def test_backward_with_an_index_out_of_range_leaves_out_untouched():
    g = np.ones((1, 1, 2, 2))
    idx = np.array([[[[0, 1], [2, 99]]]])
    out = np.full((1, 1, 4, 4), 5.0)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 16\).*\[0, 99\]"):
        fastconv.max_pool2d_backward(g, idx, (1, 1, 4, 4), out=out)
    assert np.all(out == 5.0)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 16\).*\[0, 99\]"):
        fastconv.max_pool2d_backward(g, idx, (1, 1, 4, 4))


@given(case=pool_cases(spatial=2), seed=st.integers(0, 2**16),
       style=st.sampled_from(["uniform", "ties", "special"]))
def test_max_pool2d_with_prefetching_matches_reference(case, seed, style):
    # inputs above _PREFETCH_MIN_BYTES (with windows of several short rows)
    # prefetch rows ahead, also past the plane's and the array's ends: a
    # hint that must not change any result
    with mock.patch.object(_POOL_KERNELS, "_PREFETCH_MIN_BYTES", -1):
        _run(case, pool_input(case.x_shape, case.dtype, seed, style), 2)


@pytest.mark.parametrize("kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1}])
def test_max_pool2d_of_an_input_larger_than_the_prefetch_threshold(kwargs):
    # float64 rows of 1600 bytes: short enough to be prefetched
    x = np.random.default_rng(1).standard_normal((4, 8, 400, 200))
    assert x.nbytes > _POOL_KERNELS._PREFETCH_MIN_BYTES
    assert x.shape[3] * x.itemsize <= _POOL_KERNELS._PREFETCH_MAX_ROW_BYTES
    out, idx = fastconv.max_pool2d(x, **kwargs)
    rout, ridx = ref.max_pool2d(x, **kwargs)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(out, rout)
