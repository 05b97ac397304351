"""The depthwise layout of the weight gradient (``kernels/_grad_weight_depthwise.py``)."""

import importlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastconv
from fastconv import reference as ref

from _cases import conv_atol

_GW = importlib.import_module("fastconv.kernels.conv2d_grad_weight")
_DW = importlib.import_module("fastconv.kernels._grad_weight_depthwise")
_PLAN = importlib.import_module("fastconv.kernels._grad_weight_plan")


def _layout(x, g, w_shape, padding, dilation):
    """Run the depthwise layout alone: (gradient, whether it came out finite)."""
    out = np.empty(w_shape, x.dtype)
    finite = _GW._run(_PLAN.DEPTHWISE, x, g, out, (1, 1), padding, dilation, w_shape[0])
    return out, finite


def _problem(rng, dtype, N, G, H, W, R, S, pad, dil):
    x = rng.uniform(-1, 1, (N, G, H, W)).astype(dtype)
    P = H + 2 * pad[0] - dil[0] * (R - 1)
    Q = W + 2 * pad[1] - dil[1] * (S - 1)
    g = rng.uniform(-1, 1, (N, G, P, Q)).astype(dtype)
    return x, g


@st.composite
def _depthwise_cases(draw):
    R, S = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    dil = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    # at least one output row and column
    H = draw(st.integers(max(1, dil[0] * (R - 1) + 1 - 2 * pad[0]), 20))
    W = draw(st.integers(max(1, dil[1] * (S - 1) + 1 - 2 * pad[1]), 20))
    return (draw(st.integers(1, 9)), draw(st.integers(2, 9)), H, W, R, S, pad, dil,
            draw(st.sampled_from([np.float32, np.float64])))


@given(case=_depthwise_cases(), seed=st.integers(0, 2**16))
def test_depthwise_layout_matches_reference(case, seed):
    N, G, H, W, R, S, pad, dil, dtype = case
    x, g = _problem(np.random.default_rng(seed), dtype, N, G, H, W, R, S, pad, dil)
    w_shape = (G, 1, R, S)
    assert _DW.applies(x.shape, w_shape, (1, 1), G)
    got, finite = _layout(x, g, w_shape, pad, dil)
    assert finite
    want = ref.conv2d_grad_weight(x.astype(np.float64), w_shape, g.astype(np.float64),
                                  padding=pad, dilation=dil, groups=G)
    np.testing.assert_allclose(got, want, rtol=0, atol=conv_atol(N * g.shape[2] * g.shape[3],
                                                                 dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, R, S, kw", [
    ((32, 16, 32, 32), 3, 3, dict(padding=1)),  # parallel, one image share per channel
    ((7, 3, 30, 17), 3, 3, dict(padding=1)),  # 3 channels: 3 image shares of 2, 2 and 3
    ((2, 4, 9, 10), 4, 2, dict(padding="same")),  # even kernel: padding bottom/right
    ((3, 5, 6, 7), 7, 7, dict(padding=3, dilation=(1, 2))),  # 9 blocks, most partly past it
    ((1, 2, 5, 5), 2, 2, dict(padding=4)),  # padding beyond the kernel's reach
])
def test_public_depthwise_gradient_matches_reference(dtype, x_shape, R, S, kw):
    rng = np.random.default_rng(3)
    G = x_shape[1]
    x = rng.uniform(-1, 1, x_shape).astype(dtype)
    w = rng.uniform(-1, 1, (G, 1, R, S)).astype(dtype)
    g = rng.uniform(-1, 1, fastconv.conv2d(x, w, groups=G, **kw).shape).astype(dtype)
    got = fastconv.conv2d_grad_weight(x, w.shape, g, groups=G, **kw)
    want = ref.conv2d_grad_weight(x.astype(np.float64), w.shape, g.astype(np.float64),
                                  groups=G, **kw)
    assert got.dtype == dtype and got.shape == w.shape
    np.testing.assert_allclose(got, want, rtol=0,
                               atol=conv_atol(g.shape[0] * g.shape[2] * g.shape[3], dtype))


@pytest.mark.parametrize("x_shape, w_shape, stride, groups, expected", [
    ((2, 8, 9, 9), (8, 1, 3, 3), (1, 1), 8, True),
    ((2, 8, 9, 9), (8, 1, 2, 5), (1, 1), 8, True),
    ((2, 8, 9, 9), (8, 1, 3, 3), (2, 2), 8, False),  # strided: the general layouts
    ((2, 8, 9, 9), (8, 1, 3, 3), (1, 2), 8, False),
    ((2, 8, 9, 9), (16, 1, 3, 3), (1, 1), 8, False),  # two output channels per group
    ((2, 8, 9, 9), (8, 1, 1, 1), (1, 1), 8, False),  # 1 x 1: a 3 x 3 block would waste 8/9
    ((2, 8, 9, 9), (8, 1, 1, 3), (1, 1), 8, False),
    ((2, 1, 9, 9), (1, 1, 3, 3), (1, 1), 1, False),  # one channel, not grouped
])
def test_depthwise_layout_applies_to_unit_stride_depthwise_only(x_shape, w_shape, stride,
                                                                 groups, expected):
    assert _DW.applies(x_shape, w_shape, stride, groups) is expected


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_values_fall_back_to_the_exact_products(dtype):
    """An inf where the definition never multiplies it by a zero gradient must not make NaN.

    The depthwise layout multiplies the input of a column no output reads by
    a zero (its padded row is wider than the output): that gives NaN for an
    infinite input, so the gradient is recomputed with the panel layout.
    """
    rng = np.random.default_rng(9)
    x = rng.uniform(-1, 1, (2, 4, 8, 8)).astype(dtype)
    g = rng.uniform(-1, 1, (2, 4, 8, 8)).astype(dtype)
    x[0, 1, 3, 7] = np.inf  # last column: fake pixels of the layout read it
    x[1, 2, 0, 0] = np.nan
    layout, finite = _layout(x, g, (4, 1, 3, 3), (1, 1), (1, 1))
    assert not finite
    got = fastconv.conv2d_grad_weight(x, (4, 1, 3, 3), g, padding=1, groups=4)
    with np.errstate(invalid="ignore"):
        want = ref.conv2d_grad_weight(x.astype(np.float64), (4, 1, 3, 3),
                                      g.astype(np.float64), padding=1, groups=4)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    assert np.isnan(layout[1]).any()  # the layout alone would have been wrong here
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=conv_atol(128, dtype))
    np.testing.assert_allclose(got[3], want[3], rtol=0, atol=conv_atol(128, dtype))
