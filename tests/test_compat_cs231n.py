"""fastconv.compat.cs231n against straightforward loop versions of the cs231n functions.

The loops below are written the way the cs231n assignments ask for them
(``conv_forward_naive`` and friends) and share nothing with fastconv.
Tolerance: relative error 1e-9 in float64, as in the assignments' notebooks.
"""

import numpy as np
import pytest

from fastconv.compat import cs231n
from fastconv.compat.cs231n import (
    conv_backward_fast,
    conv_forward_fast,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
    max_pool_backward_fast,
    max_pool_forward_fast,
)

# --------------------------------------------------------------------------- loop references


def loop_conv_forward(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out


def loop_conv_backward(dout, x, w, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for n in range(N):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    rows = slice(i * stride, i * stride + HH)
                    cols = slice(j * stride, j * stride + WW)
                    dw[f] += xp[n, :, rows, cols] * dout[n, f, i, j]
                    dxp[n, :, rows, cols] += w[f] * dout[n, f, i, j]
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, db


def loop_pool_forward(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    out = np.zeros((N, C, 1 + (H - ph) // s, 1 + (W - pw) // s))
    for n, c, i, j in np.ndindex(out.shape):
        out[n, c, i, j] = x[n, c, i * s:i * s + ph, j * s:j * s + pw].max()
    return out


def loop_pool_backward(dout, x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for n, c, i, j in np.ndindex(dout.shape):
        k = np.argmax(x[n, c, i * s:i * s + ph, j * s:j * s + pw])  # first maximum
        dx[n, c, i * s + k // pw, j * s + k % pw] += dout[n, c, i, j]
    return dx


def rel_error(x, y):
    """The cs231n notebooks' relative error."""
    return np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))


def numeric_gradient(f, x, df, h=1e-5):
    """cs231n's eval_numerical_gradient_array."""
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        pos = f(x).copy()
        x[ix] = old - h
        neg = f(x).copy()
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad


# --------------------------------------------------------------------------- convolution

CONV_CASES = [
    ((2, 3, 7, 7), (4, 3, 3, 3), {"stride": 2, "pad": 1}),
    ((2, 3, 6, 5), (2, 3, 2, 3), {"stride": 1, "pad": 0}),
    ((1, 2, 8, 8), (3, 2, 3, 3), {"stride": 2, "pad": 0}),  # (8 - 3) / 2 is not whole: floor
]


@pytest.mark.parametrize("x_shape, w_shape, conv_param", CONV_CASES,
                         ids=["stride2-pad1", "rect", "floor"])
def test_conv_matches_the_loop_version(x_shape, w_shape, conv_param):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    out, cache = conv_forward_fast(x, w, b, conv_param)
    expected = loop_conv_forward(x, w, b, conv_param)
    assert out.shape == expected.shape and out.dtype == np.float64
    assert rel_error(out, expected) < 1e-9
    dout = rng.standard_normal(out.shape)
    expected = loop_conv_backward(dout, x, w, conv_param)
    for got, want in zip(conv_backward_fast(dout, cache), expected):
        assert got.shape == want.shape
        assert rel_error(got, want) < 1e-9


def test_conv_backward_passes_a_numerical_gradient_check():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((2, 3, 3, 3))
    b = rng.standard_normal(2)
    conv_param = {"stride": 2, "pad": 1}
    out, cache = conv_forward_fast(x, w, b, conv_param)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward_fast(dout, cache)

    def fwd(x, w, b):
        return conv_forward_fast(x, w, b, conv_param)[0]

    assert rel_error(dx, numeric_gradient(lambda a: fwd(a, w, b), x, dout)) < 1e-8
    assert rel_error(dw, numeric_gradient(lambda a: fwd(x, a, b), w, dout)) < 1e-8
    assert rel_error(db, numeric_gradient(lambda a: fwd(x, w, a), b, dout)) < 1e-8


def test_conv_cache_is_the_naive_one():
    x, w, b = np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), np.zeros(1)
    conv_param = {"stride": 1, "pad": 0}
    _, cache = conv_forward_fast(x, w, b, conv_param)
    assert len(cache) == 4 and cache[0] is x and cache[1] is w and cache[3] is conv_param
    # The original fast implementation's cache appends x_cols; it is accepted too.
    dx, _, _ = conv_backward_fast(np.ones((1, 1, 2, 2)), cache + (None,))
    np.testing.assert_array_equal(dx, [[[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]])


# --------------------------------------------------------------------------- max-pooling

POOL_CASES = [
    {"pool_height": 2, "pool_width": 2, "stride": 2},
    {"pool_height": 3, "pool_width": 3, "stride": 1},  # overlapping windows
    {"pool_height": 2, "pool_width": 3, "stride": 1},  # overlapping, not square
    {"pool_height": 3, "pool_width": 2, "stride": 2},  # overlapping rows only; 7 -> 3
]


@pytest.mark.parametrize("pool_param", POOL_CASES, ids=["2x2s2", "3x3s1", "2x3s1", "3x2s2"])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_max_pool_matches_the_loop_version(pool_param, ties):
    rng = np.random.default_rng(2)
    shape = (2, 3, 7, 6)
    # With ties, small integers make many windows hold several equal maxima.
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    out, cache = max_pool_forward_fast(x, pool_param)
    expected = loop_pool_forward(x, pool_param)
    assert out.shape == expected.shape
    assert rel_error(out, expected) < 1e-9
    dout = rng.standard_normal(out.shape)
    dx = max_pool_backward_fast(dout, cache)
    assert rel_error(dx, loop_pool_backward(dout, x, pool_param)) < 1e-9


def test_max_pool_first_maximum_wins_a_tie():
    x = np.array([[[[1.0, 5.0], [5.0, 5.0]]]])
    out, cache = max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    dx = max_pool_backward_fast(np.array([[[[3.0]]]]), cache)
    np.testing.assert_array_equal(dx, [[[[0.0, 3.0], [0.0, 0.0]]]])


def test_max_pool_backward_accepts_a_naive_cache():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 5, 5))
    pool_param = {"pool_height": 3, "pool_width": 3, "stride": 1}
    out, cache = max_pool_forward_fast(x, pool_param)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(max_pool_backward_fast(dout, (x, pool_param)),
                                  max_pool_backward_fast(dout, cache))


# --------------------------------------------------------------------------- layer_utils


def test_conv_relu_and_conv_relu_pool_match_the_loops():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((3, 3, 3, 3))
    b = rng.standard_normal(3)
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    a = loop_conv_forward(x, w, b, conv_param)
    r = np.maximum(a, 0)

    out, cache = conv_relu_forward(x, w, b, conv_param)
    assert rel_error(out, r) < 1e-9
    dout = rng.standard_normal(out.shape)
    expected = loop_conv_backward(dout * (a > 0), x, w, conv_param)
    for got, want in zip(conv_relu_backward(dout, cache), expected):
        assert rel_error(got, want) < 1e-9

    out, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    assert rel_error(out, loop_pool_forward(r, pool_param)) < 1e-9
    dout = rng.standard_normal(out.shape)
    ds = loop_pool_backward(dout, r, pool_param)
    expected = loop_conv_backward(ds * (a > 0), x, w, conv_param)
    for got, want in zip(conv_relu_pool_backward(dout, cache), expected):
        assert rel_error(got, want) < 1e-9


# --------------------------------------------------------------------------- API surface


def test_naive_names_are_aliases():
    assert cs231n.conv_forward_naive is conv_forward_fast
    assert cs231n.conv_backward_naive is conv_backward_fast
    assert cs231n.max_pool_forward_naive is max_pool_forward_fast
    assert cs231n.max_pool_backward_naive is max_pool_backward_fast


def test_star_import_gives_exactly_the_cs231n_names():
    namespace = {}
    exec("from fastconv.compat.cs231n import *", namespace)
    names = {n for n in namespace if n != "__builtins__"}
    assert names == {
        f"{kind}_{direction}_{speed}"
        for kind in ("conv", "max_pool") for direction in ("forward", "backward")
        for speed in ("fast", "naive")
    } | {"conv_relu_forward", "conv_relu_backward", "conv_relu_pool_forward",
         "conv_relu_pool_backward"}


@pytest.mark.parametrize("call, error, message", [
    (lambda: conv_forward_fast(np.ones((1, 2, 4, 4)), np.ones((1, 2, 3, 3)), np.ones(1),
                               {"stride": 1}), KeyError, "conv_param has no 'pad' entry"),
    (lambda: conv_forward_fast(np.ones((1, 2, 4, 4)), np.ones((1, 3, 3, 3)), np.ones(1),
                               {"stride": 1, "pad": 0}), ValueError, "w has shape"),
    (lambda: conv_forward_fast(np.ones((1, 2, 4, 4)), np.ones((2, 2, 3, 3)), np.ones(1),
                               {"stride": 1, "pad": 0}), ValueError, r"b must have shape \(F,\)"),
    (lambda: conv_forward_fast(np.ones((1, 2, 4, 4)), np.ones((1, 2, 3, 3)), np.ones(1),
                               {"stride": 0, "pad": 0}), ValueError, "'stride'] must be positive"),
    (lambda: max_pool_forward_fast(np.ones((1, 1, 4, 4)), {"pool_height": 2, "stride": 2}),
     KeyError, "pool_width"),
    (lambda: max_pool_forward_fast(np.ones((1, 1, 4, 4)),
                                   {"pool_height": 2, "pool_width": 2.0, "stride": 2}),
     TypeError, r"pool_param\['pool_width'\] must be an int"),
    (lambda: max_pool_backward_fast(np.ones((1, 1, 2, 2)), "cache"), TypeError, "cache must be"),
], ids=["no-pad", "channels", "bias", "stride", "no-width", "float-width", "bad-cache"])
def test_errors_name_the_cs231n_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
