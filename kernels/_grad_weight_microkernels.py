"""Register-blocked micro-kernels of the weight gradient (see :mod:`.conv2d_grad_weight`).

:func:`dy_times_taps` multiplies rows of the packed output gradient by rows
of packed input ("taps"), reducing over the contiguous pixel axis in blocks of
4 output channels x 4 taps (:func:`._blocks.dot_block_4x4`);
:func:`row_times_taps` handles leftover channels.
"""

import numpy as np

from ._jit import CalledByAddress, call_compiled, serial_helper
from ._blocks import dot_block_4x4


@serial_helper
def row_times_taps(y, buf, xr0, xo0, xrow, off, T, i0, i1, acc):
    """``acc[i] += sum_{t < T} y[t] * buf[xr0 + xrow[i], xo0 + off[i] + t]`` for ``i0 <= i < i1``.

    One output channel: blocks of 8 taps (8 accumulators, 9 loads), then 4,
    then single taps.

    Parameters
    ----------
    y : ndarray, shape (>= T,)
    buf, xr0, xo0, xrow, off, T
        As for :func:`dy_times_taps`.
    i0, i1 : int
    acc : ndarray, shape (>= i1,)
        Accumulated into.
    """
    zero = y.dtype.type(0)
    i = i0
    while i + 8 <= i1:
        v0 = buf[xr0 + xrow[i], xo0 + off[i]:]
        v1 = buf[xr0 + xrow[i + 1], xo0 + off[i + 1]:]
        v2 = buf[xr0 + xrow[i + 2], xo0 + off[i + 2]:]
        v3 = buf[xr0 + xrow[i + 3], xo0 + off[i + 3]:]
        v4 = buf[xr0 + xrow[i + 4], xo0 + off[i + 4]:]
        v5 = buf[xr0 + xrow[i + 5], xo0 + off[i + 5]:]
        v6 = buf[xr0 + xrow[i + 6], xo0 + off[i + 6]:]
        v7 = buf[xr0 + xrow[i + 7], xo0 + off[i + 7]:]
        a0 = zero
        a1 = zero
        a2 = zero
        a3 = zero
        a4 = zero
        a5 = zero
        a6 = zero
        a7 = zero
        for t in range(T):
            d = y[t]
            a0 += d * v0[t]
            a1 += d * v1[t]
            a2 += d * v2[t]
            a3 += d * v3[t]
            a4 += d * v4[t]
            a5 += d * v5[t]
            a6 += d * v6[t]
            a7 += d * v7[t]
        acc[i] += a0
        acc[i + 1] += a1
        acc[i + 2] += a2
        acc[i + 3] += a3
        acc[i + 4] += a4
        acc[i + 5] += a5
        acc[i + 6] += a6
        acc[i + 7] += a7
        i += 8
    if i + 4 <= i1:
        v0 = buf[xr0 + xrow[i], xo0 + off[i]:]
        v1 = buf[xr0 + xrow[i + 1], xo0 + off[i + 1]:]
        v2 = buf[xr0 + xrow[i + 2], xo0 + off[i + 2]:]
        v3 = buf[xr0 + xrow[i + 3], xo0 + off[i + 3]:]
        a0 = zero
        a1 = zero
        a2 = zero
        a3 = zero
        for t in range(T):
            d = y[t]
            a0 += d * v0[t]
            a1 += d * v1[t]
            a2 += d * v2[t]
            a3 += d * v3[t]
        acc[i] += a0
        acc[i + 1] += a1
        acc[i + 2] += a2
        acc[i + 3] += a3
        i += 4
    while i < i1:
        v0 = buf[xr0 + xrow[i], xo0 + off[i]:]
        a0 = zero
        for t in range(T):
            a0 += y[t] * v0[t]
        acc[i] += a0
        i += 1


@serial_helper
def dy_times_taps(dyb, kr0, t0, buf, xr0, xo0, xrow, off, T, Kg, i0, i1, i1_real, acc,
                  rows_fn):
    """``acc[k, i] += sum_{t < T} dyb[kr0 + k, t0 + t] * buf[xr0 + xrow[i], xo0 + off[i] + t]``.

    For ``k < Kg`` and ``i0 <= i < i1``: tap ``i``'s row of patches is a
    slice of ``buf`` row ``xr0 + xrow[i]`` (a packed buffer, or the input
    itself when no packing is needed).  Blocks of 4 channels x 4 taps are
    :func:`._blocks.dot_block_4x4`'s 16 dot products; the last
    ``Kg % 4`` channels go through :func:`row_times_taps` (cheaper than
    padding the channels to a multiple of 4).

    Parameters
    ----------
    dyb : ndarray, 2-D, C-contiguous
        Output gradient with pixels along rows (packed band, or ``dy`` itself).
    kr0, t0 : int
        Row and column of ``dyb`` where channel 0, pixel 0 of the band is.
    buf : ndarray, 2-D, C-contiguous
        Input with pixels along rows (packed, or ``x`` itself).
    xr0, xo0 : int
        Row and column offsets added to every tap's.
    xrow, off : ndarray of int64, shape (>= i1,)
    T : int
        Reduction length (a multiple of :data:`VECTOR_PAD` when packed, so
        the vector loop has no scalar tail).
    Kg : int
        Channels.
    i0, i1, i1_real : int
        Taps to compute: ``i1 - i0`` is a multiple of 4; taps from
        ``i1_real`` on are padding, computed only by the 4 x 4 blocks.
    acc : ndarray, shape (>= Kg, >= i1)
        Accumulated into.
    rows_fn : int
        ``ROW_TIMES_TAPS.address(dtype)`` if ``Kg % 4``, else unused.
    """
    k4 = Kg - Kg % 4
    ldy = dyb.shape[1]
    ldx = buf.shape[1]
    sums = np.empty(16, dtype=dyb.dtype)
    for kb in range(0, k4, 4):
        y0 = (kr0 + kb) * ldy + t0
        ys = (y0, y0 + ldy, y0 + 2 * ldy, y0 + 3 * ldy)
        for i in range(i0, i1, 4):
            xs = ((xr0 + xrow[i]) * ldx + xo0 + off[i],
                  (xr0 + xrow[i + 1]) * ldx + xo0 + off[i + 1],
                  (xr0 + xrow[i + 2]) * ldx + xo0 + off[i + 2],
                  (xr0 + xrow[i + 3]) * ldx + xo0 + off[i + 3])
            dot_block_4x4(dyb, ys, buf, xs, T, sums)
            for r in range(4):
                for s in range(4):
                    acc[kb + r, i + s] += sums[4 * r + s]
    for k in range(k4, Kg):
        call_compiled(rows_fn, row_times_taps, (dyb[kr0 + k, t0:], buf, xr0, xo0, xrow, off, T,
                                                i0, i1_real, acc[k]))


_TAPS = (1, False, np.int64)

#: How :func:`dy_times_taps` calls :func:`row_times_taps`, and the weight
#: gradient's chunks call :func:`dy_times_taps` (by address, see :mod:`._jit`).
ROW_TIMES_TAPS = CalledByAddress(row_times_taps, arrays=dict(
    y=(1, False), buf=(2, False), xrow=_TAPS, off=_TAPS, acc=(1, True)))
DY_TIMES_TAPS = CalledByAddress(dy_times_taps, arrays=dict(
    dyb=(2, False), buf=(2, False), xrow=_TAPS, off=_TAPS, acc=(2, True)))
