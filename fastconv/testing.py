"""Finite-difference gradient checks, for fastconv's tests and for users' own code.

Example
-------
>>> import numpy as np, fastconv
>>> from fastconv.testing import assert_gradient_close
>>> rng = np.random.default_rng(0)
>>> x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
>>> g = rng.standard_normal((1, 3, 3, 3))
>>> assert_gradient_close(lambda w_: fastconv.conv2d(x, w_), w,
...                       fastconv.conv2d_grad_weight(x, w.shape, g), g)
"""

import numpy as np

__all__ = ["numerical_gradient", "assert_gradient_close"]


def numerical_gradient(f, x, grad_output, eps=1e-6):
    """Central-difference gradient of ``L(x) = sum(f(x) * grad_output)``.

    That is the vector-Jacobian product ``J^T grad_output``, what a backward
    function returns for upstream gradient ``grad_output``.

    Parameters
    ----------
    f : callable
        Maps an array shaped like ``x`` to an array shaped like ``grad_output``.
        Called ``2 * x.size`` times; keep ``x`` small.
    x : ndarray
        Point of evaluation; converted to float64 and never modified.
    grad_output : array_like
        Upstream gradient, same shape as ``f(x)``.
    eps : float, default 1e-6
        Step.  Truncation error is O(eps**2), rounding error O(1e-16 / eps).

    Returns
    -------
    ndarray, float64, shape ``x.shape``
    """
    x0 = np.array(x, dtype=np.float64)  # a private copy: the caller's x is untouched
    g = np.asarray(grad_output, dtype=np.float64)
    grad = np.empty_like(x0)
    flat, gflat = x0.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = np.sum(np.asarray(f(x0), dtype=np.float64) * g)
        flat[i] = old - eps
        minus = np.sum(np.asarray(f(x0), dtype=np.float64) * g)
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def assert_gradient_close(f, x, analytic, grad_output, eps=1e-6, rtol=1e-6, atol=1e-8):
    """Assert that ``analytic`` equals the finite-difference gradient of ``f`` at ``x``.

    Parameters
    ----------
    f, x, grad_output, eps
        As for :func:`numerical_gradient`.
    analytic : array_like, shape ``x.shape``
        The gradient your backward function computed for ``grad_output``.
    rtol, atol : float
        Passed to ``numpy.testing.assert_allclose``.  The defaults suit float64
        functions of O(1) values; float32 functions need ``eps ~ 1e-2`` and
        ``rtol ~ 1e-2``.

    Raises
    ------
    AssertionError
        With the largest discrepancy, as ``assert_allclose`` reports it.
    """
    analytic = np.asarray(analytic)
    if analytic.shape != np.shape(x):
        raise ValueError(
            f"analytic gradient has shape {analytic.shape} but x has shape {np.shape(x)}"
        )
    numeric = numerical_gradient(f, x, grad_output, eps)
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol,
                               err_msg="analytic gradient differs from finite differences")
