"""Register-blocked micro-kernels of the weight gradient (see :mod:`.conv2d_grad_weight`).

:func:`dy_times_taps` multiplies rows of the packed output gradient by rows
of packed input ("taps"), reducing over the contiguous pixel axis in blocks of
4 output channels x 4 taps; :func:`row_times_taps` handles leftover channels.
"""

import numpy as np

from ._jit import CalledByAddress, call_compiled, serial_helper


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
    itself when no packing is needed).  Blocks of 4 channels x 4 taps keep
    16 accumulators, each reduced over the contiguous pixel axis; the last
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
    zero = dyb.dtype.type(0)
    k4 = Kg - Kg % 4
    for kb in range(0, k4, 4):
        # 1-D views: their indices are provably non-negative, so loads stay
        # contiguous vector loads (an index like off + t gets a negative-index
        # wraparound select, which LLVM turns into gathers).
        y0 = dyb[kr0 + kb, t0:]
        y1 = dyb[kr0 + kb + 1, t0:]
        y2 = dyb[kr0 + kb + 2, t0:]
        y3 = dyb[kr0 + kb + 3, t0:]
        for i in range(i0, i1, 4):
            v0 = buf[xr0 + xrow[i], xo0 + off[i]:]
            v1 = buf[xr0 + xrow[i + 1], xo0 + off[i + 1]:]
            v2 = buf[xr0 + xrow[i + 2], xo0 + off[i + 2]:]
            v3 = buf[xr0 + xrow[i + 3], xo0 + off[i + 3]:]
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
                d0 = y0[t]
                d1 = y1[t]
                d2 = y2[t]
                d3 = y3[t]
                x0 = v0[t]
                x1 = v1[t]
                x2 = v2[t]
                x3 = v3[t]
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
            acc[kb, i] += a00
            acc[kb, i + 1] += a01
            acc[kb, i + 2] += a02
            acc[kb, i + 3] += a03
            acc[kb + 1, i] += a10
            acc[kb + 1, i + 1] += a11
            acc[kb + 1, i + 2] += a12
            acc[kb + 1, i + 3] += a13
            acc[kb + 2, i] += a20
            acc[kb + 2, i + 1] += a21
            acc[kb + 2, i + 2] += a22
            acc[kb + 2, i + 3] += a23
            acc[kb + 3, i] += a30
            acc[kb + 3, i + 1] += a31
            acc[kb + 3, i + 2] += a32
            acc[kb + 3, i + 3] += a33
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
