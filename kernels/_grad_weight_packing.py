"""Packing of one band of the weight gradient's operands (see :mod:`.conv2d_grad_weight`).

:func:`pack_dy_rows` packs the output gradient with pixels contiguous;
:func:`pack_x_direct` packs the input into the direct (shifted-plane) layout
and :func:`pack_x_panel` into the panel (im2col) layout.

The packers index flat views with unsigned offsets: no slice objects per
row segment and no negative-index wraparound, so the copy loops become
memcpy/memset (stride 1) or interleaved vector loads (stride 2).  Row
segments are short (8-224 elements), which makes per-segment overhead the
cost that matters.
"""

import numpy as np

from ._blocks import copy_stride2
from ._jit import CalledByAddress, serial_helper


@serial_helper
def _copy_rows(dst, e, ld, src, s0, plane, cb, count, step):
    """``dst[e + c*ld + j] = src[s0 + c*plane + j*step]`` for ``c < cb``, ``j < count``.

    Step 2 goes through :func:`._blocks.copy_stride2`: LLVM makes that loop a
    slow ``vgather`` (a 1 x 1 stride-2 weight gradient ran 1.09x faster
    without it).
    """
    for c in range(cb):
        d0 = e + c * ld
        s = s0 + c * plane
        if step == 1:
            for j in range(count):
                dst[np.uint64(d0 + j)] = src[np.uint64(s + j)]
        elif step == 2:
            copy_stride2(src, s, dst, d0, count)
        else:
            for j in range(count):
                dst[np.uint64(d0 + j)] = src[np.uint64(s + j * step)]


@serial_helper
def _copy_rows_pairs(dst, e, e1, ld, src, s0, plane, cb, count):
    """Both column phases of stride-2 rows in one pass (an interleaved load).

    ``dst[e + c*ld + j] = src[s0 + c*plane + 2*j]``,
    ``dst[e1 + c*ld + j] = src[s0 + c*plane + 2*j + 1]`` for ``c < cb``, ``j < count``.
    """
    for c in range(cb):
        d0 = e + c * ld
        d1 = e1 + c * ld
        s = s0 + c * plane
        for j in range(count):
            dst[np.uint64(d0 + j)] = src[np.uint64(s + 2 * j)]
            dst[np.uint64(d1 + j)] = src[np.uint64(s + 2 * j + 1)]


@serial_helper
def _zero_rows(dst, e, ld, cb, count):
    """``dst[e + c*ld + j] = 0`` for ``c < cb``, ``j < count``."""
    zero = dst.dtype.type(0)
    for c in range(cb):
        d0 = e + c * ld
        for j in range(count):
            dst[np.uint64(d0 + j)] = zero


@serial_helper
def pack_dy_rows(dy, k0, Kg, G0, rows, Hs, Ws, Tp, dyb):
    """``dyb[k, a*Ws + q] = dy[n, k0 + k, p, q]`` for band row ``a`` = global row ``n*Hs + p``.

    The band's global rows are ``G0 <= G0 + a < G0 + rows``.

    Rows with ``p >= P`` (fake pixels) and columns ``rows*Ws <= t < Tp``
    (padding) are zeroed.  Columns ``Q <= q < Ws`` of the other rows (fake
    pixels too) are not written: their positions are the same in every band,
    so they keep the zeros of the freshly allocated buffer.

    Parameters
    ----------
    dy : ndarray, shape (N, K, P, Q), C-contiguous
    k0, Kg : int
        First channel of the group and channels per group.
    G0, rows : int
        First global row of the band and number of rows.
    Hs, Ws : int
        Global rows per image and pixels per row (``Hs >= P``, ``Ws >= Q``).
    Tp : int
    dyb : ndarray, shape (>= Kg, >= Tp), C-contiguous
        Columns ``0:Tp`` of rows ``0:Kg`` written.
    """
    K = dy.shape[1]
    P = dy.shape[2]
    Q = dy.shape[3]
    src = dy.reshape(dy.size)
    dst = dyb.reshape(dyb.size)
    ld = dyb.shape[1]
    for k in range(Kg):
        # channel by channel: each reads one contiguous stretch of dy
        n = G0 // Hs
        p = G0 - n * Hs
        for a in range(rows):
            d0 = k * ld + a * Ws
            if p < P:
                _copy_rows(dst, d0, 0, src, ((n * K + k0 + k) * P + p) * Q, 0, 1, Q, 1)
            else:
                _zero_rows(dst, d0, 0, 1, Ws)
            p += 1
            if p == Hs:
                p = 0
                n += 1
        _zero_rows(dst, k * ld + rows * Ws, 0, 1, Tp - rows * Ws)


