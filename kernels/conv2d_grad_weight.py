"""Weight (filter) gradient of ``conv2d``: one long matrix product per group.

``dW[k, c, r, s] = sum_{n,p,q} dY[n,k,p,q] * Xpad[n, g*Cg + c, p*sh + r*dh, q*sw + s*dw]``
is, per group, ``dW[Kg, Cg*R*S] = dY[Kg, pixels] @ patches[pixels, Cg*R*S]``,
a small output with a very long reduction over all ``N*P*Q`` output pixels.

The pixels are cut into bands of whole rows (several images per band when
images are small).  Each band packs ``dY`` and the input with pixels
contiguous, and a 4 x 4 register-blocked micro-kernel reduces over the
band's pixels innermost (LLVM turns that into vector FMAs, see
``CONTRIBUTING.md``).  The input is packed in one of two layouts:

* direct (the fast path): one plane per stride phase and channel, in which a
  tap's patches are a *shifted slice* of the plane, so no patch matrix is
  built (``Cg`` rows are packed instead of ``Cg*R*S``).  The price is a few
  fake pixels (zero output gradient) between rows and images; small images
  with tall kernels use one plane per kernel row instead, which needs no
  fake rows (and packs ``R`` rows per channel).  For 1 x 1
  kernels without padding the layout of ``dY`` (and, at stride 1, of the
  input) is the array itself, read in place;
* panel: one row of patches per tap, exactly like im2col.  Its products are
  exactly those of the definition, so it is the fallback when the direct
  result is not finite: a fake pixel multiplies its input by zero, which
  gives NaN for an infinite or NaN input that the definition never reads.

Bands are grouped into a fixed number of chunks that depends on the shape
only; each chunk sums into its own partial, and the partials are added in
chunk order, so any thread count gives the same bits.  Small problems run
on the calling thread.
"""

import functools

import numpy as np
from numba import prange

from ._jit import parallel_kernel, serial_helper

#: Reduction axes are zero-padded to a multiple of this (one AVX-512 register
#: of float32, two of float64), so the vector loop never runs its scalar tail.
VECTOR_PAD = 16

#: Pixels of a band (for 4 or more output channels per group): long enough
#: that the micro-kernel's horizontal sums at the end of each call are rare
#: (measured 5% faster than 1024), short enough to give every chunk bands.
BAND_PIXELS = 4096

#: Pixels of a band when the output gradient is read in place (bands then
#: stay inside an image).  Even one-image bands of 256 pixels beat packing
#: ``dy`` into longer ones on the suite's 1 x 1 shapes (memory bound).
IN_PLACE_PIXELS = 2048

#: Bytes of packed input per channel block: it stays in L2 (1 MiB) while the
#: micro-kernel sweeps every group of 4 output-gradient rows over it.
BLOCK_BYTES = 256 * 1024

#: Most chunks (partial sums) a problem is cut into.  Chunking depends on the
#: problem shape only, never on the thread count, so results are identical at
#: any thread count.
N_CHUNKS = 8

#: Fewest bands (chunks) a problem that runs in parallel is cut into.
MIN_BANDS = 4

#: Bands shorter than this spend too long in the micro-kernel's horizontal
#: sums; problems that would need them split the output channels instead.
SHORT_BAND_PIXELS = 1024

#: Input layouts (see the module docstring).
DIRECT = 0
PANEL = 1

#: Arrays read in place instead of packed (see :func:`grad_weight_chunk`).
DY_IN_PLACE = 1
X_IN_PLACE = 2


# --------------------------------------------------------------------------- micro-kernel


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
def dy_times_taps(dyb, kr0, t0, buf, xr0, xo0, xrow, off, T, Kg, i0, i1, i1_real, acc):
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
        row_times_taps(dyb[kr0 + k, t0:], buf, xr0, xo0, xrow, off, T, i0, i1_real, acc[k])


# --------------------------------------------------------------------------- packing
#
# The packers index flat views with unsigned offsets: no slice objects per
# row segment and no negative-index wraparound, so the copy loops become
# memcpy/memset (stride 1) or interleaved vector loads (stride 2).  Row
# segments are short (8-224 elements), which makes per-segment overhead the
# cost that matters.


