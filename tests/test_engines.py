"""Both convolution engines, forced, against the reference.

``conv2d`` and ``conv2d_grad_input`` pick the direct (pixels innermost) or
the packed (reduction innermost) engine by problem shape; most random test
problems are small and would only ever reach the direct one.  Here each
engine runs every problem, and the two engines are compared on shapes from
both sides of the switch.
"""

import importlib
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv
from fastconv import reference as ref

from _cases import conv_atol, conv_cases

_CHOOSERS = [importlib.import_module(f"fastconv.kernels.{m}")
             for m in ("conv2d_forward", "conv2d_grad_input")]
_DIRECT = importlib.import_module("fastconv.kernels.conv2d_direct")
_PHASES = importlib.import_module("fastconv.kernels.conv2d_grad_input")


@contextmanager
def forced_engine(engine):
    """Make every convolution in the block use ``engine``: "direct", "packed", or
    "band" (the direct engine, depthwise convolutions included: they otherwise
    run on the depthwise engine, :mod:`fastconv.kernels.conv2d_depthwise`)."""
    saved = [m.choose_engine for m in _CHOOSERS]
    # the input gradient keeps each geometry's engine choice (and, when "band"
    # turns the depthwise engine off, the direct engine its plans): start and
    # end without
    band = engine == "band"
    _PHASES._DISPATCH.clear()
    if band:
        _DIRECT._PLANS.clear()
    try:
        for m in _CHOOSERS:
            m.choose_engine = lambda *args: "direct" if engine == "band" else engine
        _DIRECT.DEPTHWISE = not band
        yield
    finally:
        for m, f in zip(_CHOOSERS, saved):
            m.choose_engine = f
        _DIRECT.DEPTHWISE = True
        _PHASES._DISPATCH.clear()
        if band:
            _DIRECT._PLANS.clear()


@contextmanager
def forced_direct_build(build):
    """Make the direct engine run its "serial" or "parallel" build for every size
    ("default": choose by size as usual).  Plans made before keep their build,
    so the block starts with none."""
    saved = _DIRECT.SERIAL_MACS
    try:
        if build != "default":
            _DIRECT.SERIAL_MACS = 2**62 if build == "serial" else 0
            _DIRECT._PLANS.clear()
            _PHASES._PLANS.clear()
        yield
    finally:
        _DIRECT.SERIAL_MACS = saved
        if build != "default":
            _DIRECT._PLANS.clear()
            _PHASES._PLANS.clear()


def _forward_and_grad_input(x, w, b, g, kwargs):
    y = fastconv.conv2d(x, w, b, **kwargs)
    gx = fastconv.conv2d_grad_input(x.shape, w, g, **kwargs)
    return y, gx


# 60 examples per engine in the default profile (five variants: the suite stays
# quick); the "thorough" profile's count otherwise.
_EXAMPLES = 60 if settings.default.max_examples <= 100 else settings.default.max_examples


