"""2-D max-pooling, forward with argmax and backward routed to the argmax."""

import numpy as np
from numba import prange

from ._jit import parallel_pool_kernel


@parallel_pool_kernel
def max_pool2d_forward(x, out, indices, kh, kw, sh, sw, ph, pw, dh, dw):
    """Max over each window; ``indices`` gets ``h*W + w`` of the winner.

    Follows PyTorch's CPU rule exactly: scan the window's in-bounds elements
    in row-major order, take a value when ``v > best or isnan(v)`` (so the
    first maximum wins ties and the last NaN wins), starting from
    ``best = -inf`` at the first in-bounds element (so an all -inf window
    reports its first in-bounds element).  Padding is never a candidate.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), C-contiguous, float32 or float64
    out : ndarray, shape (N, C, P, Q), x's dtype; overwritten
    indices : ndarray, shape (N, C, P, Q), int64; overwritten
    kh, kw, sh, sw, ph, pw, dh, dw : int
        Kernel size, stride, padding, dilation.

    Each prange iteration owns one (n, c) plane of ``out`` and ``indices``.
    """
    N, C, H, W = x.shape
    P = out.shape[2]
    Q = out.shape[3]
    neg_inf = x.dtype.type(-np.inf)
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        for p in range(P):
            h0 = p * sh - ph
            h1 = min(h0 + (kh - 1) * dh + 1, H)
            while h0 < 0:
                h0 += dh
            for q in range(Q):
                w0 = q * sw - pw
                w1 = min(w0 + (kw - 1) * dw + 1, W)
                while w0 < 0:
                    w0 += dw
                best = neg_inf
                best_i = h0 * W + w0
                for h in range(h0, h1, dh):
                    for w in range(w0, w1, dw):
                        v = x[n, c, h, w]
                        if v > best or np.isnan(v):
                            best = v
                            best_i = h * W + w
                out[n, c, p, q] = best
                indices[n, c, p, q] = best_i


@parallel_pool_kernel
def max_pool2d_backward(grad_output, indices, grad_input):
    """``grad_input[n, c].flat[indices[n, c, p, q]] += grad_output[n, c, p, q]``.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, P, Q), C-contiguous, float32 or float64
    indices : ndarray, shape (N, C, P, Q), C-contiguous, int64, each in [0, H*W)
    grad_input : ndarray, shape (N, C, H, W), C-contiguous, grad_output's dtype
        Must be zero on entry.

    Each prange iteration owns one (n, c) plane of ``grad_input`` and adds in
    row-major output order, so overlapping windows accumulate deterministically.
    """
    N, C, H, W = grad_input.shape
    PQ = grad_output.shape[2] * grad_output.shape[3]
    g2 = grad_output.reshape((N * C, PQ))
    i2 = indices.reshape((N * C, PQ))
    dx2 = grad_input.reshape((N * C, H * W))
    for nc in prange(N * C):
        for j in range(PQ):
            dx2[nc, i2[nc, j]] += g2[nc, j]
