"""Weight (filter) gradient of ``conv2d``."""

import numpy as np
from numba import prange

from ._jit import parallel_kernel
from ._microkernels import grads_times_panel
from ._panels import pack_tap_major
from ._tiling import MAX_CHUNKS, n_tiles, tile_pixels


@parallel_kernel
def grad_weight_packed(x, dy, grad_w, G, R, S, sh, sw, dh, dw, pt, pl, T, nchunks):
    """``grad_w[k, c, r, s] = sum_{n,p,q} dy[n,k,p,q] * x[n, g*Cg + c, p*sh + r*dh - pt, q*sw + s*dw - pl]``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), C-contiguous
    dy : ndarray, shape (N, K, P, Q), C-contiguous
    grad_w : ndarray, shape (K, C // G, R, S), C-contiguous; overwritten
    G, R, S, sh, sw, dh, dw, pt, pl : int
        Groups, kernel size, stride, dilation, top/left padding.
    T : int
        Output pixels per tile.
    nchunks : int
        Number of partial sums.  Chunk ``ch`` owns ``partial[ch]`` and handles
        tasks ``ch, ch + nchunks, ...``; the partials are then added in chunk
        order, so the result does not depend on the thread count.
    """
    N = x.shape[0]
    Cg = x.shape[1] // G
    K = dy.shape[1]
    Kg = K // G
    PQ = dy.shape[2] * dy.shape[3]
    Q = dy.shape[3]
    CRS = Cg * R * S
    ntiles = (PQ + T - 1) // T
    ntasks = N * G * ntiles
    dy3 = dy.reshape((N, K, PQ))
    partial = np.zeros((nchunks, K, CRS), dtype=x.dtype)
    for ch in prange(nchunks):
        panel = np.empty((CRS, T), dtype=x.dtype)
        acc = partial[ch]
        for task in range(ch, ntasks, nchunks):
            tile = task % ntiles
            ng = task // ntiles
            g = ng % G
            n = ng // G
            pix0 = tile * T
            Tn = min(T, PQ - pix0)
            pack_tap_major(x, n, g * Cg, Cg, R, S, pix0, Tn, Q,
                           sh, sw, dh, dw, pt, pl, panel)
            grads_times_panel(dy3, n, g * Kg, Kg, pix0, Tn, panel, CRS, acc)
    gw = grad_w.reshape((K, CRS))
    zero = x.dtype.type(0)
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
    PQ = grad_output.shape[2] * grad_output.shape[3]
    T = tile_pixels(PQ, Cg * R * S)
    ntasks = N * groups * n_tiles(PQ, T)
    nchunks = max(1, min(MAX_CHUNKS, ntasks))
    grad_weight_packed(x, grad_output, grad_weight, groups, R, S,
                       stride[0], stride[1], dilation[0], dilation[1],
                       padding[0], padding[1], T, nchunks)