@pytest.mark.parametrize("engine", ["direct", "packed", "band", "direct-serial", "direct-parallel"])
@settings(max_examples=_EXAMPLES)
@given(case=conv_cases(spatial=2), seed=st.integers(0, 2**16))
def test_forced_engine_matches_reference(engine, case, seed):
    x, w, b = case.arrays(seed)
    y_ref = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                       **case.kwargs)
    g = np.random.default_rng(seed + 1).uniform(-1, 1, y_ref.shape).astype(case.dtype)
    name, _, build = engine.partition("-")
    with forced_engine(name), forced_direct_build(build or "default"):
        y, gx = _forward_and_grad_input(x, w, b, g, case.kwargs)
    gx_ref = ref.conv2d_grad_input(x.shape, w.astype(np.float64), g.astype(np.float64),
                                   **case.kwargs)
    np.testing.assert_allclose(y, y_ref, rtol=0,
                               atol=conv_atol(int(np.prod(w.shape[1:])) + 1, case.dtype))
    n_gx = (w.shape[0] // case.groups) * int(np.prod(w.shape[2:]))
    np.testing.assert_allclose(gx, gx_ref, rtol=0, atol=conv_atol(n_gx, case.dtype))


# Shapes on both sides of the switch: long reductions with many channels
# (packed by default), short ones, few output channels, strides, in-place
# reads (stride 1, no padding), dilation and groups.
ENGINE_SHAPES = [
    ((2, 40, 11, 13), (24, 40, 3, 3), dict(stride=2, padding=1)),
    ((2, 32, 9, 9), (32, 32, 3, 3), dict(padding=1)),
    ((3, 64, 7, 8), (20, 64, 1, 1), dict()),
    ((2, 3, 30, 31), (16, 3, 7, 7), dict(stride=2, padding=3)),
    ((2, 36, 12, 12), (6, 18, 3, 2), dict(stride=(1, 2), dilation=(2, 1), groups=2)),
    ((1, 17, 20, 5), (5, 17, 5, 3), dict(padding=(0, 2))),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", ENGINE_SHAPES)
def test_engines_agree(x_shape, w_shape, kwargs, dtype):
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, x_shape).astype(dtype)
    w = rng.uniform(-1, 1, w_shape).astype(dtype)
    b = rng.uniform(-1, 1, w_shape[0]).astype(dtype)
    g = rng.uniform(-1, 1, fastconv.conv2d(x, w, b, **kwargs).shape).astype(dtype)
    with forced_engine("direct"):
        direct = _forward_and_grad_input(x, w, b, g, kwargs)
    with forced_engine("packed"):
        packed = _forward_and_grad_input(x, w, b, g, kwargs)
    want = (ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                       **kwargs),
            ref.conv2d_grad_input(x_shape, w.astype(np.float64), g.astype(np.float64),
                                  **kwargs))
    n_terms = (int(np.prod(w_shape[1:])) + 1, w_shape[0] * w_shape[2] * w_shape[3])
    for a, p, r, n in zip(direct, packed, want, n_terms):
        np.testing.assert_allclose(a, r, rtol=0, atol=conv_atol(n, dtype))
        np.testing.assert_allclose(p, r, rtol=0, atol=conv_atol(n, dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("out_channels", range(1, 12))
def test_direct_channel_blocks(out_channels, padding, dtype):
    """Every split of the output channels into the direct engine's blocks of
    4, 3 (3 and 6 left) and 1, read in place (no padding) and from the band."""
    rng = np.random.default_rng(out_channels)
    x = rng.uniform(-1, 1, (2, 5, 9, 10)).astype(dtype)
    w = rng.uniform(-1, 1, (out_channels, 5, 3, 3)).astype(dtype)
    b = rng.uniform(-1, 1, out_channels).astype(dtype)
    with forced_engine("direct"):
        y = fastconv.conv2d(x, w, b, padding=padding)
    want = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                      padding=padding)
    np.testing.assert_allclose(y, want, rtol=0, atol=conv_atol(5 * 9 + 1, dtype))


@pytest.mark.parametrize("reduction, channels, unit_stride, Q, engine", [
    (27, 64, True, 32, "direct"),       # short reduction
    (576, 8, False, 8, "direct"),       # few output channels
    (576, 64, True, 56, "direct"),      # ResNet-50 3x3
    (576, 64, True, 8, "direct"),       # ResNet-20 stage 3: column-shifted
    (1152, 128, True, 7, "packed"),     # rows of 7 pixels
    (4608, 512, True, 7, "direct"),     # wide groups pay off even on 7x7
    (1152, 128, False, 28, "packed"),   # strided
])
def test_choose_engine(reduction, channels, unit_stride, Q, engine):
    choose = _CHOOSERS[0].choose_engine
    assert choose(reduction, channels, unit_stride, Q) == engine


@pytest.mark.parametrize("build", ["serial", "parallel"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    # phases of unequal height and width (odd sizes), so unequal task and run counts
    ((1, 3, 7, 9), (4, 3, 3, 3), dict(stride=2, padding=1)),
    ((2, 4, 12, 13), (6, 2, 5, 4), dict(stride=(3, 2), padding=2, groups=2)),
    ((3, 2, 9, 9), (2, 2, 3, 3), dict(stride=2, dilation=2)),  # only phase (0, 0) has taps
    ((1, 6, 23, 22), (64, 6, 7, 7), dict(stride=2, padding=3)),  # a ResNet-50 stem, smaller
    ((70, 2, 6, 6), (3, 2, 3, 3), dict(stride=2, padding=1)),  # more tasks than runs
])
def test_stride_phases_run_in_one_call(build, dtype, x_shape, w_shape, kwargs):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, x_shape).astype(dtype)
    w = rng.uniform(-1, 1, w_shape).astype(dtype)
    g = rng.uniform(-1, 1, fastconv.conv2d(x, w, **kwargs).shape).astype(dtype)
    with forced_engine("direct"), forced_direct_build(build):
        gx = fastconv.conv2d_grad_input(x.shape, w, g, **kwargs)
        phased = len(_PHASES._PLANS)
    gx_ref = ref.conv2d_grad_input(x.shape, w.astype(np.float64), g.astype(np.float64),
                                   **kwargs)
    taps = (w.shape[0] // kwargs.get("groups", 1)) * w.shape[2] * w.shape[3]
    np.testing.assert_allclose(gx, gx_ref, rtol=0, atol=conv_atol(taps, dtype))
    assert phased == (0 if kwargs.get("dilation") == 2 else 1)


def test_stride_phase_taps_as_slices():
    # the input gradient indexes the flipped kernel with slices, not tap lists
    for R in range(1, 8):
        for stride in range(1, 5):
            for dilation in range(1, 4):
                for pad in range((R - 1) * dilation // 2 + 1):
                    for a in range(stride):
                        taps = _PHASES.stride_phase(a, stride, dilation, pad, R, 5, 20)[0]
                        if taps:
                            assert list(np.arange(R)[_PHASES._taps_slice(taps)]) == taps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((2, 8, 10, 10), (8, 8, 1, 1), {}),  # rows contiguous: whole segments
    ((1, 3, 32, 64), (4, 3, 3, 3), dict(padding=1)),  # rows of 64 elements
    ((1, 3, 33, 64), (6, 3, 3, 3), dict(padding=1, stride=(2, 1))),
])
def test_streamed_write_back_matches_reference(monkeypatch, dtype, x_shape, w_shape, kwargs):
    # small results take the non-temporal write-back too, unaligned: its
    # partial lines at both ends of every run are exercised
    monkeypatch.setattr(_DIRECT, "STREAM_MIN_BYTES", 0)
    _DIRECT._PLANS.clear()
    try:
        rng = np.random.default_rng(2)
        x = rng.uniform(-1, 1, x_shape).astype(dtype)
        w = rng.uniform(-1, 1, w_shape).astype(dtype)
        b = rng.uniform(-1, 1, w_shape[0]).astype(dtype)
        with forced_engine("direct"):
            y = fastconv.conv2d(x, w, b, **kwargs)
        assert all(plan[30] == 1 for _, plan, _ in _DIRECT._PLANS.values())
    finally:
        _DIRECT._PLANS.clear()
    y_ref = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                       **kwargs)
    np.testing.assert_allclose(y, y_ref, rtol=0,
                               atol=conv_atol(int(np.prod(w_shape[1:])) + 1, dtype))


