"""Self-checks of the NumPy reference (fastconv/reference.py), the test oracle.

1. Hand-computed cases (a worked conv example and max-pool edge cases).
2. Property tests against PyTorch (float64, CPU) when it is installed.
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from numpy.testing import assert_allclose, assert_array_equal

try:
    from fastconv import reference as ref
except ImportError:
    # fastconv is not installed/importable: load the module from its file.
    # The reference imports nothing from fastconv, so this is equivalent.
    _path = Path(__file__).resolve().parents[1] / "fastconv" / "reference.py"
    _spec = importlib.util.spec_from_file_location("fastconv_reference", _path)
    ref = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(ref)

TOL = dict(rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# 1. Hand-computed cases
# --------------------------------------------------------------------------

I = np.array([[1, 2, 1], [0, 1, 2], [2, 1, 0]], dtype=float)[None, None]
W = np.array([[0.5, 0.2], [0.3, 0.7]])[None, None]
Y = np.array([[1, 2], [2, 1]], dtype=float)[None, None]


def test_worked_example_forward_and_loss():
    yhat = ref.conv2d(I, W)
    assert yhat.dtype == np.float64 and yhat.shape == (1, 1, 2, 2)
    assert_allclose(yhat[0, 0], [[1.6, 2.9], [1.5, 1.2]], **TOL)
    assert_allclose(np.mean((yhat - Y) ** 2), 0.365, **TOL)


def test_worked_example_gradients_and_step():
    yhat = ref.conv2d(I, W)
    dy = (yhat - Y) / 2                      # d mean((Yhat-Y)^2) / dYhat
    gw = ref.conv2d_grad_weight(I, W.shape, dy)
    gx = ref.conv2d_grad_input(I.shape, W, dy)
    assert_allclose(gw[0, 0], [[1.3, 1.0], [0.05, 0.95]], **TOL)
    assert_allclose(gx[0, 0], [[0.15, 0.285, 0.09],
                               [-0.035, 0.345, 0.335],
                               [-0.075, -0.145, 0.07]], **TOL)
    assert_allclose(ref.conv2d_grad_bias(dy), [0.45 + 0.1 + 0.3 - 0.25], **TOL)
    w2 = W - 0.1 * gw
    assert_allclose(w2[0, 0], [[0.37, 0.1], [0.295, 0.605]], **TOL)
    assert_allclose(np.mean((ref.conv2d(I, w2) - Y) ** 2), 0.166225, **TOL)


def test_conv_same_padding_puts_extra_at_bottom_right():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.zeros((1, 1, 2, 2))
    w[0, 0, 0, 0] = 1.0                      # picks the window's top-left
    assert_array_equal(ref.conv2d(x, w, padding="same"), x)
    assert_array_equal(ref.conv2d(x, w, padding="valid"), x[:, :, :3, :3])


def test_conv_grad_input_uncovered_positions_are_zero():
    # 5x5 input, 2x2 kernel, stride 2: last row and column are never read.
    dx = ref.conv2d_grad_input((1, 1, 5, 5), np.ones((1, 1, 2, 2)),
                               np.ones((1, 1, 2, 2)), stride=2)
    expected = np.zeros((5, 5))
    expected[:4, :4] = 1
    assert_array_equal(dx[0, 0], expected)


def _pool(x, *args, **kwargs):
    out, idx = ref.max_pool2d(np.asarray(x, float)[None, None], *args, **kwargs)
    assert out.dtype == np.float64 and idx.dtype == np.int64
    return out[0, 0], idx[0, 0]


def test_max_pool_ties_go_to_first_maximum():
    out, idx = _pool([[3, 1], [3, 3]], 2)
    assert_array_equal(out, [[3]])
    assert_array_equal(idx, [[0]])


def test_max_pool_nan_last_nan_wins():
    nan = np.nan
    out, idx = _pool([[nan, 5], [nan, 1]], 2)
    assert np.isnan(out[0, 0]) and idx[0, 0] == 2
    out, idx = _pool([[1, nan], [9, 2]], 2)
    assert np.isnan(out[0, 0]) and idx[0, 0] == 1


def test_max_pool_all_minus_inf_gives_first_in_bounds_index():
    inf = np.inf
    x = np.full((3, 3), -inf)
    out, idx = _pool(x, 2, stride=2, padding=1)
    assert_array_equal(out, np.full((2, 2), -inf))
    # windows start at -1 (padding) and 1: first in-bounds rows/cols 0 and 1
    assert_array_equal(idx, [[0, 1], [3, 4]])


def test_max_pool_padding_is_never_a_candidate():
    x = -np.arange(1.0, 5.0).reshape(2, 2)   # all negative
    out, idx = _pool(x, 2, stride=1, padding=1)
    assert_array_equal(out, [[-1, -1, -2], [-1, -1, -2], [-3, -3, -4]])
    assert_array_equal(idx, [[0, 0, 1], [0, 0, 1], [2, 2, 3]])


def test_max_pool_ceil_mode_drops_window_starting_in_padding():
    # L=5, k=2, s=2, p=1: ceil((5 + 2 - 2) / 2) + 1 = 4 windows, starting at
    # -1, 1, 3 and 5; the 4th starts at 5 >= L + p (in the padding): dropped.
    x = np.array([[1.0, 2, 3, 4, 5]])
    out, idx = _pool(x, (1, 2), stride=(1, 2), padding=(0, 1), ceil_mode=True)
    assert_array_equal(out, [[1, 3, 5]])
    assert_array_equal(idx, [[0, 2, 4]])
    # L=5, k=2, s=2, p=0: ceil mode adds a partial last window
    x = np.array([[1.0, 2, 3, 4, 5]])
    out, idx = _pool(x, (1, 2), stride=(1, 2), ceil_mode=True)
    assert_array_equal(out, [[2, 4, 5]])
    out, idx = _pool(x, (1, 2), stride=(1, 2), ceil_mode=False)
    assert_array_equal(out, [[2, 4]])


def test_max_pool1d_and_backward_accumulate():
    x = np.array([[[1.0, 5, 2, 0]]])
    out, idx = ref.max_pool1d(x, 3, stride=1)
    assert_array_equal(out, [[[5, 5]]])
    assert_array_equal(idx, [[[1, 1]]])
    dx = ref.max_pool1d_backward(np.array([[[2.0, 3.0]]]), idx, x.shape)
    assert_array_equal(dx, [[[0, 5, 0, 0]]])


# --------------------------------------------------------------------------
# 2. Against PyTorch
# --------------------------------------------------------------------------

SETTINGS = settings(max_examples=60, deadline=None)


def _torch():
    torch = pytest.importorskip("torch")
    return torch


def _maybe_pair(draw, values, two_d):
    """Draw an int or (for 2-D) a pair, as the public API accepts both."""
    if two_d and draw(st.booleans()):
        return (draw(values), draw(values))
    return draw(values) if (two_d or draw(st.booleans())) else (draw(values),)


@st.composite
def conv_cases(draw, two_d):
    groups_kind = draw(st.sampled_from(["1", "2", "depthwise"]))
    if groups_kind == "1":
        groups = 1
        C, K = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    elif groups_kind == "2":
        groups = 2
        C, K = 2 * draw(st.integers(1, 2)), 2 * draw(st.integers(1, 2))
    else:
        C = groups = draw(st.integers(1, 4))
        K = C * draw(st.integers(1, 2))
    N = draw(st.integers(1, 4))
    ndim = 2 if two_d else 1
    spatial = tuple(draw(st.integers(1, 9)) for _ in range(ndim))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    stride = _maybe_pair(draw, st.integers(1, 3), two_d)
    dilation = _maybe_pair(draw, st.integers(1, 2), two_d)
    strides = (stride,) * ndim if isinstance(stride, int) else stride * (ndim // len(stride))
    dils = (dilation,) * ndim if isinstance(dilation, int) else dilation * (ndim // len(dilation))
    pad_kinds = ["int", "valid"] + (["same"] if all(s == 1 for s in strides) else [])
    pad_kind = draw(st.sampled_from(pad_kinds))
    if pad_kind == "int":
        padding = _maybe_pair(draw, st.integers(0, 2), two_d)
        pads = (padding,) * ndim if isinstance(padding, int) else padding * (ndim // len(padding))
        totals = tuple(2 * p for p in pads)
    elif pad_kind == "valid":
        padding, totals = "valid", (0,) * ndim
    else:
        padding = "same"
        totals = tuple(d * (k - 1) for d, k in zip(dils, kernel))
    out = tuple((L + t - d * (k - 1) - 1) // s + 1
                for L, t, d, k, s in zip(spatial, totals, dils, kernel, strides))
    assume(all(o >= 1 for o in out))
    seed = draw(st.integers(0, 2**32 - 1))
    use_bias = draw(st.booleans())
    return dict(x_shape=(N, C) + spatial, w_shape=(K, C // groups) + kernel,
                out_shape=(N, K) + out, stride=stride, padding=padding,
                dilation=dilation, groups=groups, seed=seed, bias=use_bias)


def _check_conv(case, two_d):
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["x_shape"])
    w = rng.standard_normal(case["w_shape"])
    b = rng.standard_normal(case["w_shape"][0]) if case["bias"] else None
    dy = rng.standard_normal(case["out_shape"])
    kw = dict(stride=case["stride"], padding=case["padding"],
              dilation=case["dilation"], groups=case["groups"])

    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if b is not None else None
    ty = (F.conv2d if two_d else F.conv1d)(tx, tw, tb, **kw)
    ty.backward(torch.tensor(dy))

    if two_d:
        y = ref.conv2d(x, w, b, **kw)
        gx = ref.conv2d_grad_input(x.shape, w, dy, **kw)
        gw = ref.conv2d_grad_weight(x, w.shape, dy, **kw)
        gb = ref.conv2d_grad_bias(dy)
    else:
        y = ref.conv1d(x, w, b, **kw)
        gx = ref.conv1d_grad_input(x.shape, w, dy, **kw)
        gw = ref.conv1d_grad_weight(x, w.shape, dy, **kw)
        gb = ref.conv1d_grad_bias(dy)

    for got in (y, gx, gw, gb):
        assert got.dtype == np.float64
    tol = dict(rtol=1e-10, atol=1e-10)
    assert y.shape == case["out_shape"]
    assert_allclose(y, ty.detach().numpy(), **tol)
    assert_allclose(gx, tx.grad.numpy(), **tol)
    assert_allclose(gw, tw.grad.numpy(), **tol)
    assert_allclose(gb, dy.sum(axis=tuple(i for i in range(dy.ndim) if i != 1)),
                    **tol)
    if b is not None:
        assert_allclose(gb, tb.grad.numpy(), **tol)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@SETTINGS
@given(conv_cases(two_d=True))
def test_conv2d_matches_torch(case):
    _check_conv(case, two_d=True)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@SETTINGS
@given(conv_cases(two_d=False))
def test_conv1d_matches_torch(case):
    _check_conv(case, two_d=False)


@st.composite
def pool_cases(draw, two_d):
    ndim = 2 if two_d else 1
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 9)) for _ in range(ndim))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    stride = (None if draw(st.booleans())
              else tuple(draw(st.integers(1, 3)) for _ in range(ndim)))
    pads = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dils = tuple(draw(st.integers(1, 2)) for _ in range(ndim))
    ceil_mode = draw(st.booleans())
    strides = kernel if stride is None else stride
    out = []
    for L, k, s, p, d in zip(spatial, kernel, strides, pads, dils):
        o = (L + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (o - 1) * s >= L + p:
            o -= 1
        out.append(o)
    assume(all(o >= 1 for o in out))

    def arg(t):                  # exercise int and tuple argument forms
        return t[0] if len(set(t)) == 1 and draw(st.booleans()) else t

    return dict(shape=(N, C) + spatial, out_shape=(N, C) + tuple(out),
                kernel_size=arg(kernel),
                stride=None if stride is None else arg(stride),
                padding=arg(pads), dilation=arg(dils), ceil_mode=ceil_mode,
                seed=draw(st.integers(0, 2**32 - 1)),
                integer=draw(st.booleans()),
                # fractions of elements replaced by NaN / -inf / +inf
                p_nan=draw(st.sampled_from([0.0, 0.0, 0.05, 0.3])),
                p_ninf=draw(st.sampled_from([0.0, 0.1, 0.5])),
                p_pinf=draw(st.sampled_from([0.0, 0.0, 0.05])),
                all_ninf=draw(st.integers(0, 9)) == 0)


def _pool_input(case):
    rng = np.random.default_rng(case["seed"])
    shape = case["shape"]
    if case["integer"]:
        x = rng.integers(-2, 3, size=shape).astype(np.float64)   # many ties
    else:
        x = rng.standard_normal(shape)
    for value, fraction in ((-np.inf, case["p_ninf"]), (np.inf, case["p_pinf"]),
                            (np.nan, case["p_nan"])):
        x[rng.random(shape) < fraction] = value
    if case["all_ninf"]:
        x[...] = -np.inf
    return x


def _check_pool(case, two_d):
    torch = _torch()
    F = torch.nn.functional
    x = _pool_input(case)
    kw = dict(kernel_size=case["kernel_size"], stride=case["stride"],
              padding=case["padding"], dilation=case["dilation"],
              ceil_mode=case["ceil_mode"])
    tx = torch.tensor(x, requires_grad=True)
    pool = F.max_pool2d if two_d else F.max_pool1d
    tout, tidx = pool(tx, return_indices=True, **kw)
    out, idx = (ref.max_pool2d if two_d else ref.max_pool1d)(x, **kw)

    assert out.dtype == np.float64 and idx.dtype == np.int64
    assert out.shape == case["out_shape"]
    assert_array_equal(out, tout.detach().numpy())      # exact, NaN == NaN
    assert_array_equal(idx, tidx.numpy())

    # Backward.  PyTorch writes out of bounds for the index of a window with
    # no in-bounds element (possible with dilation); skip those cases.
    plane = math.prod(case["shape"][2:])
    assume(bool(((idx >= 0) & (idx < plane)).all()))
    rng = np.random.default_rng(case["seed"] + 1)
    dy = rng.standard_normal(out.shape)
    tout.backward(torch.tensor(dy))
    backward = ref.max_pool2d_backward if two_d else ref.max_pool1d_backward
    dx = backward(dy, idx, x.shape)
    assert dx.dtype == np.float64 and dx.shape == x.shape
    assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(pool_cases(two_d=True))
def test_max_pool2d_matches_torch(case):
    _check_pool(case, two_d=True)


@SETTINGS
@given(pool_cases(two_d=False))
def test_max_pool1d_matches_torch(case):
    _check_pool(case, two_d=False)


def test_max_pool_window_without_in_bounds_element_matches_torch():
    # H = 1, kh = 2, dh = 2, ph = 1: the only window has taps at rows -1, 1.
    torch = _torch()
    F = torch.nn.functional
    x = np.arange(6.0).reshape(1, 2, 1, 3)
    kw = dict(kernel_size=(2, 1), stride=1, padding=(1, 0), dilation=(2, 1))
    tout, tidx = F.max_pool2d(torch.tensor(x), return_indices=True, **kw)
    out, idx = ref.max_pool2d(x, **kw)
    assert_array_equal(out, tout.numpy())
    assert_array_equal(idx, tidx.numpy())
    assert (out == -np.inf).all()
    # Those indices point at no element: the reference routes no gradient.
    dx = ref.max_pool2d_backward(np.ones(out.shape), idx, x.shape)
    assert_array_equal(dx, np.zeros(x.shape))
