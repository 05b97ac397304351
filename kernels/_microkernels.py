"""Register-blocked dot-product micro-kernel of the packed convolution engine.

It computes a small matrix product whose reduction runs innermost over a
contiguous axis, in blocks of 4 output channels x 4 pixels
(:func:`._blocks.dot_block_4x4`, 16 vector accumulators, 8 vector loads per
16 FMAs).
"""

import numpy as np

from ._blocks import dot_block_4x4
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

    Blocks of 4 channels x 4 pixels (:func:`dot_block_4x4`).  A block that
    would run past the last pixel or channel is clamped onto it: it
    recomputes and rewrites the same values instead of needing a separate
    remainder loop (which would add compile time, not speed).  With fewer
    than 4 channels (only when tests force this engine) the last channel
    repeats.
    """
    last_k = Kg - 1
    last_t = T - 1
    c = np.empty(16, dtype=panel.dtype)
    for kb in range(0, Kg, 4):
        k = k0 + min(kb, max(Kg - 4, 0))
        k1 = k + min(1, last_k)
        k2 = k + min(2, last_k)
        k3 = k + min(3, last_k)
        for tb in range(0, T, 4):
            t0 = min(tb, last_t)
            t1 = min(tb + 1, last_t)
            t2 = min(tb + 2, last_t)
            t3 = min(tb + 3, last_t)
            dot_block_4x4(wmat, (k * L, k1 * L, k2 * L, k3 * L),
                          panel, (t0 * L, t1 * L, t2 * L, t3 * L), L, c)
            for r, kr in enumerate((k, k1, k2, k3)):
                bk = bias[kr]
                out3[n, kr, dest[t0]] = c[4 * r] + bk
                out3[n, kr, dest[t1]] = c[4 * r + 1] + bk
                out3[n, kr, dest[t2]] = c[4 * r + 2] + bk
                out3[n, kr, dest[t3]] = c[4 * r + 3] + bk


#: How the packed engine's tasks call the micro-kernel (by address, see :mod:`._jit`).
WEIGHTS_TIMES_PANEL = CalledByAddress(weights_times_panel, arrays=dict(
    wmat=(2, False), panel=(2, False), bias=(1, False), out3=(3, True),
    dest=(1, False, np.int64)))
