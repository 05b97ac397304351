"""Depthwise 2-D convolution (groups == C == K): a direct kernel, output rows innermost.

With one input channel per output channel the reduction is only ``R*S``
long, far too short for the packed dot-product engine; instead each output
row is accumulated tap by tap with the row as the innermost, contiguous
(vectorised) loop.
"""

import numpy as np
from numba import prange

from ._jit import parallel_kernel


@parallel_kernel
def depthwise_direct(src, w, bias, out, sh, sw, dh, dw, pt, pl, P, Q, oh0, ow0, osh, osw):
    """``out[n, c, placed(p, q)] = bias[c] + sum_{r,s} w[c, r, s] * src[n, c, p*sh + r*dh - pt, q*sw + s*dw - pl]``.

    Parameters
    ----------
    src : ndarray, shape (N, C, Hs, Ws), C-contiguous
    w : ndarray, shape (C, R, S), C-contiguous, src's dtype
    bias : ndarray, shape (C,)
    out : ndarray, shape (N, C, Ho, Wo), C-contiguous
        Output pixel ``(p, q)`` is written at ``[oh0 + p*osh, ow0 + q*osw]``.
    sh, sw, dh, dw, pt, pl : int
        Stride, dilation and top/left padding (negative crops).
    P, Q, oh0, ow0, osh, osw : int
        Output size and placement.

    Each prange iteration owns one (n, c) plane and its own padded copy of
    the source plane.
    """
    N, C, Hs, Ws = src.shape
    R = w.shape[1]
    S = w.shape[2]
    rows_in = (P - 1) * sh + (R - 1) * dh + 1
    cols_in = (Q - 1) * sw + (S - 1) * dw + 1
    zero = src.dtype.type(0)
    for nc in prange(N * C):
        n = nc // C
        c = nc % C
        plane = np.zeros((rows_in, cols_in), dtype=src.dtype)
        for a in range(rows_in):
            j = a - pt
            if j >= 0 and j < Hs:
                lo = min(max(0, pl), cols_in)
                hi = max(min(cols_in, Ws + pl), lo)
                for b in range(lo, hi):
                    plane[a, b] = src[n, c, j, b - pl]
        row = np.empty(Q, dtype=src.dtype)
        for p in range(P):
            for q in range(Q):
                row[q] = zero
            for r in range(R):
                y = p * sh + r * dh
                for s in range(S):
                    wv = w[c, r, s]
                    x0 = s * dw
                    if sw == 1:
                        for q in range(Q):
                            row[q] += wv * plane[y, x0 + q]
                    else:
                        for q in range(Q):
                            row[q] += wv * plane[y, x0 + q * sw]
            for q in range(Q):
                out[n, c, oh0 + p * osh, ow0 + q * osw] = row[q] + bias[c]