@serial_helper
def pack_x_direct(x, c0, cb, cstride, phases_h, phases_w, sh, sw, Hs, Ws, F0, L, buf):
    """Copy channels ``c0:c0+cb`` of one band into the direct layout.

    In the direct layout each (row offset ``a``, column phase ``b``, channel)
    is one flat plane in which image ``n``'s row ``i`` (input row
    ``i*sh + a``, zero outside ``[0, H)``) starts at ``(n*Hs + i)*Ws`` and its
    phase column ``j`` (input column ``j*sw + b``) follows at ``+ j``; every
    other position is zero.  Row offsets are either the row stride phases
    ``0 <= a < sh`` (rows ``i`` are phase rows) or one per kernel row,
    ``a = r*dh - pt`` (row ``i`` is output row ``p``, ``Hs = P``).  ``buf``
    receives positions ``F0 <= f < F0 + L`` of each plane.

    Bands start at a global row, so a buffer position is the same column of
    a global row in every band: columns past a phase's last input column are
    never written and keep the zeros of the freshly allocated buffer.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), C-contiguous
    c0, cb, cstride : int
        First channel, number of channels, buffer rows per phase.
    phases_h, phases_w : ndarray of int64
        Row offsets, and column phases used by some tap.
    sh, sw, Hs, Ws, F0, L : int
    buf : ndarray, shape (>= len(phases_h) * len(phases_w) * cstride, >= L), C-contiguous
        Row ``(ih*len(phases_w) + iw)*cstride + c``; positions ``0:L`` overwritten.
    """
    N = x.shape[0]
    C = x.shape[1]
    H = x.shape[2]
    W = x.shape[3]
    src = x.reshape(x.size)
    dst = buf.reshape(buf.size)
    ld = buf.shape[1]
    nh = phases_h.size
    nw = phases_w.size
    # row by row, all channels of a row at a time (measured 2-4x faster
    # than channel by channel)
    pairs = sw == 2 and nw == 2 and W % 2 == 0
    for gr in range(F0 // Ws, (F0 + L - 1) // Ws + 1):
        start = gr * Ws - F0
        j0 = max(0, -start)
        j1 = min(Ws, L - start)
        n = gr // Hs
        i = gr - n * Hs
        for ih in range(nh):
            a = phases_h[ih]
            in_image = gr >= 0 and n < N and 0 <= i * sh + a < H
            s0 = ((n * C + c0) * H + i * sh + a) * W
            e = ih * nw * cstride * ld + start
            if not in_image:
                for iw in range(nw):
                    _zero_rows(dst, e + iw * cstride * ld + j0, ld, cb, j1 - j0)
            elif pairs:
                jd = max(min(W // 2, j1), j0)
                _copy_rows_pairs(dst, e + j0, e + cstride * ld + j0, ld, src, s0 + 2 * j0,
                                 H * W, cb, jd - j0)
            else:
                for iw in range(nw):
                    b = phases_w[iw]
                    jd = max(min((W - b + sw - 1) // sw, j1), j0)
                    _copy_rows(dst, e + iw * cstride * ld + j0, ld, src, s0 + j0 * sw + b,
                               H * W, cb, jd - j0, sw)


@serial_helper
def pack_x_panel(x, c0, cb, R, S, sh, sw, dh, dw, pt, pl, P, Q, G0, rows, Tp, buf):
    """Copy the patches of channels ``c0:c0+cb`` for one band, one row per tap (im2col).

    ``buf[(c*R + r)*S + s, a*Q + q] = Xpad[n, c0 + c, p*sh + r*dh, q*sw + s*dw]``
    for band row ``a`` = output row ``p`` of image ``n`` (``n*P + p = G0 + a``);
    columns ``rows*Q <= t < Tp`` are zero.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), C-contiguous
    c0, cb, R, S : int
    sh, sw, dh, dw, pt, pl : int
        Stride, dilation, top/left padding.
    P, Q : int
        Output height and width.
    G0, rows, Tp : int
    buf : ndarray, shape (>= cb*R*S, >= Tp), C-contiguous
    """
    C = x.shape[1]
    H = x.shape[2]
    W = x.shape[3]
    src = x.reshape(x.size)
    dst = buf.reshape(buf.size)
    ld = buf.shape[1]
    for a in range(rows):
        n = (G0 + a) // P
        p = G0 + a - n * P
        for r in range(R):
            xi = p * sh + r * dh - pt
            for s in range(S):
                o = s * dw - pl
                # valid q: 0 <= q*sw + o < W
                qlo = min(Q, 0 if o >= 0 else (-o + sw - 1) // sw)
                qhi = min(Q, max(qlo, 0 if W - o <= 0 else (W - o + sw - 1) // sw))
                if xi < 0 or xi >= H:
                    qhi = qlo
                for c in range(cb):
                    e = ((c * R + r) * S + s) * ld + a * Q
                    _zero_rows(dst, e, 0, 1, qlo)
                    if qhi > qlo:
                        s0 = ((n * C + c0 + c) * H + xi) * W + qlo * sw + o
                        _copy_rows(dst, e + qlo, 0, src, s0, 0, 1, qhi - qlo, sw)
                    _zero_rows(dst, e + qhi, 0, 1, Q - qhi)
    for i in range(cb * R * S):
        _zero_rows(dst, i * ld + rows * Q, 0, 1, Tp - rows * Q)


#: How the weight gradient's chunks call the packers (by address, see :mod:`._jit`).
PACK_DY_ROWS = CalledByAddress(pack_dy_rows, arrays=dict(dy=(4, False), dyb=(2, True)))
PACK_X_DIRECT = CalledByAddress(pack_x_direct, arrays=dict(
    x=(4, False), phases_h=(1, False, np.int64), phases_w=(1, False, np.int64), buf=(2, True)))
PACK_X_PANEL = CalledByAddress(pack_x_panel, arrays=dict(x=(4, False), buf=(2, True)))
