"""The depthwise engine (:mod:`fastconv.kernels.conv2d_depthwise`) against the reference.

The general convolution tests reach it only on small images, whose rows
are shorter than a vector: every vector there is masked.  These tests use
rows of up to several vectors, so that the unmasked vectors, the stencil
blocks (rows of 3, 5 or 7 taps at unit row stride) and the 4-row groups run,
and they check that the engine writes nothing outside its output.
"""

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv
from fastconv import reference as ref

from _cases import conv_atol

_DIRECT = importlib.import_module("fastconv.kernels.conv2d_direct")
_DEPTHWISE = importlib.import_module("fastconv.kernels.conv2d_depthwise")


def _plans_used():
    """The engines of the direct engine's kept plans, by runs-function address."""
    names = {}
    for dtype in (np.float32, np.float64):
        names[_DIRECT.DIRECT_TASKS.address(np.dtype(dtype))] = "direct"
        names[_DEPTHWISE.DEPTHWISE_TASKS.address(np.dtype(dtype))] = "depthwise"
    return {names[int(plan[0])] for _, plan, _ in _DIRECT._PLANS.values()}


@st.composite
def depthwise_cases(draw):
    C, Kg = draw(st.integers(1, 3)), 1
    R, S = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    sh = draw(st.sampled_from([1, 1, 2, 3]))
    if draw(st.booleans()):  # the stencil blocks: 3, 5 or 7 rows, unit row stride and dilation
        R, sh, dh = draw(st.sampled_from([3, 5, 7])), 1, 1
    ph, pw = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    H = draw(st.integers(max(1, (R - 1) * dh + 1 - 2 * ph), 28))
    W = draw(st.integers(max(1, (S - 1) * dw + 1 - 2 * pw), 45))
    N = draw(st.integers(1, 2))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    kwargs = dict(stride=(sh, 1), padding=(ph, pw), dilation=(dh, dw), groups=C)
    return (N, C, H, W), (C * Kg, 1, R, S), kwargs, dtype


@settings(max_examples=150)
@given(case=depthwise_cases(), seed=st.integers(0, 2**16))
def test_depthwise_engine_matches_reference(case, seed):
    x_shape, w_shape, kwargs, dtype = case
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, x_shape).astype(dtype)
    w = rng.uniform(-1, 1, w_shape).astype(dtype)
    b = rng.uniform(-1, 1, w_shape[0]).astype(dtype)
    _DIRECT._PLANS.clear()
    y = fastconv.conv2d(x, w, b, **kwargs)
    assert _plans_used() == {"depthwise"}
    g = rng.uniform(-1, 1, y.shape).astype(dtype)
    _DIRECT._PLANS.clear()
    gx = fastconv.conv2d_grad_input(x.shape, w, g, **kwargs)
    # at unit row stride the input gradient is a depthwise convolution too; at
    # row stride 2 and up, its stride phases place their outputs strided
    # (the direct engine's job)
    if kwargs["stride"][0] == 1:
        assert _plans_used() == {"depthwise"}
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    y_ref = ref.conv2d(x64, w64, b.astype(np.float64), **kwargs)
    np.testing.assert_allclose(y, y_ref, rtol=0,
                               atol=conv_atol(w_shape[2] * w_shape[3] + 1, dtype))
    gx_ref = ref.conv2d_grad_input(x.shape, w64, g.astype(np.float64), **kwargs)
    np.testing.assert_allclose(gx, gx_ref, rtol=0, atol=conv_atol(w_shape[2] * w_shape[3], dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((2, 3, 20, 40), (3, 1, 3, 3), dict(padding=1, groups=3)),  # stencil, masked ends
    ((1, 2, 13, 32), (2, 1, 5, 5), dict(padding=2, groups=2)),  # 5-row stencil
    ((2, 2, 17, 32), (2, 1, 3, 2), dict(padding=(1, 0), stride=(2, 1), groups=2)),  # tap lists
    ((1, 1, 9, 16), (1, 1, 3, 3), dict(padding=1, groups=1)),  # whole vectors only
])
def test_depthwise_engine_agrees_with_the_band_and_stays_inside_its_output(
        monkeypatch, dtype, x_shape, w_shape, kwargs):
    # every store non-temporal where it can be (rows of whole lines, aligned
    # output), into an output with guard regions on both sides
    monkeypatch.setattr(_DIRECT, "STREAM_MIN_BYTES", 0)
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, x_shape).astype(dtype)
    w = rng.uniform(-1, 1, w_shape).astype(dtype)
    b = rng.uniform(-1, 1, w_shape[0]).astype(dtype)
    y_ref = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **kwargs)
    guard = 64
    results = []
    for depthwise, shift in ((True, 0), (True, 1), (False, 0)):
        monkeypatch.setattr(_DIRECT, "DEPTHWISE", depthwise)
        _DIRECT._PLANS.clear()
        # shift 0: output on a 64-byte boundary (streamed where rows are
        # whole lines); shift 1: one element off (normal stores)
        buf = np.full(y_ref.size + 2 * guard + 16, 7.0, dtype)
        lead = (-buf.ctypes.data // buf.itemsize) % (64 // buf.itemsize) + guard + shift
        out = buf[lead:lead + y_ref.size].reshape(y_ref.shape)
        stride = kwargs.get("stride", (1, 1))
        stride = stride if isinstance(stride, tuple) else (stride, stride)
        padding = kwargs["padding"]
        padding = padding if isinstance(padding, tuple) else (padding, padding)
        _DIRECT.run_direct(x, w, b, out, stride, padding, (1, 1), *y_ref.shape[2:])
        assert _plans_used() == {"depthwise" if depthwise else "direct"}
        assert (buf[:lead] == 7.0).all() and (buf[lead + y_ref.size:] == 7.0).all()
        results.append(out.copy())
        np.testing.assert_allclose(out, y_ref, rtol=0,
                                   atol=conv_atol(w_shape[2] * w_shape[3] + 1, dtype))
    np.testing.assert_array_equal(results[0], results[1])
    _DIRECT._PLANS.clear()


def test_depthwise_engine_fits_unit_column_stride_one_channel_groups_only():
    fits = _DEPTHWISE.fits
    assert fits((2, 8, 9, 9), (8, 1, 3, 3), (2, 8, 9, 9), (1, 1), 9, 9, (0, 0, 1, 1))
    assert fits((2, 8, 9, 9), (8, 1, 3, 3), (2, 8, 5, 9), (2, 1), 5, 9, (0, 0, 1, 1))
    # two output channels per input channel; LeNet conv1 (1 input channel, 6 outputs)
    assert not fits((2, 8, 9, 9), (16, 1, 3, 3), (2, 16, 9, 9), (1, 1), 9, 9, (0, 0, 1, 1))
    assert not fits((2, 1, 28, 28), (6, 1, 5, 5), (2, 6, 28, 28), (1, 1), 28, 28, (0, 0, 1, 1))
    assert not fits((2, 8, 9, 9), (8, 1, 3, 3), (2, 8, 9, 5), (1, 2), 9, 5, (0, 0, 1, 1))
    assert not fits((2, 8, 9, 9), (8, 2, 3, 3), (2, 8, 9, 9), (1, 1), 9, 9, (0, 0, 1, 1))
    assert not fits((2, 8, 9, 9), (8, 1, 3, 3), (2, 8, 18, 18), (1, 1), 9, 9, (0, 0, 2, 2))
