"""The packed engine's LLVM-IR micro-kernel, against NumPy."""

import importlib

import numba
import numpy as np
import pytest

_MK = importlib.import_module("fastconv.kernels._microkernels")


@numba.njit
def _block(wmat, k, panel, t, L, sums):
    _MK.dot_block_4x4(wmat, k, panel, t[0], t[1], t[2], t[3], L, sums)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("L", [16, 48, 576])
def test_dot_block_4x4_sums_each_row_pair(dtype, L):
    rng = np.random.default_rng(L)
    wmat = rng.standard_normal((7, L + 16)).astype(dtype)  # rows longer than L: only L summed
    panel = rng.standard_normal((6, L + 16)).astype(dtype)
    rows = np.array([5, 0, 3, 3])  # any rows, repeats allowed
    sums = np.full(20, np.nan, dtype)
    _block(wmat, 2, panel, rows, L, sums)
    want = wmat[2:6, :L].astype(np.float64) @ panel[rows, :L].astype(np.float64).T
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(sums[:16].reshape(4, 4), want, rtol=tol, atol=tol * np.sqrt(L))
    assert np.isnan(sums[16:]).all()  # writes exactly 16 sums


def test_dot_block_4x4_propagates_nan_and_inf():
    L = 32
    wmat = np.ones((4, L), np.float32)
    panel = np.ones((4, L), np.float32)
    panel[1, 7] = np.nan
    panel[2, 31] = np.inf
    sums = np.empty(16, np.float32)
    _block(wmat, 0, panel, np.arange(4), L, sums)
    got = sums.reshape(4, 4)
    assert (got[:, 0] == L).all() and np.isnan(got[:, 1]).all()
    assert np.isposinf(got[:, 2]).all() and (got[:, 3] == L).all()
