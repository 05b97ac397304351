"""The register blocks written in LLVM IR (``kernels/_blocks.py``), against NumPy."""

import importlib

import numba
import numpy as np
import pytest

_MK = importlib.import_module("fastconv.kernels._blocks")


@numba.njit
def _block(a, a_rows, b, b_rows, L, sums):
    _MK.dot_block_4x4(a, (a_rows[0], a_rows[1], a_rows[2], a_rows[3]),
                      b, (b_rows[0], b_rows[1], b_rows[2], b_rows[3]), L, sums)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("L", [0, 1, 7, 16, 45, 48, 576])
def test_dot_block_4x4_sums_products_of_runs(dtype, L):
    rng = np.random.default_rng(L)
    a = rng.standard_normal((7, L + 21)).astype(dtype)
    b = rng.standard_normal((3, 2, L + 9)).astype(dtype)  # any ndim: runs are flat
    a_rows = np.array([5 * a.shape[1] + 3, 0, 2 * a.shape[1] + 20, 2 * a.shape[1] + 20])
    b_rows = np.array([b[0, 0].size * 5, 1, b[0, 0].size, 8])  # runs may overlap
    sums = np.full(20, np.nan, dtype)
    _block(a, a_rows, b, b_rows, L, sums)
    fa = a.ravel().astype(np.float64)
    fb = b.ravel().astype(np.float64)
    want = np.array([[fa[i:i + L] @ fb[j:j + L] for j in b_rows] for i in a_rows])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(sums[:16].reshape(4, 4), want, rtol=tol, atol=tol * np.sqrt(L))
    assert np.isnan(sums[16:]).all()  # writes exactly 16 sums


@pytest.mark.parametrize("L", [32, 35])
def test_dot_block_4x4_propagates_nan_and_inf(L):
    a = np.ones((4, L), np.float32)
    b = np.ones((4, L), np.float32)
    b[1, 7] = np.nan
    b[2, L - 1] = np.inf  # in the scalar tail when L = 35
    sums = np.empty(16, np.float32)
    _block(a, np.arange(4) * L, b, np.arange(4) * L, L, sums)
    got = sums.reshape(4, 4)
    assert (got[:, 0] == L).all() and np.isnan(got[:, 1]).all()
    assert np.isposinf(got[:, 2]).all() and (got[:, 3] == L).all()


def _taps(channels, vectors):
    block = _MK.taps_block(channels, vectors)

    @numba.njit
    def call(src, base, eoff, E, w1, kw, acc, a0, TA):
        block(src, base, eoff, E, w1, kw, acc, a0, TA)
    return call


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels, vectors", [(4, 4), (4, 1), (3, 4), (1, 8)])
@pytest.mark.parametrize("E", [0, 1, 27])
def test_taps_block_sums_weighted_taps(dtype, channels, vectors, E):
    rng = np.random.default_rng(E)
    lanes = 64 // np.dtype(dtype).itemsize
    width = vectors * lanes
    src = rng.standard_normal(500 + width).astype(dtype)
    eoff = rng.integers(0, 400, E).astype(np.int64)
    w1 = rng.standard_normal(5 + channels * E).astype(dtype)
    TA = width + 3  # rows need not be vector-aligned
    acc = np.full(7 + channels * TA, np.nan, dtype)
    _taps(channels, vectors)(src, 11, eoff, E, w1, 5, acc, 7, TA)
    w = w1[5:5 + channels * E].reshape(channels, E).astype(np.float64)
    taps = np.array([src[11 + o:11 + o + width] for o in eoff], np.float64).reshape(E, width)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for kk in range(channels):
        row = acc[7 + kk * TA:7 + kk * TA + width]
        np.testing.assert_allclose(row, w[kk] @ taps, rtol=tol, atol=tol * 10)
        assert np.isnan(acc[7 + kk * TA + width:7 + (kk + 1) * TA]).all()  # nothing past the block
    assert np.isnan(acc[:7]).all()
