"""Finite-difference checks of every gradient function, through fastconv.testing."""

import numpy as np
import pytest

import fastconv
from fastconv.testing import assert_gradient_close, numerical_gradient

CONV2D = [
    ((2, 2, 5, 6), (3, 2, 3, 2), dict()),
    ((1, 4, 7, 7), (4, 2, 3, 3), dict(stride=2, padding=1, groups=2)),
    ((1, 3, 6, 5), (3, 1, 2, 3), dict(dilation=(2, 1), padding="same", groups=3)),
    ((1, 1, 8, 8), (2, 1, 3, 3), dict(stride=3, padding=(0, 2))),
]


@pytest.mark.parametrize("x_shape, w_shape, kw", CONV2D)
def test_conv2d_gradients_by_finite_differences(x_shape, w_shape, kw):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    g = rng.standard_normal(fastconv.conv2d(x, w, b, **kw).shape)
    assert_gradient_close(lambda x_: fastconv.conv2d(x_, w, b, **kw), x,
                          fastconv.conv2d_grad_input(x.shape, w, g, **kw), g)
    assert_gradient_close(lambda w_: fastconv.conv2d(x, w_, b, **kw), w,
                          fastconv.conv2d_grad_weight(x, w.shape, g, **kw), g)
    assert_gradient_close(lambda b_: fastconv.conv2d(x, w, b_, **kw), b,
                          fastconv.conv2d_grad_bias(g), g)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=2, dilation=2), dict(padding="same")])
def test_conv1d_gradients_by_finite_differences(kw):
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 2, 9)), rng.standard_normal((4, 2, 3)), rng.standard_normal(4)
    g = rng.standard_normal(fastconv.conv1d(x, w, b, **kw).shape)
    assert_gradient_close(lambda x_: fastconv.conv1d(x_, w, b, **kw), x,
                          fastconv.conv1d_grad_input(x.shape, w, g, **kw), g)
    assert_gradient_close(lambda w_: fastconv.conv1d(x, w_, b, **kw), w,
                          fastconv.conv1d_grad_weight(x, w.shape, g, **kw), g)
    assert_gradient_close(lambda b_: fastconv.conv1d(x, w, b_, **kw), b,
                          fastconv.conv1d_grad_bias(g), g)


@pytest.mark.parametrize("spatial, kw", [(2, dict(kernel_size=2)),
                                         (2, dict(kernel_size=3, stride=2, padding=1)),
                                         (2, dict(kernel_size=3, stride=1, dilation=2)),
                                         (1, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True))])
def test_max_pool_gradients_by_finite_differences(spatial, kw):
    fwd, bwd = ((fastconv.max_pool2d, fastconv.max_pool2d_backward) if spatial == 2
                else (fastconv.max_pool1d, fastconv.max_pool1d_backward))
    shape = (2, 2, 7, 6) if spatial == 2 else (2, 2, 11)
    # distinct values, well separated: the max is differentiable at x
    x = np.random.default_rng(3).permutation(np.prod(shape)).reshape(shape).astype(float)
    out, idx = fwd(x, **kw)
    g = np.random.default_rng(4).standard_normal(out.shape)
    assert_gradient_close(lambda x_: fwd(x_, **kw)[0], x, bwd(g, idx, x.shape), g, eps=1e-3)


def test_gradient_helper_catches_a_wrong_gradient():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((1, 1, 4, 4)), rng.standard_normal((1, 1, 2, 2))
    g = rng.standard_normal((1, 1, 3, 3))
    right = fastconv.conv2d_grad_weight(x, w.shape, g)
    with pytest.raises(AssertionError):
        assert_gradient_close(lambda w_: fastconv.conv2d(x, w_), w, right * 1.01, g)


def test_numerical_gradient_leaves_input_untouched():
    x = np.arange(4.0)
    before = x.copy()
    numerical_gradient(lambda a: a ** 2, x, np.ones(4))
    np.testing.assert_array_equal(x, before)
