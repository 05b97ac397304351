"""dtype rules, memory layouts, read-only inputs and no mutation."""

import numpy as np
import pytest

import fastconv

RNG = np.random.default_rng(0)
X = RNG.uniform(-1, 1, (2, 4, 9, 8))
W = RNG.uniform(-1, 1, (6, 2, 3, 3))
B = RNG.uniform(-1, 1, 6)
KW = dict(stride=(2, 1), padding=1, groups=2)
G = RNG.uniform(-1, 1, fastconv.conv2d(X, W, B, **KW).shape)


def _all_calls(x, w, b, g):
    out, idx = fastconv.max_pool2d(x, 3, stride=2, padding=1)
    return [
        fastconv.conv2d(x, w, b, **KW),
        fastconv.conv2d_grad_input(x.shape, w, g, **KW),
        fastconv.conv2d_grad_weight(x, w.shape, g, **KW),
        fastconv.conv2d_grad_bias(g),
        out, idx,
        fastconv.max_pool2d_backward(out, idx, x.shape),
    ]


def _layouts(a):
    f = np.asfortranarray(a)
    strided = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)[..., ::2]
    strided[...] = a
    flipped = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    readonly = a.copy()
    readonly.flags.writeable = False
    return {"fortran": f, "strided": strided, "negative": flipped, "readonly": readonly}


@pytest.mark.parametrize("layout", ["fortran", "strided", "negative", "readonly"])
def test_layouts_match_c_contiguous(layout):
    expected = _all_calls(X, W, B, G)
    got = _all_calls(*(_layouts(a)[layout] for a in (X, W, B, G)))
    for e, r in zip(expected, got):
        np.testing.assert_array_equal(r, e)


def test_inputs_are_not_modified():
    arrays = [a.copy() for a in (X, W, B, G)]
    _all_calls(*arrays)
    for a, orig in zip(arrays, (X, W, B, G)):
        np.testing.assert_array_equal(a, orig)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_result_keeps_input_dtype(dtype):
    for r in _all_calls(X.astype(dtype), W.astype(dtype), B.astype(dtype), G.astype(dtype)):
        assert r.dtype == (np.int64 if r.dtype.kind == "i" else dtype)


def test_mixed_float32_float64_promotes_to_float64():
    y = fastconv.conv2d(X.astype(np.float32), W, B.astype(np.float32), **KW)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, fastconv.conv2d(X.astype(np.float32).astype(np.float64), W,
                                                  B.astype(np.float32).astype(np.float64), **KW))
    gw = fastconv.conv2d_grad_weight(X.astype(np.float32), W.shape, G, **KW)
    assert gw.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_integer_and_bool_inputs_promote_to_float64(dtype):
    xi = (X > 0).astype(dtype) if dtype == np.bool_ else (X * 3).astype(dtype)
    wi = (W * 3).astype(np.int64)
    y = fastconv.conv2d(xi, wi, None, **KW)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, fastconv.conv2d(xi.astype(np.float64),
                                                     wi.astype(np.float64), None, **KW))
    out, idx = fastconv.max_pool2d(xi, 2)
    assert out.dtype == np.float64
    out32, _ = fastconv.max_pool2d(xi.astype(np.float32), 2)
    assert out32.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float16, np.complex64, np.complex128, object, "U1"])
def test_unsupported_dtypes_raise_type_error(dtype):
    bad = np.zeros((1, 1, 4, 4), dtype=dtype)
    with pytest.raises(TypeError, match="float32 or float64"):
        fastconv.conv2d(bad, np.zeros((1, 1, 2, 2)))
    with pytest.raises(TypeError, match="weight"):
        fastconv.conv2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2), dtype=dtype))
    with pytest.raises(TypeError, match="float32 or float64"):
        fastconv.max_pool2d(bad, 2)


def test_lists_are_accepted():
    y = fastconv.conv1d([[[1, 2, 3, 4]]], [[[1, -1]]])
    np.testing.assert_array_equal(y, [[[-1.0, -1.0, -1.0]]])


def test_repeated_calls_are_identical():
    first = _all_calls(X, W, B, G)
    for _ in range(3):
        for a, b in zip(first, _all_calls(X, W, B, G)):
            np.testing.assert_array_equal(a, b)
