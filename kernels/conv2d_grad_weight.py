"""Weight (filter) gradient of ``conv2d``."""

import numpy as np
from numba import prange

from ._jit import parallel_kernel, serial_helper
from ._tiling import GRAD_WEIGHT_ELEMENTS, MAX_CHUNKS, band_rows, n_bands, padded


@serial_helper
def pack_tap_major(src, n, c0, Cg, R, S, p0, rows, Q,
                   sh, sw, dh, dw, pt, pl, panel):
    """Fill ``panel[(c*R + r)*S + s, a*Q + q]`` for output rows ``p0 <= p0 + a < p0 + rows``.

    Pixel-contiguous rows let a reduction over output pixels (the weight
    gradient) run innermost and contiguous.  Column ranges that fall in the
    padding are computed once per row, so the copy loop has no branches.

    Parameters
    ----------
    src : ndarray, shape (N, C, H, W)
    n, c0, Cg, R, S : int
        Image, first channel of the group, channels per group, kernel size.
    p0, rows, Q : int
        First output row, rows in the band, output width.
    sh, sw, dh, dw, pt, pl : int
        Stride, dilation, top/left padding.
    panel : ndarray, shape (Cg*R*S, >= rows*Q)
    """
    H = src.shape[2]
    W = src.shape[3]
    zero = panel.dtype.type(0)
    for c in range(Cg):
        for r in range(R):
            for s in range(S):
                row = (c * R + r) * S + s
                off = s * dw - pl
                # valid q: 0 <= q*sw + off < W
                qlo = 0 if off >= 0 else (-off + sw - 1) // sw
                qhi = 0 if W - off <= 0 else (W - off + sw - 1) // sw
                qlo = min(qlo, Q)
                qhi = min(max(qhi, qlo), Q)
                for a in range(rows):
                    t0 = a * Q
                    j = (p0 + a) * sh + r * dh - pt
                    if j < 0 or j >= H:
                        for q in range(Q):
                            panel[row, t0 + q] = zero
                    else:
                        for q in range(qlo):
                            panel[row, t0 + q] = zero
                        for q in range(qlo, qhi):
                            panel[row, t0 + q] = src[n, c0 + c, j, q * sw + off]
                        for q in range(qhi, Q):
                            panel[row, t0 + q] = zero


@serial_helper
def grads_times_panel(dyt, k0, Kg, panel, T, CRS, acc):
    """``acc[k0+k, i] += sum_t dyt[k, t] * panel[i, t]``.

    Parameters
    ----------
    dyt : ndarray, shape (Kg, >= T)
        Output-gradient tile of this group's channels.
    k0, Kg, T : int
        First output channel in ``acc``, number of channels, reduction length.
    panel : ndarray, shape (CRS, >= T)
        Tap-major patches (see ``_panels.pack_tap_major``).
    CRS : int
    acc : ndarray, shape (K, CRS)
        Accumulated into at rows ``k0:k0+Kg``.
    """
    zero = panel.dtype.type(0)
    i_main = CRS - CRS % 4
    k_main = Kg - Kg % 4
    for kb in range(0, k_main, 4):
        k = k0 + kb
        for i in range(0, i_main, 4):
            a00 = zero
            a01 = zero
            a02 = zero
            a03 = zero
            a10 = zero
            a11 = zero
            a12 = zero
            a13 = zero
            a20 = zero
            a21 = zero
            a22 = zero
            a23 = zero
            a30 = zero
            a31 = zero
            a32 = zero
            a33 = zero
            for t in range(T):
                d0 = dyt[kb, t]
                d1 = dyt[kb + 1, t]
                d2 = dyt[kb + 2, t]
                d3 = dyt[kb + 3, t]
                x0 = panel[i, t]
                x1 = panel[i + 1, t]
                x2 = panel[i + 2, t]
                x3 = panel[i + 3, t]
                a00 += d0 * x0
                a01 += d0 * x1
                a02 += d0 * x2
                a03 += d0 * x3
                a10 += d1 * x0
                a11 += d1 * x1
                a12 += d1 * x2
                a13 += d1 * x3
                a20 += d2 * x0
                a21 += d2 * x1
                a22 += d2 * x2
                a23 += d2 * x3
                a30 += d3 * x0
                a31 += d3 * x1
                a32 += d3 * x2
                a33 += d3 * x3
            acc[k, i] += a00
            acc[k, i + 1] += a01
            acc[k, i + 2] += a02
            acc[k, i + 3] += a03
            acc[k + 1, i] += a10
            acc[k + 1, i + 1] += a11
            acc[k + 1, i + 2] += a12
            acc[k + 1, i + 3] += a13
            acc[k + 2, i] += a20
            acc[k + 2, i + 1] += a21
            acc[k + 2, i + 2] += a22
            acc[k + 2, i + 3] += a23
            acc[k + 3, i] += a30
            acc[k + 3, i + 1] += a31
            acc[k + 3, i + 2] += a32
            acc[k + 3, i + 3] += a33
        for i in range(i_main, CRS):
            for kk in range(kb, kb + 4):
                a = zero
                for t in range(T):
                    a += dyt[kk, t] * panel[i, t]
                acc[k0 + kk, i] += a
    for kk in range(k_main, Kg):
        for i in range(CRS):
            a = zero
            for t in range(T):
                a += dyt[kk, t] * panel[i, t]
            acc[k0 + kk, i] += a


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
