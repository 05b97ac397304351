"""One thread and two threads give bit-identical results (a race would show here)."""

import numba
import numpy as np
import pytest

import fastconv

pytestmark = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                                reason="needs at least 2 Numba threads")


def _run_everything(dtype):
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, (6, 8, 37, 29)).astype(dtype)
    w = rng.uniform(-1, 1, (12, 4, 3, 5)).astype(dtype)
    kw = dict(stride=(1, 2), padding=(1, 2), groups=2)
    y = fastconv.conv2d(x, w, None, **kw)
    g = rng.uniform(-1, 1, y.shape).astype(dtype)
    # long reduction, many channels: the packed engine (the one above is direct)
    xp = rng.uniform(-1, 1, (3, 48, 19, 17)).astype(dtype)
    wp = rng.uniform(-1, 1, (32, 48, 3, 3)).astype(dtype)
    yp = fastconv.conv2d(xp, wp, None, padding=1)
    out, idx = fastconv.max_pool2d(x, 3, stride=1, padding=1)  # heavily overlapping
    # large enough for the weight gradient's parallel path (small ones run serially)
    xb = rng.uniform(-1, 1, (8, 16, 40, 40)).astype(dtype)
    gb = rng.uniform(-1, 1, (8, 16, 40, 40)).astype(dtype)
    # depthwise, unit stride: its own layout, parallel over channels and image shares
    xd = rng.uniform(-1, 1, (24, 6, 64, 64)).astype(dtype)
    gd = rng.uniform(-1, 1, (24, 6, 64, 64)).astype(dtype)
    return [y, fastconv.conv2d_grad_input(x.shape, w, g, **kw),
            yp, fastconv.conv2d_grad_input(xp.shape, wp, yp, padding=1),
            fastconv.conv2d_grad_weight(x, w.shape, g, **kw),
            fastconv.conv2d_grad_weight(xb, (16, 16, 3, 3), gb, padding=1),
            fastconv.conv2d_grad_weight(xb, (16, 4, 3, 3), gb[:, :, ::2, ::2].copy(),
                                        stride=2, padding=1, groups=4),
            fastconv.conv2d_grad_weight(xd, (6, 1, 3, 3), gd, padding=1, groups=6),
            out, idx,
            fastconv.max_pool2d_backward(rng.uniform(-1, 1, out.shape).astype(dtype), idx, x.shape)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_and_two_threads_agree_bitwise(dtype):
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _run_everything(dtype)
        numba.set_num_threads(2)
        two = _run_everything(dtype)
        two_again = _run_everything(dtype)
    finally:
        numba.set_num_threads(before)
    for a, b, c in zip(one, two, two_again):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(b, c)
