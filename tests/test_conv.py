"""conv2d / conv1d and their gradients against the NumPy reference, over random problems."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastconv
from fastconv import reference as ref

from _cases import conv_atol, conv_cases

FUNCS = {
    2: (fastconv.conv2d, fastconv.conv2d_grad_input, fastconv.conv2d_grad_weight,
        fastconv.conv2d_grad_bias, ref.conv2d, ref.conv2d_grad_input, ref.conv2d_grad_weight,
        ref.conv2d_grad_bias),
    1: (fastconv.conv1d, fastconv.conv1d_grad_input, fastconv.conv1d_grad_weight,
        fastconv.conv1d_grad_bias, ref.conv1d, ref.conv1d_grad_input, ref.conv1d_grad_weight,
        ref.conv1d_grad_bias),
}


def _check(got, want, dtype, n_terms):
    assert got.dtype == dtype
    assert got.shape == want.shape
    assert got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=0, atol=conv_atol(n_terms, dtype))


def _run_all(case, seed, spatial):
    fwd, gin, gw, gb, rfwd, rgin, rgw, rgb = FUNCS[spatial]
    x, w, b = case.arrays(seed)
    use_bias = seed % 2 == 0
    bias = b if use_bias else None
    y = fwd(x, w, bias, **case.kwargs)
    y_ref = rfwd(x.astype(np.float64), w.astype(np.float64),
                 None if bias is None else bias.astype(np.float64), **case.kwargs)
    red = int(np.prod(w.shape[1:]))
    _check(y, y_ref, case.dtype, red + 1)

    g = np.random.default_rng(seed + 1).uniform(-1, 1, y.shape).astype(case.dtype)
    n_out = int(np.prod(y.shape)) // (y.shape[1])
    gx = gin(x.shape, w, g, **case.kwargs)
    _check(gx, rgin(x.shape, w.astype(np.float64), g.astype(np.float64), **case.kwargs),
           case.dtype, (w.shape[0] // case.groups) * int(np.prod(w.shape[2:])))
    gwt = gw(x, w.shape, g, **case.kwargs)
    _check(gwt, rgw(x.astype(np.float64), w.shape, g.astype(np.float64), **case.kwargs),
           case.dtype, n_out)
    _check(gb(g), rgb(g.astype(np.float64)), case.dtype, n_out)


@given(case=conv_cases(spatial=2), seed=st.integers(0, 2**16))
def test_conv2d_matches_reference(case, seed):
    _run_all(case, seed, 2)


@given(case=conv_cases(spatial=1, max_size=16), seed=st.integers(0, 2**16))
def test_conv1d_matches_reference(case, seed):
    _run_all(case, seed, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        # last rows/columns covered by no window (stride does not divide the span)
        ((2, 3, 10, 9), (4, 3, 3, 2), dict(stride=(3, 4))),
        # stride larger than the kernel: gaps between windows
        ((1, 2, 11, 11), (3, 2, 2, 2), dict(stride=5, padding=1)),
        # 'same' with an even kernel: the extra padding row/column goes bottom/right
        ((1, 2, 6, 7), (2, 2, 4, 2), dict(padding="same")),
        ((1, 2, 6, 7), (2, 2, 4, 4), dict(padding="same", dilation=(1, 2))),
        # padding larger than the dilated kernel reach (grad_input crops)
        ((1, 1, 3, 3), (1, 1, 1, 1), dict(padding=2)),
        # depthwise and grouped with channel multiplier
        ((2, 4, 8, 8), (8, 1, 3, 3), dict(groups=4, padding=1)),
        ((1, 6, 7, 5), (9, 2, 3, 1), dict(groups=3, stride=2, dilation=2)),
        # column stride 2 with one column phase: the weight gradient packs
        # every other input column, rows longer than a vector (and odd widths)
        ((2, 4, 9, 71), (6, 4, 1, 1), dict(stride=2)),
        ((1, 3, 8, 45), (5, 3, 3, 3), dict(stride=2, dilation=2, padding=2)),
        # kernel equals padded input: a single output pixel
        ((1, 2, 3, 4), (5, 2, 5, 6), dict(padding=1)),
        # more pixels than a tile, to cross tile boundaries
        ((1, 3, 70, 70), (5, 3, 3, 3), dict(padding=1)),
        # 32+ channels per group: the channels-last band takes its many-channel path
        ((2, 40, 9, 11), (8, 40, 3, 3), dict(padding=(2, 1), stride=(1, 2))),
        ((1, 64, 6, 7), (70, 32, 2, 3), dict(groups=2, dilation=2, padding=1)),
    ],
)
def test_conv2d_explicit_cases(x_shape, w_shape, kwargs, dtype):
    from _cases import ConvCase

    case = ConvCase(x_shape, w_shape, kwargs.get("stride", 1), kwargs.get("padding", 0),
                    kwargs.get("dilation", 1), kwargs.get("groups", 1), dtype)
    _run_all(case, 7, 2)
    _run_all(case, 8, 2)


def test_same_padding_puts_extra_row_bottom_right():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 0] = 1.0  # top-left pixel
    w = np.zeros((1, 1, 2, 2))
    w[0, 0, 0, 0] = 1.0  # tap (0, 0) reads the window's top-left
    y = fastconv.conv2d(x, w, padding="same")
    # total padding 1 per axis, all of it bottom/right, so output (0, 0) reads x (0, 0)
    assert y.shape == (1, 1, 4, 4)
    assert y[0, 0, 0, 0] == 1.0 and y.sum() == 1.0


def test_nan_and_inf_propagate_through_conv():
    x = np.ones((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 3, 3] = np.inf
    y = fastconv.conv2d(x, np.ones((1, 1, 2, 2), np.float32))
    want = ref.conv2d(x.astype(np.float64), np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(want))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kw", [(((4, 8, 24, 24)), dict(padding=1)),
                                       (((2, 8, 9, 9)), dict(stride=2, padding=2, dilation=2))])
def test_nan_and_inf_propagate_through_gradients(dtype, shape, kw):
    """Non-finite inputs give non-finite gradients exactly where the definition does."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, shape).astype(dtype)
    x[0, 1, 3, 4] = np.inf
    x[1, 2, 5, 5] = np.nan
    w = rng.uniform(-1, 1, (6, shape[1], 3, 3)).astype(dtype)
    g = rng.uniform(-1, 1, fastconv.conv2d(x, w, **kw).shape).astype(dtype)
    g[0, 0, 1, 1] = -np.inf
    gw = fastconv.conv2d_grad_weight(x, w.shape, g, **kw)
    with np.errstate(invalid="ignore"):  # the reference's tensordot meets inf * 0, as it should
        gw_ref = ref.conv2d_grad_weight(x.astype(np.float64), w.shape, g.astype(np.float64), **kw)
    np.testing.assert_array_equal(np.isnan(gw), np.isnan(gw_ref))
    np.testing.assert_array_equal(np.isinf(gw), np.isinf(gw_ref))
    finite = np.isfinite(gw_ref)
    np.testing.assert_allclose(gw[finite], gw_ref[finite], rtol=0,
                               atol=conv_atol(int(np.prod(g.shape)) // g.shape[1], dtype))
    gx = fastconv.conv2d_grad_input(x.shape, w, g, **kw)
    with np.errstate(invalid="ignore"):
        gx_ref = ref.conv2d_grad_input(x.shape, w.astype(np.float64), g.astype(np.float64), **kw)
    np.testing.assert_array_equal(np.isnan(gx), np.isnan(gx_ref))
    np.testing.assert_array_equal(np.isinf(gx), np.isinf(gx_ref))
