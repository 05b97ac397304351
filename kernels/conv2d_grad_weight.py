"""Weight (filter) gradient of ``conv2d``."""

import numpy as np
from numba import prange

from ._jit import parallel_kernel
from ._microkernels import grads_times_panel
from ._panels import pack_tap_major
from ._tiling import GRAD_WEIGHT_ELEMENTS, MAX_CHUNKS, band_rows, n_bands, padded


@parallel_kernel
def grad_weight_packed(x, dy, grad_w, G, R, S, sh, sw, dh, dw, pt, pl, B, Tp, nchunks):
    """``grad_w[k, c, r, s] = sum_{n,p,q} dy[n,k,p,q] * x[n, g*Cg + c, p*sh + r*dh - pt, q*sw + s*dw - pl]``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), C-contiguous
    dy : ndarray, shape (N, K, P, Q), C-contiguous
    grad_w : ndarray, shape (K, C // G, R, S), C-contiguous; overwritten
    G, R, S, sh, sw, dh, dw, pt, pl : int
        Groups, kernel size, stride, dilation, top/left padding.
    B : int
        Output rows per task.
    Tp : int
        ``B * Q`` rounded up to a multiple of the vector width: the padded
        length of each task's reduction.
    nchunks : int
        Number of partial sums.  Chunk ``ch`` owns ``partial[ch]`` and handles
        tasks ``ch, ch + nchunks, ...``; the partials are then added in chunk
        order, so the result does not depend on the thread count.
    """
    N = x.shape[0]
    Cg = x.shape[1] // G
    K = dy.shape[1]
    Kg = K // G
    P = dy.shape[2]
    Q = dy.shape[3]
    PQ = P * Q
    CRS = Cg * R * S
    nb = (P + B - 1) // B
    ntasks = N * G * nb
    dy3 = dy.reshape((N, K, PQ))
    zero = x.dtype.type(0)
    partial = np.zeros((nchunks, K, CRS), dtype=x.dtype)
    for ch in prange(nchunks):
        panel = np.zeros((CRS, Tp), dtype=x.dtype)  # padding columns stay zero
        dyt = np.zeros((Kg, Tp), dtype=x.dtype)
        acc = partial[ch]
        for task in range(ch, ntasks, nchunks):
            b = task % nb
            ng = task // nb
            g = ng % G
            n = ng // G
            p0 = b * B
            rows = min(B, P - p0)
            pack_tap_major(x, n, g * Cg, Cg, R, S, p0, rows, Q,
                           sh, sw, dh, dw, pt, pl, panel)
            T = rows * Q
            for k in range(Kg):
                for t in range(T):
                    dyt[k, t] = dy3[n, g * Kg + k, p0 * Q + t]
                for t in range(T, Tp):
                    dyt[k, t] = zero
            if T < Tp:
                for i in range(CRS):
                    for t in range(T, Tp):
                        panel[i, t] = zero
            grads_times_panel(dyt, g * Kg, Kg, panel, Tp, CRS, acc)
    gw = grad_w.reshape((K, CRS))
    for k in prange(K):
        for i in range(CRS):
            s = zero
            for ch in range(nchunks):
                s += partial[ch, k, i]
            gw[k, i] = s


def conv2d_grad_weight(x, grad_output, grad_weight, stride, padding, dilation, groups):
    """Write dL/dweight into ``grad_weight``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), C-contiguous, float32 or float64
    grad_output : ndarray, shape (N, K, P, Q), C-contiguous, same dtype
    grad_weight : ndarray, shape (K, C // groups, R, S), C-contiguous, same dtype
        Overwritten entirely.
    stride, padding, dilation : (int, int)
        Padding is top/left.
    groups : int
    """
    K, Cg, R, S = grad_weight.shape
    N = x.shape[0]
    P, Q = grad_output.shape[2], grad_output.shape[3]
    B = band_rows(P, Q, Cg * R * S + K // groups, GRAD_WEIGHT_ELEMENTS)
    ntasks = N * groups * n_bands(P, B)
    nchunks = max(1, min(MAX_CHUNKS, ntasks))
    grad_weight_packed(x, grad_output, grad_weight, groups, R, S,
                       stride[0], stride[1], dilation[0], dilation[1],
                       padding[0], padding[1], B, padded(B * Q), nchunks)