@serial_helper
def _copy_rows(dst, e, ld, src, s0, plane, cb, count, step):
    """``dst[e + c*ld + j] = src[s0 + c*plane + j*step]`` for ``c < cb``, ``j < count``."""
    for c in range(cb):
        d0 = e + c * ld
        s = s0 + c * plane
        if step == 1:
            for j in range(count):
                dst[np.uint64(d0 + j)] = src[np.uint64(s + j)]
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


# --------------------------------------------------------------------------- driver


@serial_helper
def grad_weight_chunk(ch, nchunks, x, dy, acc, mode, in_place, ksplit, G, cblock, xrow, off,
                      phases_h, phases_w, R, S, sh, sw, dh, dw, pt, pl,
                      Hs, Ws, emin, lead, span, B, n_rows):
    """Weight gradient of chunk ``ch``: its share of the (band, group) tasks or output channels.

    Global row ``n*Hs + p`` is output row ``p`` of image ``n`` (rows ``p >= P``
    are fake, with zero output gradient); pixel ``q`` of a global row has
    flat index ``(n*Hs + p)*Ws + q`` (columns ``q >= Q`` are fake).  A band is
    ``B`` consecutive global rows.  Task ``band*G + g`` packs the band's
    output gradient, then for each block of ``cblock`` channels packs the
    input and runs the micro-kernel on that block's taps.  The chunk runs
    tasks ``ch*ntasks//nchunks`` up to ``(ch+1)*ntasks//nchunks``, in order,
    for all output channels; or, with ``ksplit``, every task for its share
    of the output channels (4 at a time).

    * ``mode == DIRECT``: tap ``i`` of pixel ``u`` reads position
      ``u + off[i] - off0`` of its plane (see :func:`pack_x_direct`),
      ``off0 = -emin*Ws + lead``.  ``Hs``, ``Ws`` leave enough zeros between
      rows and images that every read outside the image lands on a zero.
    * ``mode == PANEL``: ``Hs = P``, ``Ws = Q`` (no fake pixels), ``off = 0``
      and tap ``i`` reads its own row of patches (see :func:`pack_x_panel`).

    Parameters
    ----------
    ch, nchunks : int
    x : ndarray, shape (N, C, H, W), C-contiguous
    dy : ndarray, shape (N, K, P, Q), C-contiguous
    acc : ndarray, shape (G, Kg, NTp)
        ``acc[g, k, (c*R + r)*S + s]``: this chunk's sum for ``dW[g*Kg + k, c, r, s]``.
        Overwritten; with ``ksplit`` only at this chunk's output channels.
    mode : int
        ``DIRECT`` or ``PANEL``.
    in_place : int
        ``DY_IN_PLACE``: the direct layout of the output gradient is ``dy``
        itself (no fake pixels: 1 x 1 kernels without padding), read in
        place; bands then stay inside an image.  ``X_IN_PLACE``: the input
        too (stride 1 as well).  0: pack both.
    ksplit : bool
        Split the output channels between chunks instead of the tasks (for
        problems with too few pixels to give every chunk a long band).
    G : int
        Groups.
    cblock : int
        Channels packed at a time, a multiple of 4 or ``C // G``.
    xrow, off : ndarray of int64, shape (NTp,)
        Buffer row (within a channel block) and offset of tap ``(c*R + r)*S + s``;
        taps past ``Cg*R*S`` point anywhere valid and are discarded.
    phases_h, phases_w : ndarray of int64
        Row offsets and column phases of the direct layout (see
        :func:`pack_x_direct`).
    R, S, sh, sw, dh, dw, pt, pl : int
        Kernel size, stride, dilation, top/left padding.
    Hs, Ws : int
        Global rows per image, pixels per global row.
    emin, lead, span : int
        Direct mode: lowest phase-row shift of a tap (<= 0), phase columns
        left of column 0 that a tap reads, and the largest tap offset.
    B, n_rows : int
        Global rows per band; global rows in all (``(N-1)*Hs + P``).
    """
    N = x.shape[0]
    C = x.shape[1]
    Cg = C // G
    K = dy.shape[1]
    Kg = K // G
    P = dy.shape[2]
    Q = dy.shape[3]
    NTp = acc.shape[2]
    if in_place:
        nbi = (P + B - 1) // B  # bands stay inside an image
        nb = N * nbi
    else:
        nb = (n_rows + B - 1) // B
    ntasks = nb * G
    Tmax = (B * Ws + VECTOR_PAD - 1) // VECTOR_PAD * VECTOR_PAD
    if in_place == X_IN_PLACE:
        buf_rows = 0
    elif mode == DIRECT:
        buf_rows = phases_h.size * phases_w.size * cblock
    else:
        buf_rows = cblock * R * S
    if ksplit:
        kblocks = (Kg + 3) // 4
        k_lo = min(Kg, ch * kblocks // nchunks * 4)
        k_hi = min(Kg, (ch + 1) * kblocks // nchunks * 4)
        task_lo = 0
        task_hi = ntasks
    else:
        k_lo = 0
        k_hi = Kg
        task_lo = ch * ntasks // nchunks
        task_hi = (ch + 1) * ntasks // nchunks
    nk = k_hi - k_lo
    # zeroed once: the fake columns of both stay zero
    buf = np.zeros((buf_rows, Tmax + span), dtype=x.dtype)
    dyb = np.zeros((0 if in_place else nk, Tmax), dtype=x.dtype)
    dy2 = dy.reshape((N * K, P * Q))
    x2 = x.reshape((N * C, x.shape[2] * x.shape[3]))
    acc[:, k_lo:k_hi] = 0
    for task in range(task_lo, task_hi):
        band = task // G
        g = task - band * G
        acc_g = acc[g, k_lo:k_hi]
        if in_place:
            n = band // nbi
            p0 = (band - n * nbi) * B
            G0 = n * P + p0
            rows = min(B, P - p0)
            T = rows * Q  # exact: dy itself has no padding columns
        else:
            G0 = band * B
            rows = min(B, n_rows - G0)
            T = (rows * Ws + VECTOR_PAD - 1) // VECTOR_PAD * VECTOR_PAD
            pack_dy_rows(dy, g * Kg + k_lo, nk, G0, rows, Hs, Ws, T, dyb)
        for c0 in range(0, Cg, cblock):
            cb = min(cblock, Cg - c0)
            i0 = c0 * R * S
            i1 = min(NTp, i0 + (cb * R * S + 3) // 4 * 4)
            if in_place == X_IN_PLACE:
                dy_times_taps(dy2, n * K + g * Kg + k_lo, p0 * Q, x2, n * C + g * Cg + c0,
                              p0 * Q, xrow, off, T, nk, i0, i1, (c0 + cb) * R * S, acc_g)
                continue
            if mode == DIRECT:
                pack_x_direct(x, g * Cg + c0, cb, cblock, phases_h, phases_w, sh, sw,
                              Hs, Ws, (G0 + emin) * Ws - lead, T + span, buf)
            else:
                pack_x_panel(x, g * Cg + c0, cb, R, S, sh, sw, dh, dw, pt, pl,
                             P, Q, G0, rows, T, buf)
            if in_place == DY_IN_PLACE:
                dy_times_taps(dy2, n * K + g * Kg + k_lo, p0 * Q, buf, 0, 0,
                              xrow, off, T, nk, i0, i1, (c0 + cb) * R * S, acc_g)
            else:
                dy_times_taps(dyb, 0, 0, buf, 0, 0,
                              xrow, off, T, nk, i0, i1, (c0 + cb) * R * S, acc_g)


@serial_helper
def sum_row(partial, gw, kk):
    """``gw[kk, i] = sum_ch partial[ch, g, k, i]`` (``kk = g*Kg + k``), added in chunk order.

    Returns ``sum_i gw[kk, i] * 0``: NaN if the row is not finite.
    """
    nchunks = partial.shape[0]
    Kg = gw.shape[0] // partial.shape[1]
    g = kk // Kg
    k = kk - g * Kg
    zero = gw.dtype.type(0)
    check = zero
    for i in range(gw.shape[1]):
        s = partial[0, g, k, i]
        for ch in range(1, nchunks):
            s += partial[ch, g, k, i]
        gw[kk, i] = s
        check += s * zero
    return check


@parallel_kernel
def grad_weight_bands(x, dy, partial, nchunks, mode, in_place, ksplit, G, cblock, xrow, off,
                      phases_h, phases_w, R, S, sh, sw, dh, dw, pt, pl,
                      Hs, Ws, emin, lead, span, B, n_rows):
    """Fill ``partial`` with :func:`grad_weight_chunk`, chunks in parallel.

    Iteration ``ch`` owns ``partial[ch]``; with ``ksplit`` (a single
    partial), rows ``k_lo:k_hi`` of every group of ``partial[0]``.

    Parameters
    ----------
    partial : ndarray, shape (nchunks, G, Kg, NTp), or (1, G, Kg, NTp) with ``ksplit``
    nchunks : int
    others
        As for :func:`grad_weight_chunk`.
    """
    for ch in prange(nchunks):
        grad_weight_chunk(ch, nchunks, x, dy, partial[0] if ksplit else partial[ch],
                          mode, in_place, ksplit, G, cblock, xrow, off,
                          phases_h, phases_w, R, S, sh, sw, dh, dw, pt, pl,
                          Hs, Ws, emin, lead, span, B, n_rows)


@parallel_kernel
def sum_partials(partial, grad_w, row_check):
    """``grad_w[g*Kg + k, i] = sum_ch partial[ch, g, k, i]``, added in chunk order.

    Parameters
    ----------
    partial : ndarray, shape (nchunks, G, Kg, NTp)
    grad_w : ndarray, shape (K, Cg, R, S), C-contiguous; overwritten.
        Iteration ``k`` owns ``grad_w[k]`` and ``row_check[k]``.
    row_check : ndarray, shape (K,); overwritten
        NaN where row ``k`` of ``grad_w`` is not finite.
    """
    K = grad_w.shape[0]
    gw = grad_w.reshape((K, grad_w.size // K))
    for kk in prange(K):
        row_check[kk] = sum_row(partial, gw, kk)


@serial_helper
def grad_weight_serial(x, dy, partial, nchunks, grad_w, row_check,
                       mode, in_place, ksplit, G, cblock, xrow, off,
                       phases_h, phases_w, R, S, sh, sw, dh, dw, pt, pl,
                       Hs, Ws, emin, lead, span, B, n_rows):
    """:func:`grad_weight_bands` then :func:`sum_partials`, on the calling thread.

    For small problems, where waking the thread pool costs more than the work.
    Same chunks, same order, so the same bits as the parallel version.
    """
    for ch in range(nchunks):
        grad_weight_chunk(ch, nchunks, x, dy, partial[0] if ksplit else partial[ch],
                          mode, in_place, ksplit, G, cblock, xrow, off,
                          phases_h, phases_w, R, S, sh, sw, dh, dw, pt, pl,
                          Hs, Ws, emin, lead, span, B, n_rows)
    K = grad_w.shape[0]
    gw = grad_w.reshape((K, grad_w.size // K))
    for kk in range(K):
        row_check[kk] = sum_row(partial, gw, kk)


# --------------------------------------------------------------------------- planning

#: Problems below this many multiply-adds run on the calling thread.
SERIAL_FMAS = 1 << 22


def _axis_plan(size, out, kernel, stride, dilation, pad):
    """Stride phases and shifts of one spatial axis for the direct layout.

    Tap ``r`` reads input position ``p*stride + r*dilation - pad``
    ``= stride*(p + e[r]) + a[r]``: phase ``a[r]``, phase position ``p + e[r]``.

    Returns
    -------
    phases : list of int
        Distinct ``a[r]``, sorted.
    phase_index, shift : list of int
        Per tap: index into ``phases`` and ``e[r] - min(e)`` (>= 0).
    period : int
        Positions per image along this axis (``>= out``), such that every
        phase position a real output reads outside ``[0, count)`` lands on a
        zero of this image's period or the previous one's.
    emin : int
        ``min(e)`` (<= 0).
    """
    a = [(r * dilation - pad) % stride for r in range(kernel)]
    e = [(r * dilation - pad) // stride for r in range(kernel)]
    phases = sorted(set(a))
    emin, emax = min(e), max(e)
    count = max((size - ph + stride - 1) // stride for ph in phases)
    period = max(out, out + emax, count - emin)
    return phases, [phases.index(v) for v in a], [v - emin for v in e], period, emin


#: Time to pack one input element, in multiply-adds, by item size (fitted to
#: which layout measured faster on the suite).
PACK_COST = {4: 24, 8: 16}

#: Planes per kernel row: None to choose by cost, or True/False to force
#: either layout (tests; clear ``_plan``'s cache after changing it).
ROW_TAPS = None


def _row_taps_pay(Hs, Ws, P, n_phases, R, n_col_phases, fmas_per_pixel, Cg, pack_cost):
    """Whether one plane per kernel row is cheaper than one per row stride phase.

    Planes per kernel row (input row ``p*sh + r*dh - pt`` at global row
    ``n*P + p``) pack ``R`` rows per channel instead of one per row phase,
    but need no fake rows: they pay off for small images and tall kernels.
    """
    per_phase = Hs * Ws * (fmas_per_pixel + n_phases * n_col_phases * Cg * pack_cost)
    per_row = P * Ws * (fmas_per_pixel + R * n_col_phases * Cg * pack_cost)
    return per_row < per_phase


def _channel_block(Cg, rows_per_channel, row_bytes):
    """Channels packed at a time: all, or a multiple of 4 whose buffer fits :data:`BLOCK_BYTES`."""
    fit = BLOCK_BYTES // max(1, rows_per_channel * row_bytes)
    if fit >= Cg:
        return Cg
    nblocks = -(-Cg // max(4, fit // 4 * 4))
    per_block = -(-Cg // nblocks)
    return (per_block + 3) // 4 * 4


@functools.lru_cache(maxsize=256)
def _plan(mode, x_shape, dy_shape, w_shape, itemsize, stride, padding, dilation, groups):
    """Everything :func:`grad_weight_chunk` needs besides the arrays (depends on shapes only).

    Returns
    -------
    nchunks, NTp : int
        Chunks, and taps rounded up to a multiple of 4: the partial sums have
        shape ``(nchunks, G, Kg, NTp)`` (``(1, G, Kg, NTp)`` with ``ksplit``).
    args : tuple
        ``mode, in_place, ksplit, G, cblock, xrow, off, ..., B, n_rows``; the
        arrays in it are shared between calls and never written.
    serial : bool
        Run on the calling thread (:data:`SERIAL_FMAS`).
    """
    K, Cg, R, S = w_shape
    N, _, H, W = x_shape
    P, Q = dy_shape[2], dy_shape[3]
    G = groups
    Kg = K // G
    ph_h, idx_h, shift_h, Hs, emin = _axis_plan(H, P, R, stride[0], dilation[0], padding[0])
    ph_w, idx_w, shift_w, Ws, fmin = _axis_plan(W, Q, S, stride[1], dilation[1], padding[1])
    row_taps = ROW_TAPS
    if row_taps is None:
        row_taps = _row_taps_pay(Hs, Ws, P, len(ph_h), R, len(ph_w), Kg * Cg * R * S, Cg,
                                 PACK_COST[itemsize])
    if mode == DIRECT and row_taps:
        # one plane per kernel row instead of per row phase: no fake rows
        ph_h = [r * dilation[0] - padding[0] for r in range(R)]
        idx_h, shift_h, Hs, emin = list(range(R)), [0] * R, P, 0
    serial = N * P * Q * K * Cg * R * S < SERIAL_FMAS
    in_place = 0
    if mode == PANEL:
        Hs, Ws = P, Q
    elif Hs == P and Ws == Q:
        in_place = DY_IN_PLACE
        if R == S == 1 and stride == (1, 1) and padding == (0, 0):
            in_place = X_IN_PLACE
    n_rows = (N - 1) * Hs + P
    # fewer than 4 output channels: longer bands, the micro-kernel rows are lighter
    B = max(1, min(n_rows, BAND_PIXELS * 4 // min(Kg, 4) // Ws))
    # too few pixels for MIN_BANDS long bands: split the output channels instead
    ksplit = not serial and Kg >= 8 and n_rows * Ws < MIN_BANDS * SHORT_BAND_PIXELS
    if ksplit:
        in_place = 0  # packed bands may span images: one long band
        nb = -(-n_rows // B)
    elif in_place:
        # dy (and x) are read straight from memory: shorter bands stay in L2
        B = min(B, max(1, IN_PLACE_PIXELS // Ws), P)
        nbi = -(-P // B)
        B = -(-P // nbi)  # equal bands inside an image
        nb = N * nbi
    else:
        if B >= Hs:
            B = B // Hs * Hs  # whole images: contiguous reads of each channel plane
        nb = -(-n_rows // B)
        if G == 1 and not serial:
            # at least MIN_BANDS bands, and a multiple of N_CHUNKS (or an even
            # number of chunks of one band each): every chunk gets the same work
            nb = max(nb, min(MIN_BANDS, n_rows))
            step = N_CHUNKS if nb > N_CHUNKS else 2
            B = -(-n_rows // (-(-nb // step) * step))
            nb = -(-n_rows // B)
    row_bytes = (B * Ws + VECTOR_PAD) * itemsize
    if mode == DIRECT:
        rows_per_channel = len(ph_h) * len(ph_w)
        row_bytes += (max(shift_h) * Ws + max(shift_w)) * itemsize
    else:
        rows_per_channel = R * S
    cblock = _channel_block(Cg, rows_per_channel, row_bytes)
    NTp = (Cg * R * S + 3) // 4 * 4
    c, r, s = np.meshgrid(np.arange(Cg), np.arange(R), np.arange(S), indexing="ij")
    c, r, s = c.ravel(), r.ravel(), s.ravel()
    xrow = np.zeros(NTp, np.int64)
    off = np.zeros(NTp, np.int64)
    if mode == DIRECT:
        xrow[:c.size] = ((np.array(idx_h)[r] * len(ph_w) + np.array(idx_w)[s]) * cblock
                         + c % cblock)
        off[:c.size] = np.array(shift_h)[r] * Ws + np.array(shift_w)[s]
    else:
        xrow[:c.size] = ((c % cblock) * R + r) * S + s
    if ksplit:
        nchunks = min(N_CHUNKS, -(-Kg // 4))
    else:
        nchunks = max(1, min(N_CHUNKS, nb * G))
    args = (mode, in_place, ksplit, G, cblock, xrow, off,
            np.array(ph_h, np.int64), np.array(ph_w, np.int64),
            R, S, stride[0], stride[1], dilation[0], dilation[1], padding[0], padding[1],
            Hs, Ws, emin, -fmin, int(off.max()), B, n_rows)
    return nchunks, NTp, args, serial


def _run(mode, x, dy, grad_weight, stride, padding, dilation, groups):
    """Run one layout; return ``row_check`` (NaN where a row of the result is not finite)."""
    K, Cg, R, S = grad_weight.shape
    nchunks, NTp, args, serial = _plan(mode, x.shape, dy.shape, grad_weight.shape,
                                       x.dtype.itemsize, tuple(stride), tuple(padding),
                                       tuple(dilation), groups)
    ksplit = args[2]
    partial = np.empty((1 if ksplit else nchunks, groups, K // groups, NTp), x.dtype)
    row_check = np.empty(K, x.dtype)
    if serial:
        grad_weight_serial(x, dy, partial, nchunks, grad_weight, row_check, *args)
    else:
        grad_weight_bands(x, dy, partial, nchunks, *args)
        sum_partials(partial, grad_weight, row_check)
    return row_check


def conv2d_grad_weight(x, grad_output, grad_weight, stride, padding, dilation, groups):
    """Write dL/dweight into ``grad_weight``.

    Runs the direct layout; if the result is not finite (a NaN or infinite
    value in the input or output gradient, or an overflow), reruns with the
    panel layout, whose products are exactly those of the definition.

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
    args = (x, grad_output, grad_weight, stride, padding, dilation, groups)
    if np.isnan(_run(DIRECT, *args).sum()):
        _run(PANEL, *args)
