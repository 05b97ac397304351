"""Every bad input raises ValueError or TypeError naming the argument."""

import numpy as np
import pytest

import fastconv

x4 = np.zeros((2, 4, 8, 8))
w4 = np.zeros((6, 2, 3, 3))
x3 = np.zeros((2, 4, 8))
w3 = np.zeros((6, 2, 3))
g4, i4 = np.zeros((2, 4, 4, 4)), np.zeros((2, 4, 4, 4), np.int64)  # max-pool 2 of x4
g3, i3 = np.zeros((2, 4, 4)), np.zeros((2, 4, 4), np.int64)


def _read_only(shape):
    arr = np.zeros(shape)
    arr.flags.writeable = False
    return arr


@pytest.mark.parametrize(
    "call, exc, match",
    [
        # wrong ndim
        (lambda: fastconv.conv2d(x3, w4, groups=2), ValueError, r"x must be a 4-D array.*\(N, C, H, W\)"),
        (lambda: fastconv.conv2d(x4, w3, groups=2), ValueError, r"weight must be a 4-D"),
        (lambda: fastconv.conv1d(x4, w3, groups=2), ValueError, r"x must be a 3-D array.*\(N, C, L\)"),
        (lambda: fastconv.max_pool2d(x3, 2), ValueError, r"x must be a 4-D"),
        (lambda: fastconv.max_pool1d(x4, 2), ValueError, r"x must be a 3-D"),
        # empty arrays
        (lambda: fastconv.conv2d(np.zeros((0, 4, 8, 8)), w4, groups=2), ValueError, r"x must have every dimension >= 1"),
        # channels and groups
        (lambda: fastconv.conv2d(x4, w4), ValueError, r"channel mismatch.*C=4.*weight.shape\[1\]=2.*groups=1"),
        (lambda: fastconv.conv2d(x4, np.zeros((5, 2, 3, 3)), groups=2), ValueError, r"5 output channels.*not divisible by groups=2"),
        (lambda: fastconv.conv2d(x4, w4, groups=0), ValueError, r"groups must be positive; got 0"),
        (lambda: fastconv.conv2d(x4, w4, groups=2.0), TypeError, r"groups must be an int; got 2.0"),
        (lambda: fastconv.conv2d(x4, w4, groups=True), TypeError, r"groups must be an int; got True"),
        # stride / dilation / padding values
        (lambda: fastconv.conv2d(x4, w4, stride=0, groups=2), ValueError, r"stride must be positive.*got 0"),
        (lambda: fastconv.conv2d(x4, w4, stride=(1, -1), groups=2), ValueError, r"stride must be positive"),
        (lambda: fastconv.conv2d(x4, w4, stride=(1, 1, 1), groups=2), ValueError, r"stride must be an int or a sequence of 2"),
        (lambda: fastconv.conv2d(x4, w4, stride=1.5, groups=2), TypeError, r"stride must be an int; got 1.5"),
        (lambda: fastconv.conv2d(x4, w4, dilation=0, groups=2), ValueError, r"dilation must be positive"),
        (lambda: fastconv.conv2d(x4, w4, padding=-1, groups=2), ValueError, r"padding must be non-negative"),
        (lambda: fastconv.conv2d(x4, w4, padding="full", groups=2), ValueError, r"padding must be .*'valid' or 'same'; got 'full'"),
        (lambda: fastconv.conv2d(x4, w4, padding="same", stride=2, groups=2), ValueError, r"padding='same' requires stride 1"),
        (lambda: fastconv.conv2d(x4, np.zeros((6, 2, 9, 3)), groups=2), ValueError, r"dilated kernel.*larger than the padded input"),
        (lambda: fastconv.conv2d(x4, w4, dilation=5, groups=2), ValueError, r"dilated kernel \(size 11"),
        # bias
        (lambda: fastconv.conv2d(x4, w4, np.zeros(5), groups=2), ValueError, r"bias must have shape \(K,\) = \(6,\)"),
        (lambda: fastconv.conv2d(x4, w4, np.zeros(6, np.complex128), groups=2), TypeError, r"bias has dtype complex128"),
        # gradient shapes
        (lambda: fastconv.conv2d_grad_input((2, 4, 8, 8), w4, np.zeros((2, 6, 5, 6)), groups=2), ValueError, r"grad_output has shape \(2, 6, 5, 6\).*\(2, 6, 6, 6\)"),
        (lambda: fastconv.conv2d_grad_weight(x4, (6, 2, 3, 3), np.zeros((2, 6, 6)), groups=2), ValueError, r"grad_output must be a 4-D"),
        (lambda: fastconv.conv2d_grad_input((2, 4, 8), w4, np.zeros((2, 6, 6, 6)), groups=2), ValueError, r"input_shape must have 4 entries"),
        (lambda: fastconv.conv2d_grad_input((2, 4, 8, 8.0), w4, np.zeros((2, 6, 6, 6)), groups=2), TypeError, r"input_shape must be an int; got 8.0"),
        (lambda: fastconv.conv2d_grad_input((2, 4, 8, True), w4, np.zeros((2, 6, 6, 6)), groups=2), TypeError, r"input_shape must be an int; got True"),
        (lambda: fastconv.conv2d_grad_input(8, w4, np.zeros((2, 6, 6, 6)), groups=2), TypeError, r"input_shape must be a tuple of 4 ints"),
        (lambda: fastconv.conv2d_grad_weight(x4, (6, 2, 3, 0), np.zeros((2, 6, 6, 6)), groups=2), ValueError, r"weight_shape entries must all be >= 1"),
        (lambda: fastconv.conv1d_grad_weight(x3, (6, 2, 3), np.zeros((2, 6, 5)), groups=2), ValueError, r"grad_output has shape \(2, 6, 5\).*\(2, 6, 6\)"),
        (lambda: fastconv.conv2d_grad_bias(np.zeros((2, 6, 6))), ValueError, r"grad_output must be a 4-D"),
        # pooling
        (lambda: fastconv.max_pool2d(x4, 3, padding=2), ValueError, r"padding must be at most half the kernel size"),
        (lambda: fastconv.max_pool2d(x4, 0), ValueError, r"kernel_size must be positive"),
        (lambda: fastconv.max_pool2d(x4, 2, stride=0), ValueError, r"stride must be positive"),
        (lambda: fastconv.max_pool2d(x4, 9), ValueError, r"pooling window .* does not fit"),
        (lambda: fastconv.max_pool2d(np.zeros((1, 1, 1, 5)), 2, stride=1, padding=1, dilation=2), ValueError, r"pooling window 0 along spatial axis 0 covers only padding"),
        (lambda: fastconv.max_pool2d(x4, 2, ceil_mode=1), TypeError, r"ceil_mode must be a bool"),
        (lambda: fastconv.max_pool2d(x4, 2.0), TypeError, r"kernel_size must be an int"),
        (lambda: fastconv.max_pool2d_backward(np.zeros((2, 4, 4, 4)), np.zeros((2, 4, 4, 3), np.int64), (2, 4, 8, 8)), ValueError, r"indices has shape \(2, 4, 4, 3\) but grad_output has shape \(2, 4, 4, 4\)"),
        (lambda: fastconv.max_pool2d_backward(np.zeros((2, 4, 4, 4)), np.full((2, 4, 4, 4), 64), (2, 4, 8, 8)), ValueError, r"indices must lie in \[0, 64\).*\[64, 64\]"),
        (lambda: fastconv.max_pool2d_backward(np.zeros((2, 4, 4, 4)), np.full((2, 4, 4, 4), -1), (2, 4, 8, 8)), ValueError, r"indices must lie in \[0, 64\)"),
        (lambda: fastconv.max_pool2d_backward(np.zeros((2, 4, 4, 4)), np.zeros((2, 4, 4, 4)), (2, 4, 8, 8)), TypeError, r"indices must be an integer array"),
        (lambda: fastconv.max_pool2d_backward(np.zeros((2, 4, 4, 4)), np.zeros((2, 4, 4, 4), np.int64), (2, 3, 8, 8)), ValueError, r"does not match input_shape"),
        (lambda: fastconv.max_pool1d_backward(np.zeros((2, 4, 4)), np.full((2, 4, 4), 9), (2, 4, 8)), ValueError, r"indices must lie in \[0, 8\)"),
        # out= arrays
        (lambda: fastconv.max_pool2d_backward(g4, i4, x4.shape, out=np.zeros(x4.shape, np.float32)), TypeError, r"out has dtype float32; this call writes float64"),
        (lambda: fastconv.max_pool2d_backward(g4, i4, x4.shape, out=np.zeros((2, 4, 8, 7))), ValueError, r"out has shape \(2, 4, 8, 7\); the result has shape \(2, 4, 8, 8\)"),
        (lambda: fastconv.max_pool2d_backward(g4, i4, x4.shape, out=np.zeros((2, 4, 8, 16))[..., ::2]), ValueError, r"out must be C-contiguous"),
        (lambda: fastconv.max_pool2d_backward(g4, i4, x4.shape, out=np.broadcast_to(0.0, x4.shape)), ValueError, r"out must be C-contiguous|out is read-only"),
        (lambda: fastconv.max_pool2d_backward(g4, i4, x4.shape, out=_read_only(x4.shape)), ValueError, r"out is read-only"),
        (lambda: fastconv.max_pool2d_backward(g4, i4, x4.shape, out=x4.tolist()), TypeError, r"out must be a NumPy ndarray; got list"),
        (lambda: fastconv.max_pool1d_backward(g3, i3, x3.shape, out=np.zeros((2, 4, 4))), ValueError, r"out has shape \(2, 4, 4\); the result has shape \(2, 4, 8\)"),
        (lambda: fastconv.max_pool2d(x4, 2, out=np.zeros((2, 4, 4, 4))), TypeError, r"out must be a tuple \(values, indices\) of two arrays; got ndarray"),
        (lambda: fastconv.max_pool2d(x4, 2, out=(np.zeros((2, 4, 4, 4)), np.zeros((2, 4, 4, 4)))), TypeError, r"out\[1\] has dtype float64; this call writes int64"),
        (lambda: fastconv.max_pool2d(x4, 2, out=(np.zeros((2, 4, 4, 4)), np.zeros((2, 4, 4, 3), np.int64))), ValueError, r"out\[1\] has shape \(2, 4, 4, 3\); the result has shape \(2, 4, 4, 4\)"),
        (lambda: fastconv.max_pool1d(x3, 2, out=(np.zeros((2, 4, 4), np.float32), np.zeros((2, 4, 4), np.int64))), TypeError, r"out\[0\] has dtype float32; this call writes float64"),
    ],
)
def test_bad_input_raises(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_cached_geometry_keeps_argument_types():
    """A valid call must not make an equal-hashing invalid argument pass later."""
    fastconv.conv2d(x4, w4, groups=2, stride=1)
    fastconv.conv2d(x4[:, :2], w4, groups=1)
    with pytest.raises(TypeError, match="groups must be an int; got True"):
        fastconv.conv2d(x4[:, :2], w4, groups=True)
    with pytest.raises(TypeError, match="stride must be an int; got 1.0"):
        fastconv.conv2d(x4, w4, groups=2, stride=1.0)
    with pytest.raises(TypeError, match="stride must be an int; got True"):
        fastconv.conv2d(x4, w4, groups=2, stride=(1, True))
    fastconv.max_pool2d(x4, 2, ceil_mode=False)
    with pytest.raises(TypeError, match="ceil_mode must be a bool"):
        fastconv.max_pool2d(x4, 2, ceil_mode=0)
    fastconv.conv2d(x4, w4, groups=2, padding="same")
    with pytest.raises(ValueError, match="padding must be an int, a tuple of 2 ints, 'valid' or"):
        fastconv.conv2d(x4, w4, groups=2, padding="Same")


def test_shapes_of_any_int_type_are_accepted():
    """A tuple of Python ints takes a shortcut; lists and NumPy ints the full check."""
    dy = np.ones((2, 6, 6, 6))
    want = fastconv.conv2d_grad_weight(x4, (6, 2, 3, 3), dy, groups=2)
    for shape in ([6, 2, 3, 3], (np.int64(6), 2, np.int32(3), 3), np.array([6, 2, 3, 3])):
        got = fastconv.conv2d_grad_weight(x4, shape, dy, groups=2)
        assert got.shape == (6, 2, 3, 3)
        np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match="weight_shape must be an int; got True"):
        fastconv.conv2d_grad_weight(x4, (6, 2, 3, True), dy, groups=2)


