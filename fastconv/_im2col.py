"""NumPy im2col convolution: the baseline fastconv's kernels must beat.

The textbook way to convolve with NumPy alone: ``sliding_window_view``
gives every receptive field as a (strided, zero-copy) view, and one
``tensordot`` per group contracts it with the filters, which copies the view
into an im2col matrix and hands it to BLAS.  ``grad_input`` is the transposed
GEMM followed by a col2im scatter-add, one strided slice per kernel tap.

Unlike :mod:`fastconv.reference` this computes in the inputs' dtype (float32
stays float32), so it is a like-for-like speed baseline.  It is used by the
benchmarks and their tests only, never by the library.  Inputs are assumed
valid; ``stride``, ``padding`` and ``dilation`` are ints or pairs of ints.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _pair(value):
    return (int(value), int(value)) if np.ndim(value) == 0 else tuple(int(v) for v in value)


def _geometry(input_shape, weight_shape, stride, padding, dilation):
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    H, W = input_shape[2:]
    R, S = weight_shape[2:]
    P = (H + 2 * ph - dh * (R - 1) - 1) // sh + 1
    Q = (W + 2 * pw - dw * (S - 1) - 1) // sw + 1
    return (sh, sw), (ph, pw), (dh, dw), (P, Q)


def _windows(x, R, S, stride, padding, dilation, P, Q):
    """View (N, C, P, Q, R, S): ``[n, c, p, q, r, s] = Xpad[n, c, p*sh + r*dh, q*sw + s*dw]``."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(x, (dh * (R - 1) + 1, dw * (S - 1) + 1), axis=(2, 3))
    return win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :P, :Q]


def conv2d(x, weight, stride=1, padding=0, dilation=1, groups=1):
    """Forward convolution (no bias) by im2col + GEMM.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    weight : ndarray, shape (K, C // groups, R, S), x's dtype
    stride, padding, dilation : int or (int, int)
    groups : int

    Returns
    -------
    ndarray, shape (N, K, P, Q), x's dtype
    """
    N, C = x.shape[:2]
    K, Cg, R, S = weight.shape
    Kg = K // groups
    stride, padding, dilation, (P, Q) = _geometry(x.shape, weight.shape, stride, padding,
                                                  dilation)
    win = _windows(x, R, S, stride, padding, dilation, P, Q)
    out = np.empty((N, K, P, Q), dtype=np.result_type(x, weight))
    for g in range(groups):
        ks, cs = slice(g * Kg, (g + 1) * Kg), slice(g * Cg, (g + 1) * Cg)
        # (Kg, Cg*R*S) @ (Cg*R*S, N*P*Q) -> (Kg, N, P, Q)
        cols = np.tensordot(weight[ks], win[:, cs], axes=([1, 2, 3], [1, 4, 5]))
        out[:, ks] = cols.transpose(1, 0, 2, 3)
    return out


def conv2d_grad_input(input_shape, weight, grad_output, stride=1, padding=0, dilation=1,
                      groups=1):
    """Gradient with respect to the input: GEMM into columns, then col2im.

    Parameters
    ----------
    input_shape : tuple of 4 ints, (N, C, H, W)
    weight : ndarray, shape (K, C // groups, R, S)
    grad_output : ndarray, shape (N, K, P, Q), weight's dtype
    stride, padding, dilation, groups
        As given to :func:`conv2d`.

    Returns
    -------
    ndarray, shape input_shape
    """
    N, C, H, W = input_shape
    K, Cg, R, S = weight.shape
    Kg = K // groups
    (sh, sw), (ph, pw), (dh, dw), (P, Q) = _geometry(input_shape, weight.shape, stride,
                                                     padding, dilation)
    dtype = np.result_type(weight, grad_output)
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype)
    for g in range(groups):
        ks = slice(g * Kg, (g + 1) * Kg)
        # (Cg*R*S, Kg) @ (Kg, N*P*Q) -> (Cg, R, S, N, P, Q)
        cols = np.tensordot(weight[ks], grad_output[:, ks], axes=([0], [1]))
        for r in range(R):
            for s in range(S):
                rows = slice(r * dh, r * dh + sh * (P - 1) + 1, sh)
                colsl = slice(s * dw, s * dw + sw * (Q - 1) + 1, sw)
                dxp[:, g * Cg:(g + 1) * Cg, rows, colsl] += cols[:, r, s].transpose(1, 0, 2, 3)
    return dxp[:, :, ph:ph + H, pw:pw + W]


def conv2d_grad_weight(x, weight_shape, grad_output, stride=1, padding=0, dilation=1,
                       groups=1):
    """Gradient with respect to the weight: im2col, then one GEMM per group.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    weight_shape : tuple of 4 ints, (K, C // groups, R, S)
    grad_output : ndarray, shape (N, K, P, Q), x's dtype
    stride, padding, dilation, groups
        As given to :func:`conv2d`.

    Returns
    -------
    ndarray, shape weight_shape
    """
    K, Cg, R, S = weight_shape
    Kg = K // groups
    stride, padding, dilation, (P, Q) = _geometry(x.shape, weight_shape, stride, padding,
                                                  dilation)
    win = _windows(x, R, S, stride, padding, dilation, P, Q)
    dw = np.empty(weight_shape, dtype=np.result_type(x, grad_output))
    for g in range(groups):
        ks, cs = slice(g * Kg, (g + 1) * Kg), slice(g * Cg, (g + 1) * Cg)
        # (Kg, N*P*Q) @ (N*P*Q, Cg*R*S) -> (Kg, Cg, R, S)
        dw[ks] = np.tensordot(grad_output[:, ks], win[:, cs], axes=([0, 2, 3], [0, 2, 3]))
    return dw
