"""Register-blocked dot-product micro-kernel of the packed convolution engine.

It computes a small matrix product whose reduction runs innermost over a
contiguous axis, so LLVM's loop vectoriser turns each reduction into vector
FMAs.  A 4 x 4 block keeps 16 accumulators live, loads 8 values per step and
reuses each of them 4 times.
"""


import numpy as np

from ._jit import CalledByAddress, noalias_helper


@noalias_helper
def weights_times_panel(wmat, k0, Kg, panel, T, L, bias, out3, n, dest):
    """``out3[n, k0+k, dest[t]] = bias[k0+k] + sum_i wmat[k0+k, i] * panel[t, i]``.

    Parameters
    ----------
    wmat : ndarray, shape (Kout, L)
    k0, Kg : int
        First output channel and number of output channels to compute.
    panel : ndarray, shape (>= T, L)
        Pixel-major patches (see ``_panels.pack_rows_from_band``).
    T, L : int
        Pixels in the tile and reduction length.
    bias : ndarray, shape (Kout,)
    out3 : ndarray, shape (N, Kout, Ho * Wo)
    n : int
    dest : ndarray of int64, shape (>= T,)
        Flat output position of each tile pixel (the input gradient of a
        strided convolution writes one stride phase at a time).

    Blocks of 4 channels x 4 pixels keep 16 accumulators.  With fewer than 4
    channels, blocks of 1 channel x 8 pixels keep 8.  A block that would run
    past the last pixel or channel is clamped onto it: it recomputes and
    rewrites the same values instead of needing a separate remainder loop
    (which would add compile time, not speed).
    """
    zero = panel.dtype.type(0)
    last_t = T - 1
    if Kg >= 4:
        for kb in range(0, Kg, 4):
            k = k0 + min(kb, Kg - 4)
            for tb in range(0, T, 4):
                t0 = min(tb, last_t)
                t1 = min(tb + 1, last_t)
                t2 = min(tb + 2, last_t)
                t3 = min(tb + 3, last_t)
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
                for i in range(L):
                    w0 = wmat[k, i]
                    w1 = wmat[k + 1, i]
                    w2 = wmat[k + 2, i]
                    w3 = wmat[k + 3, i]
                    x0 = panel[t0, i]
                    x1 = panel[t1, i]
                    x2 = panel[t2, i]
                    x3 = panel[t3, i]
                    a00 += w0 * x0
                    a01 += w0 * x1
                    a02 += w0 * x2
                    a03 += w0 * x3
                    a10 += w1 * x0
                    a11 += w1 * x1
                    a12 += w1 * x2
                    a13 += w1 * x3
                    a20 += w2 * x0
                    a21 += w2 * x1
                    a22 += w2 * x2
                    a23 += w2 * x3
                    a30 += w3 * x0
                    a31 += w3 * x1
                    a32 += w3 * x2
                    a33 += w3 * x3
                out3[n, k, dest[t0]] = a00 + bias[k]
                out3[n, k, dest[t1]] = a01 + bias[k]
                out3[n, k, dest[t2]] = a02 + bias[k]
                out3[n, k, dest[t3]] = a03 + bias[k]
                out3[n, k + 1, dest[t0]] = a10 + bias[k + 1]
                out3[n, k + 1, dest[t1]] = a11 + bias[k + 1]
                out3[n, k + 1, dest[t2]] = a12 + bias[k + 1]
                out3[n, k + 1, dest[t3]] = a13 + bias[k + 1]
                out3[n, k + 2, dest[t0]] = a20 + bias[k + 2]
                out3[n, k + 2, dest[t1]] = a21 + bias[k + 2]
                out3[n, k + 2, dest[t2]] = a22 + bias[k + 2]
                out3[n, k + 2, dest[t3]] = a23 + bias[k + 2]
                out3[n, k + 3, dest[t0]] = a30 + bias[k + 3]
                out3[n, k + 3, dest[t1]] = a31 + bias[k + 3]
                out3[n, k + 3, dest[t2]] = a32 + bias[k + 3]
                out3[n, k + 3, dest[t3]] = a33 + bias[k + 3]
    else:
        # pixel blocks outside channels: a block's 8 panel rows stay in L1 for all Kg channels
        for tb in range(0, T, 8):
            for k in range(k0, k0 + Kg):
                t0 = min(tb, last_t)
                t1 = min(tb + 1, last_t)
                t2 = min(tb + 2, last_t)
                t3 = min(tb + 3, last_t)
                t4 = min(tb + 4, last_t)
                t5 = min(tb + 5, last_t)
                t6 = min(tb + 6, last_t)
                t7 = min(tb + 7, last_t)
                b0 = zero
                b1 = zero
                b2 = zero
                b3 = zero
                b4 = zero
                b5 = zero
                b6 = zero
                b7 = zero
                for i in range(L):
                    w0 = wmat[k, i]
                    b0 += w0 * panel[t0, i]
                    b1 += w0 * panel[t1, i]
                    b2 += w0 * panel[t2, i]
                    b3 += w0 * panel[t3, i]
                    b4 += w0 * panel[t4, i]
                    b5 += w0 * panel[t5, i]
                    b6 += w0 * panel[t6, i]
                    b7 += w0 * panel[t7, i]
                out3[n, k, dest[t0]] = b0 + bias[k]
                out3[n, k, dest[t1]] = b1 + bias[k]
                out3[n, k, dest[t2]] = b2 + bias[k]
                out3[n, k, dest[t3]] = b3 + bias[k]
                out3[n, k, dest[t4]] = b4 + bias[k]
                out3[n, k, dest[t5]] = b5 + bias[k]
                out3[n, k, dest[t6]] = b6 + bias[k]
                out3[n, k, dest[t7]] = b7 + bias[k]


#: How the packed engine's tasks call the micro-kernel (by address, see :mod:`._jit`).
WEIGHTS_TIMES_PANEL = CalledByAddress(weights_times_panel, arrays=dict(
    wmat=(2, False), panel=(2, False), bias=(1, False), out3=(3, True),
    dest=(1, False, np.int64)))