def test_write_back_streams_only_whole_lines_of_large_results():
    big = 8 << 20
    assert _DIRECT._streams((1, 1, 1, big // 8), 8, big // 8, big // 8, (0, 0, 1, 1))
    assert not _DIRECT._streams((1, 1, 1, big // 16), 8, big // 16, big // 16, (0, 0, 1, 1))
    rows = (big // 256, 1, 1, 32)  # float64 rows of 256 bytes
    assert _DIRECT._streams(rows, 8, 32, 34, (0, 0, 1, 1))
    assert not _DIRECT._streams(rows, 8, 16, 18, (0, 0, 1, 1))  # 128-byte runs
    assert not _DIRECT._streams(rows, 8, 32, 34, (0, 1, 2, 2))  # strided placement
    assert not _DIRECT._streams((big // 224, 1, 1, 56), 4, 56, 58, (0, 0, 1, 1))  # 224-byte rows


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((3, 6, 20, 20), (6, 1, 3, 3), dict(padding=1, groups=6)),  # one-channel blocks
    ((3, 3, 17, 19), (6, 3, 3, 3), dict(padding=1)),  # three-channel blocks
    ((2, 5, 21, 18), (8, 5, 3, 3), dict(padding=2, stride=2)),  # four, stride phases
])
def test_prefetching_the_next_task_changes_no_bits(monkeypatch, dtype, x_shape, w_shape, kwargs):
    # tasks of a few rows, many to a run: each prefetches the next task's
    # rows; the results must be those of the same plans without prefetching
    monkeypatch.setattr(_DIRECT, "direct_rows", lambda P, *args: 3)
    monkeypatch.setattr(_DIRECT, "TASK_CHUNKS", 2)
    monkeypatch.setattr(_DIRECT, "PREFETCH_MIN_BYTES", 0)
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, x_shape).astype(dtype)
    w = rng.uniform(-1, 1, w_shape).astype(dtype)
    results = []
    plan = _DIRECT.direct_plan
    for prefetch in (True, False):
        monkeypatch.setattr(_DIRECT, "direct_plan",
                            lambda *a, _on=prefetch, **k: plan(*a, **{**k, "prefetch": _on}))
        _DIRECT._PLANS.clear()
        try:
            with forced_engine("band"):
                results.append(fastconv.conv2d(x, w, **kwargs))
                assert len(_DIRECT._PLANS) == 1
                assert all(p[31] == prefetch for _, p, _ in _DIRECT._PLANS.values())
        finally:
            _DIRECT._PLANS.clear()
            monkeypatch.setattr(_DIRECT, "direct_plan", plan)
    np.testing.assert_array_equal(results[0], results[1])
    y_ref = ref.conv2d(x.astype(np.float64), w.astype(np.float64), **kwargs)
    np.testing.assert_allclose(results[0], y_ref, rtol=0,
                               atol=conv_atol(int(np.prod(w_shape[1:])), dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((2, 5, 9, 10), (8, 5, 3, 3), dict(padding=1)),  # four-channel blocks
    ((2, 3, 12, 11), (6, 3, 5, 5), dict(padding=(2, 1), dilation=(1, 2))),  # three
    ((2, 4, 14, 14), (4, 2, 5, 5), dict(padding=2, dilation=2, groups=2)),  # one-channel blocks
    ((1, 8, 6, 6), (8, 8, 3, 3), dict(padding=(0, 1))),  # rows unpadded: 4 x 6 output
])
def test_column_shifted_band_matches_reference(dtype, x_shape, w_shape, kwargs):
    # narrow images: the discarded columns would be SHIFTED_MIN_WASTE of a row
    # or more, and saved products outweigh the extra copying (SHIFTED_MIN_GAIN)
    _DIRECT._PLANS.clear()
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, x_shape).astype(dtype)
    w = rng.uniform(-1, 1, w_shape).astype(dtype)
    b = rng.uniform(-1, 1, w_shape[0]).astype(dtype)
    try:
        with forced_engine("direct"):
            y = fastconv.conv2d(x, w, b, **kwargs)
        assert all(p[32] == w_shape[3] for _, p, _ in _DIRECT._PLANS.values())
    finally:
        _DIRECT._PLANS.clear()
    y_ref = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                       **kwargs)
    np.testing.assert_allclose(y, y_ref, rtol=0,
                               atol=conv_atol(int(np.prod(w_shape[1:])) + 1, dtype))
