"""The README's worked example, exactly."""

import numpy as np
import pytest

import fastconv

I = np.array([[1, 2, 1], [0, 1, 2], [2, 1, 0]], dtype=np.float64)[None, None]
W = np.array([[0.5, 0.2], [0.3, 0.7]])[None, None]
Y = np.array([[1, 2], [2, 1]], dtype=np.float64)[None, None]
TOL = dict(rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_worked_example(dtype, atol):
    x, w, y = I.astype(dtype), W.astype(dtype), Y.astype(dtype)
    yhat = fastconv.conv2d(x, w)
    np.testing.assert_allclose(yhat[0, 0], [[1.6, 2.9], [1.5, 1.2]], rtol=0, atol=atol)
    loss = np.mean((yhat - y) ** 2)
    assert abs(loss - 0.365) < atol
    g = (yhat - y) / 2  # dL/dYhat = 2 (Yhat - Y) / 4
    gw = fastconv.conv2d_grad_weight(x, w.shape, g)
    np.testing.assert_allclose(gw[0, 0], [[1.3, 1.0], [0.05, 0.95]], rtol=0, atol=atol)
    gx = fastconv.conv2d_grad_input(x.shape, w, g)
    np.testing.assert_allclose(
        gx[0, 0], [[0.15, 0.285, 0.09], [-0.035, 0.345, 0.335], [-0.075, -0.145, 0.07]],
        rtol=0, atol=atol)
    w_new = w - dtype(0.1) * gw
    np.testing.assert_allclose(w_new[0, 0], [[0.37, 0.1], [0.295, 0.605]], rtol=0, atol=atol)
    loss_new = np.mean((fastconv.conv2d(x, w_new) - y) ** 2)
    assert abs(loss_new - 0.166225) < atol


def test_the_two_position_derivation_is_wrong():
    """The widely copied derivation's gradient does not match finite differences; ours does."""
    from fastconv.testing import numerical_gradient

    g = (fastconv.conv2d(I, W) - Y) / 2
    numeric = numerical_gradient(lambda w: fastconv.conv2d(I, w), W, g)
    np.testing.assert_allclose(numeric[0, 0], [[1.3, 1.0], [0.05, 0.95]], rtol=0, atol=1e-8)
    assert not np.allclose(numeric[0, 0], [[0.3, 0.35], [-0.5, 0.05]], atol=1e-3)
    wrong_step = np.array([[0.47, 0.165], [0.35, 0.695]])[None, None]
    assert abs(np.mean((fastconv.conv2d(I, wrong_step) - Y) ** 2) - 0.2938) < 1e-4