def test_cached_pool_geometry_keeps_kernel_size_type():
    fastconv.max_pool2d(x4, 2)
    with pytest.raises(TypeError, match="kernel_size must be an int"):
        fastconv.max_pool2d(x4, 2.0)
    fastconv.max_pool2d(x4, 1)
    with pytest.raises(TypeError, match="kernel_size must be an int"):
        fastconv.max_pool2d(x4, True)


def test_out_may_not_overlap_what_the_kernel_reads():
    buf = np.zeros(x4.size)
    with pytest.raises(ValueError, match="out may share memory with grad_output"):
        fastconv.max_pool2d_backward(buf[-g4.size:].reshape(g4.shape), i4, x4.shape,
                                     out=buf.reshape(x4.shape))
    with pytest.raises(ValueError, match="out may share memory with indices"):
        fastconv.max_pool2d_backward(g4, i4, g4.shape, out=i4.view(np.float64))
    x = np.zeros(x4.shape)
    idx = np.zeros(x4.shape, np.int64)
    with pytest.raises(ValueError, match=r"out\[0\] may share memory with x"):
        fastconv.max_pool2d(x, 1, out=(x, idx))
    values = np.zeros(x4.shape)
    with pytest.raises(ValueError, match=r"out\[1\] may share memory with out\[0\]"):
        fastconv.max_pool2d(x, 1, out=(values, values.view(np.int64)))
