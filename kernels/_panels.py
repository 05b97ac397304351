"""Packing of input patches into per-task panels (a tile of im2col, never all of it).

A *tile* is ``T`` consecutive output pixels of one image and one group, counted
in the flattened ``P * Q`` output plane, so a tile of the output is contiguous
in memory.  The patch of output pixel ``(p, q)`` at tap ``(c, r, s)`` reads the
source element at row ``j = p*sh + r*dh - pt`` and column
``i = q*sw + s*dw - pl`` of channel ``c``.  Sources may be *upsampled* by
``(uh, uw)``: position ``j`` exists only when ``j % uh == 0`` and then reads
source row ``j // uh`` (the input gradient of a strided convolution is a
convolution over the stride-upsampled output gradient).  Positions outside the
source read zero: that is the zero padding.

Column index of tap ``(c, r, s)`` in a panel is ``(c*R + r)*S + s``, the order of
a C-contiguous ``(K, C, R, S)`` weight reshaped to ``(K, C*R*S)``.
"""

import numpy as np

from ._jit import serial_helper


@serial_helper
def source_index(pos, up, extent):
    """Return the source index read at upsampled position ``pos``, or -1 for zero."""
    if pos < 0:
        return -1
    if up != 1:
        if pos % up != 0:
            return -1
        pos = pos // up
    if pos >= extent:
        return -1
    return pos


@serial_helper
def pack_pixel_major(src, n, c0, Cg, R, S, pix0, T, Q,
                     sh, sw, dh, dw, pt, pl, uh, uw, panel):
    """Fill ``panel[t, (c*R + r)*S + s]`` for the ``T`` pixels from ``pix0``.

    Parameters
    ----------
    src : ndarray, shape (N, C, Hs, Ws), C-contiguous, float32 or float64
    n, c0, Cg : int
        Image, first channel of the group, channels per group.
    R, S : int
        Kernel height and width.
    pix0, T, Q : int
        First flattened output pixel, pixels in the tile, output width.
    sh, sw, dh, dw, pt, pl, uh, uw : int
        Stride, dilation, top/left padding and source upsampling.
    panel : ndarray, shape (>= T, Cg*R*S), same dtype as ``src``
        Written; rows ``T:`` are left untouched.
    """
    Hs = src.shape[2]
    Ws = src.shape[3]
    zero = panel.dtype.type(0)
    for t in range(T):
        p = (pix0 + t) // Q
        q = (pix0 + t) - p * Q
        for c in range(Cg):
            for r in range(R):
                j = source_index(p * sh + r * dh - pt, uh, Hs)
                base = (c * R + r) * S
                if j < 0:
                    for s in range(S):
                        panel[t, base + s] = zero
                else:
                    for s in range(S):
                        i = source_index(q * sw + s * dw - pl, uw, Ws)
                        if i < 0:
                            panel[t, base + s] = zero
                        else:
                            panel[t, base + s] = src[n, c0 + c, j, i]


@serial_helper
def pack_tap_major(src, n, c0, Cg, R, S, pix0, T, Q,
                   sh, sw, dh, dw, pt, pl, panel):
    """Fill ``panel[(c*R + r)*S + s, t]``: the transpose of ``pack_pixel_major``.

    Same parameters as :func:`pack_pixel_major` without upsampling; ``panel``
    has shape ``(Cg*R*S, >= T)``.  Pixel-contiguous rows let a reduction over
    output pixels (the weight gradient) run innermost and contiguous.
    """
    Hs = src.shape[2]
    Ws = src.shape[3]
    zero = panel.dtype.type(0)
    for c in range(Cg):
        for r in range(R):
            for s in range(S):
                row = (c * R + r) * S + s
                p = pix0 // Q
                q = pix0 - p * Q
                for t in range(T):
                    j = p * sh + r * dh - pt
                    i = q * sw + s * dw - pl
                    if j >= 0 and j < Hs and i >= 0 and i < Ws:
                        panel[row, t] = src[n, c0 + c, j, i]
                    else:
                        panel[row, t] = zero
                    q += 1
                    if q == Q:
                        q = 0
                        p += 1
