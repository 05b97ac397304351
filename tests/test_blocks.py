"""The register blocks written in LLVM IR (``kernels/_blocks.py``), against NumPy."""

import ctypes
import importlib
import mmap
import sys

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


_DOT_3X3 = _MK.dot_block(3, 3)


@numba.njit
def _block_3x3(a, a_rows, b, b_rows, L, sums):
    _DOT_3X3(a, (a_rows[0], a_rows[1], a_rows[2]), b, (b_rows[0], b_rows[1], b_rows[2]), L, sums)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("L", [0, 5, 16, 43, 200])
def test_dot_block_3x3_writes_exactly_nine_sums(dtype, L):
    # 9 sums fill one float32 vector partly and spill one lane into a second
    # float64 vector: only the 9 sums are stored
    rng = np.random.default_rng(L)
    a = rng.standard_normal(L + 40).astype(dtype)
    b = rng.standard_normal(L + 30).astype(dtype)
    a_rows, b_rows = np.array([40, 3, 17]), np.array([0, 30, 1])
    sums = np.full(20, np.nan, dtype)
    _block_3x3(a, a_rows, b, b_rows, L, sums)
    fa, fb = a.astype(np.float64), b.astype(np.float64)
    want = np.array([[fa[i:i + L] @ fb[j:j + L] for j in b_rows] for i in a_rows])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(sums[:9].reshape(3, 3), want, rtol=tol, atol=tol * np.sqrt(L))
    assert np.isnan(sums[9:]).all()


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


def _taps(channels, vectors, single=False):
    block = _MK.taps_block(channels, vectors, single)

    @numba.njit
    def call(src, base, eoff, E, w1, kw, acc, a0, TA):
        block(src, base, eoff, E, w1, kw, acc, a0, TA)
    return call


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels, vectors, single",
                         [(4, 4, False), (4, 1, False), (3, 4, False), (1, 8, False),
                          (4, 1, True), (3, 1, True), (1, 1, True)])
@pytest.mark.parametrize("E", [0, 1, 27])
def test_taps_block_sums_weighted_taps(dtype, channels, vectors, single, E):
    rng = np.random.default_rng(E)
    lanes = 1 if single else 64 // np.dtype(dtype).itemsize
    width = vectors * lanes
    src = rng.standard_normal(500 + width).astype(dtype)
    eoff = rng.integers(0, 400, E).astype(np.int64)
    w1 = rng.standard_normal(5 + channels * E).astype(dtype)
    TA = width + 3  # rows need not be vector-aligned
    acc = np.full(7 + channels * TA, np.nan, dtype)
    _taps(channels, vectors, single)(src, 11, eoff, E, w1, 5, acc, 7, TA)
    w = w1[5:5 + channels * E].reshape(channels, E).astype(np.float64)
    taps = np.array([src[11 + o:11 + o + width] for o in eoff], np.float64).reshape(E, width)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for kk in range(channels):
        row = acc[7 + kk * TA:7 + kk * TA + width]
        np.testing.assert_allclose(row, w[kk] @ taps, rtol=tol, atol=tol * 10)
        assert np.isnan(acc[7 + kk * TA + width:7 + (kk + 1) * TA]).all()  # nothing past the block
    assert np.isnan(acc[:7]).all()


@numba.njit
def _copy_stride2(src, si, dst, di, n):
    _MK.copy_stride2(src, si, dst, di, n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_copy_stride2_copies_every_other_element(dtype):
    rng = np.random.default_rng(0)
    src = rng.standard_normal(200).astype(dtype)
    src[[3, 40]] = np.nan, np.inf  # copied bit for bit
    for n in [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 56, 80]:
        for si in (0, 1, 3):
            for di in (0, 5):
                dst = np.full(100, -1.0, dtype)
                _copy_stride2(src, si, dst, di, n)
                want = np.full(100, -1.0, dtype)
                want[di:di + n] = src[si:si + 2 * n:2]
                np.testing.assert_array_equal(dst, want)


def _guarded(n_items, dtype):
    """A writable array of ``n_items`` whose last element ends a page followed by an unreadable one.

    Returns the array and the mmap holding it (keep it alive).
    """
    page = mmap.PAGESIZE
    buf = mmap.mmap(-1, 2 * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.mprotect(ctypes.c_void_p(base + page), ctypes.c_size_t(page), 0) == 0  # PROT_NONE
    first_page = np.frombuffer(buf, dtype, count=page // np.dtype(dtype).itemsize)
    return first_page[-n_items:], buf


@pytest.mark.skipif(sys.platform != "linux", reason="needs mmap and mprotect")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 5, 8, 16, 17, 24, 33])
def test_copy_stride2_reads_nothing_past_its_last_element(dtype, n):
    # the run ends at the array's last element, right before an unreadable
    # page: a read past it would crash the test process
    src, buf = _guarded(2 * n - 1, dtype)
    src[:] = np.arange(2 * n - 1)
    dst = np.empty(n, dtype)
    _copy_stride2(src, 0, dst, 0, n)
    np.testing.assert_array_equal(dst, src[::2])
    del src


@numba.njit
def _stream_rows(src, si, add, dst, di, n):
    _MK.stream_row(src, si, add, dst, di, n)
    _MK.store_fence()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stream_row_adds_and_writes_exactly_its_run(dtype):
    # non-temporal stores for the whole lines of the run, normal ones at its
    # ends, wherever those fall: every offset and length around a line
    rng = np.random.default_rng(0)
    src = rng.standard_normal(300).astype(dtype)
    src[[4, 70]] = np.nan, -np.inf
    lanes = 64 // np.dtype(dtype).itemsize
    raw = np.empty(400 + lanes, dtype)
    start = (-raw.ctypes.data % 64) // np.dtype(dtype).itemsize
    for n in [0, 1, lanes - 1, lanes, lanes + 1, 2 * lanes + 3, 100]:
        for si in (0, 3):
            for di in range(lanes + 1):
                dst = raw[start:start + 400]
                dst[:] = -7.0
                _stream_rows(src, si, dtype(0.5), dst, di, n)
                want = np.full(400, -7.0, dtype)
                want[di:di + n] = src[si:si + n] + dtype(0.5)
                np.testing.assert_array_equal(dst, want)
