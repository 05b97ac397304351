"""Direct convolution engine: most convolutions, all but strided or tiny-image long reductions.

The packed engine (:mod:`.conv2d_forward`) reduces over ``C*R*S`` innermost,
which wastes its vector lanes when that reduction is short (1x1 filters, 1-3
input channels) or when few output channels reuse its packed panel.  This
engine vectorises over output pixels instead, with no packing; at unit
stride it is as fast or faster for long reductions too, unless the output
rows are shorter than 8 pixels (:func:`.conv2d_forward.choose_engine`):

* Each task (image, group, band of ``B`` output rows) copies the input rows
  it needs into a channels-first band, padded, and split into the
  ``sh x sw`` stride phases of its rows and columns.  Tap ``(c, r, s)`` of
  output pixel ``(a, q)`` then sits at ``eoff[c, r, s] + a*Wz + q`` in the
  band, where ``Wz`` is the width of a phase plane: one flat, contiguous
  index for every tap.  The pixels ``q >= Q`` of that flat index are
  computed and discarded (the last ``(S-1)*dw // sw`` columns of each row).
  At unit stride, where they would be :data:`SHIFTED_MIN_WASTE` of a row or
  more (narrow images), the band instead holds one copy of the rows per
  column tap, shifted by the tap (:func:`_gather_shifted`): ``Wz = Q``.
* The micro-kernel computes a segment of up to :data:`SEGMENT_BYTES` of
  flat pixels in blocks of 4 output channels x 4 vectors of pixels
  (:func:`._blocks.taps_block`): per tap, 4 band loads and 4 broadcast
  weights feed 16 FMAs, whose accumulators stay in registers over all taps
  and are then stored once, into a 4-row L1-resident buffer that
  :func:`_write_back` reads.  So that no FMA is wasted, 3 channels left
  (and 6, as 3 + 3) run 3-channel blocks, and 1-2 channels left (depthwise
  convolutions, few-channel outputs) one-channel blocks of 8 vectors, one
  channel at a time.
* Unit-stride, unpadded inputs whose rows are read whole (``Wz == W``) are
  read in place when the group's output channels are a multiple of 4: no
  band at all (e.g. 1x1 stride-1 convolutions).
* Segments are rounded up to the vector width, so the vector loop has no
  scalar remainder; the extra pixels read a zeroed tail of the band.  Read
  in place, they read the next input rows instead, and the segment that
  reaches the end of the input ends in single pixels, so that no vector
  reads past it.
* While a task computes, it prefetches into L2 the input rows of the
  run's next task, a share after each block of pixels
  (:func:`_prefetch_share`): the gather copies a band in one burst, which
  the hardware prefetcher does not run ahead of, and it then waited on
  DRAM (a third of the depthwise layer's time; 1.1-1.2x faster with the
  prefetch).  Only for inputs too large to stay in cache, and where the
  rows are consecutive (a 1 x 1 stride-2 layer's band skips every other
  row); segment variants of their own prefetch.
* Results of :data:`STREAM_MIN_BYTES` and more are written with
  non-temporal stores where the write-back writes whole cache lines: a
  normal store first reads the line it overwrites, and that made the
  write-back a quarter to a third of a float64 layer's time.

Depthwise convolutions (one input and one output channel per group) at unit
column stride do not reach this engine's loops: :func:`run_direct` hands
them to :mod:`.conv2d_depthwise`, which reads the input in place.

The engine runs on :func:`._tasks.run_tasks`, the parallel kernel all
engines share, with the 4-D arrays and one plan array (:func:`direct_plan`:
task sizes, tap offsets, helper addresses), computed once per shape and
kept: for a 3x3 input the Python-side cost of a call is part of the latency
users see (the worked example: 12.4 -> 7.2 us when the weight padding, task
sizing and flattening moved out of Python; a cached plan and 6 kernel
arguments instead of 20 keep it at about 5.6 us).

Each ``prange`` iteration calls :func:`_direct_tasks` for one run of tasks,
a serial function compiled with its array arguments ``noalias``
(:func:`._jit.noalias_helper`), and it calls the engine's loops
(:func:`_gather`, the micro-kernels, :func:`_write_back`), each a
``noalias_helper`` too: indexed with unsigned offsets, LLVM vectorises their
pixel loops without runtime alias checks (without ``noalias`` the engine ran
10-35% slower).  All of these calls are by address
(:func:`._jit.call_compiled`): each function is compiled once, on its own,
instead of being linked into (and recompiled with) its caller, and a
micro-kernel variant compiles only when a call needs it.
"""

import math

import numpy as np

from . import conv2d_depthwise as depthwise
from ._blocks import VECTOR_BYTES, copy_stride2, store_fence, stream_row, taps_block
from ._jit import (
    CalledByAddress,
    address_table,
    call_compiled,
    inline_helper,
    noalias_helper,
    prefetch_l2,
)
from ._tasks import PLAN_NRUNS, declare_runs, run_tasks, run_tasks_serial, unused_output
from ._tiling import MIN_TASKS, band_task

#: Bytes of one accumulator row of a micro-kernel segment (512 float32 or
#: 256 float64 pixels): the 4 rows (8 KiB) stay in L1 from the micro-kernel's
#: stores to :func:`_write_back`'s loads.  (With the earlier micro-kernel,
#: which accumulated in these rows, 512 float64 pixels (16 + 16 KiB) ran some
#: layers up to 1.2x slower.)
SEGMENT_BYTES = 2048

#: Vector width in elements (an AVX-512 register of float32): segments are
#: computed in multiples of it.
VW = 16

#: Accumulator rows are a segment plus ``ROW_SKEW`` elements apart: at exactly
#: 4 KiB apart, loads from one row wait on stores to another
#: ("4K aliasing"), which measured 2-4x slower in some processes.
ROW_SKEW = 16

#: Most runs of consecutive tasks a call is cut into, one per ``prange``
#: iteration of :func:`._tasks.run_tasks`: enough to balance 2-16 threads; each run allocates its buffers
#: once.  Any split gives the same bits (tasks are independent).
TASK_CHUNKS = 64

#: Target elements of a task's band (128 KiB float32): it is re-read once per
#: block of 4 output channels, from L2.
BAND_ELEMENTS = 32768


@noalias_helper
def _gather(x1, xb, H, W, Cg, h0, sh, sw, pl, Hz, Wz, PL, use_h, use_w, band):
    """Copy the input rows of one task into ``band``, split into stride phases.

    ``band[((c*nh + use_h[ph] - 1)*nw + use_w[pw] - 1)*PL + i*Wz + j] =
    xpad[c, h0 + i*sh + ph, j*sw + pw - pl]`` for the phases that hold taps
    (``use_h``/``use_w`` nonzero: ``nh`` and ``nw`` of them, numbered from
    1); the others are not stored.  ``x1`` is the flattened input and ``xb``
    the offset of the group's first channel of the image; rows and columns
    outside the input are zero.  Planes are ``PL >= Hz*Wz`` elements apart
    (see :func:`_plane_stride`); the gaps are not written.

    A plane the input does not cover whole is zeroed in one pass and then
    only in-bounds runs are copied: rows are short (``Wz`` is about ``Q``),
    and per-row zero/copy/zero loops cost more in loop overhead than the
    copying (measured 1.2 of 5.4 ms on a stride-2 layer with 17-column
    phase rows).  Column stride 1 is a contiguous copy that LLVM vectorises;
    stride 2 is :func:`._blocks.copy_stride2`.
    """
    zero = band.dtype.type(0)
    plane = Hz * Wz
    nh = 0
    for ph in range(sh):
        nh = max(nh, use_h[ph])
    nw = 0
    for pw in range(sw):
        nw = max(nw, use_w[pw])
    for c in range(Cg):
        for ph in range(sh):
            if use_h[ph] == 0:
                continue
            # rows i with 0 <= h0 + i*sh + ph < H
            i_lo = min(max(0, -((h0 + ph) // sh)), Hz)
            i_hi = max(min(Hz, -((h0 + ph - H) // sh)), i_lo)
            for pw in range(sw):
                if use_w[pw] == 0:
                    continue
                pb = ((c * nh + use_h[ph] - 1) * nw + use_w[pw] - 1) * PL
                # columns j with 0 <= j*sw + pw - pl < W
                j_lo = min(max(0, -((pw - pl) // sw)), Wz)
                j_hi = max(min(Wz, -((pw - pl - W) // sw)), j_lo)
                if i_lo > 0 or i_hi < Hz or j_lo > 0 or j_hi < Wz:
                    for i in range(pb, pb + plane):
                        band[np.uint64(i)] = zero
                for i in range(i_lo, i_hi):
                    rb = pb + i * Wz
                    xr = xb + (c * H + h0 + i * sh + ph) * W + pw - pl
                    if sw == 1:
                        for j in range(j_lo, j_hi):
                            band[np.uint64(rb + j)] = x1[np.uint64(xr + j)]
                    elif sw == 2:
                        copy_stride2(x1, xr + 2 * j_lo, band, rb + j_lo, j_hi - j_lo)
                    else:
                        for j in range(j_lo, j_hi):
                            band[np.uint64(rb + j)] = x1[np.uint64(xr + j * sw)]


@noalias_helper
def _gather_shifted(x1, xb, H, W, Cg, h0, pl, Hz, Q, PL, S, dw, band):
    """Copy the input rows of one task into ``band``, one copy per column tap.

    ``band[(c*S + s)*PL + i*Q + q] = xpad[c, h0 + i, q + s*dw - pl]`` for
    ``q < Q``: plane ``(c, s)`` holds, for each output column, the input
    column that tap ``s`` reads (unit stride only).  The micro-kernels then
    compute ``Q`` pixels per row, none discarded, at the price of ``S``
    copies of the input (see :data:`SHIFTED_MIN_WASTE`).  Arguments as for
    :func:`_gather`; planes not covered whole are zeroed first.
    """
    zero = band.dtype.type(0)
    plane = Hz * Q
    i_lo = min(max(0, -h0), Hz)
    i_hi = max(min(Hz, H - h0), i_lo)
    for c in range(Cg):
        for s in range(S):
            pb = (c * S + s) * PL
            off = s * dw - pl  # the input column of output column 0
            j_lo = min(max(0, -off), Q)
            j_hi = max(min(Q, W - off), j_lo)
            if i_lo > 0 or i_hi < Hz or j_lo > 0 or j_hi < Q:
                for i in range(pb, pb + plane):
                    band[np.uint64(i)] = zero
            for i in range(i_lo, i_hi):
                rb = pb + i * Q
                xr = xb + (c * H + h0 + i) * W + off
                for j in range(j_lo, j_hi):
                    band[np.uint64(rb + j)] = x1[np.uint64(xr + j)]


_TAPS_4X4 = taps_block(4, 4)
_TAPS_4X1 = taps_block(4, 1)
_TAPS_3X4 = taps_block(3, 4)
_TAPS_3X1 = taps_block(3, 1)
_TAPS_1X8 = taps_block(1, 8)
_TAPS_1X1 = taps_block(1, 1)
_TAPS_4X1S = taps_block(4, 1, single=True)


@noalias_helper
def _segment(src, st, ln, eoff, E, w1, kw, acc, t):
    """``acc[kk*TA + u] = sum_e w1[kw + kk*E + e] * src[eoff[e] + st + u]`` for kk < 4, t <= u < ln.

    ``TA`` is the distance of accumulator rows (:func:`_acc_row`).  Blocks
    of 4 channels x 4 vectors of pixels (:func:`._blocks.taps_block`), then
    4 x 1 for the last vectors; reads stay below ``st + ln + max(eoff)``.
    ``ln`` is a multiple of :data:`VW` except where a segment read in place
    ends at the end of the input: its last pixels are computed one by one,
    with the same sums in the same order as a vector's lanes.  The engine
    starts at ``t = 0``; :func:`_segment_prefetching` at its last pixels.
    """
    TA = _acc_row(acc)
    lanes = VECTOR_BYTES // acc.itemsize
    while t + 4 * lanes <= ln:
        _TAPS_4X4(src, st + t, eoff, E, w1, kw, acc, t, TA)
        t += 4 * lanes
    while t + lanes <= ln:
        _TAPS_4X1(src, st + t, eoff, E, w1, kw, acc, t, TA)
        t += lanes
    while t < ln:
        _TAPS_4X1S(src, st + t, eoff, E, w1, kw, acc, t, TA)
        t += 1


@noalias_helper
def _segment3(src, st, ln, eoff, E, w1, kw, acc, t):
    """Three channels: :func:`_segment` without its fourth row.

    For 3 or 6 output channels (RGB input gradients, LeNet): a 4-channel
    block with a repeated row would waste a quarter of its FMAs.  Reads the
    band only (the input is read in place with 4-channel blocks alone), so
    ``ln`` is a multiple of :data:`VW`.
    """
    TA = _acc_row(acc)
    lanes = VECTOR_BYTES // acc.itemsize
    while t + 4 * lanes <= ln:
        _TAPS_3X4(src, st + t, eoff, E, w1, kw, acc, t, TA)
        t += 4 * lanes
    while t < ln:
        _TAPS_3X1(src, st + t, eoff, E, w1, kw, acc, t, TA)
        t += lanes


@noalias_helper
def _segment1(src, st, ln, eoff, E, w1, kw, acc, a0, t):
    """One channel: ``acc[a0 + u] = sum_e w1[kw + e] * src[eoff[e] + st + u]`` for t <= u < ln.

    Blocks of 8 vectors of pixels (8 accumulators hide the FMA latency),
    then single vectors.  Reads the band only, as :func:`_segment3`.
    """
    lanes = VECTOR_BYTES // acc.itemsize
    while t + 8 * lanes <= ln:
        _TAPS_1X8(src, st + t, eoff, E, w1, kw, acc, a0 + t, 0)
        t += 8 * lanes
    while t < ln:
        _TAPS_1X1(src, st + t, eoff, E, w1, kw, acc, a0 + t, 0)
        t += lanes


@noalias_helper
def _segment_prefetching(src, st, ln, eoff, E, w1, kw, acc, kn, pf, pa, pj, prun, pskip, pn):
    """:func:`_segment` (``kn = 4``) or :func:`_segment3` (``kn = 3``) that prefetches.

    It prefetches its share of the next task's input, ``pn`` lines from
    ``pf[pa]``: after each block of 4 vectors of pixels, the part of its
    lines that the block's pixels reach (:func:`_prefetch_share`); the plain
    segment computes the last pixels.  Variants of their own: the prefetch
    state held in registers across the blocks made the plain segments
    spill, which cost layers that do not prefetch up to 3% (the ResNet-20
    stem).
    """
    TA = _acc_row(acc)
    lanes = VECTOR_BYTES // acc.itemsize
    t = 0
    k = 0
    while t + 4 * lanes <= ln:
        if kn == 4:
            _TAPS_4X4(src, st + t, eoff, E, w1, kw, acc, t, TA)
        else:
            _TAPS_3X4(src, st + t, eoff, E, w1, kw, acc, t, TA)
        t += 4 * lanes
        k, pa, pj = _prefetch_share(pf, pa, pj, prun, pskip, k, pn * t // ln)
    _prefetch_share(pf, pa, pj, prun, pskip, k, pn)
    if kn == 4:
        _segment(src, st, ln, eoff, E, w1, kw, acc, t)
    else:
        _segment3(src, st, ln, eoff, E, w1, kw, acc, t)


@noalias_helper
def _segment1_prefetching(src, st, ln, eoff, E, w1, kw, acc, a0, pf, pa, pj, prun, pskip, pn):
    """:func:`_segment1` that prefetches, as :func:`_segment_prefetching` does."""
    lanes = VECTOR_BYTES // acc.itemsize
    t = 0
    k = 0
    while t + 8 * lanes <= ln:
        _TAPS_1X8(src, st + t, eoff, E, w1, kw, acc, a0 + t, 0)
        t += 8 * lanes
        k, pa, pj = _prefetch_share(pf, pa, pj, prun, pskip, k, pn * t // ln)
    _prefetch_share(pf, pa, pj, prun, pskip, k, pn)
    _segment1(src, st, ln, eoff, E, w1, kw, acc, a0, t)


@inline_helper
def _prefetch_share(pf, pa, pj, prun, pskip, k, k_end):
    """Prefetch (into L2) lines ``k <= i < k_end`` of a share of the next task's input; ``(k_end, pa, pj)``.

    The share is runs of ``prun`` lines (a channel's input rows) whose
    starts are ``prun`` lines plus ``pskip`` elements apart; its line ``k``
    is ``pf[pa]``, line ``pj`` of its run.  A segment prefetches after each
    block of pixels the share of its lines it has reached, so the next
    task's input arrives while this one computes: a few lines per block.
    Prefetched all at once, the lines stalled the core on its outstanding
    misses, and the hardware prefetcher alone does not run ahead of the
    gather's bursts.
    """
    line = VECTOR_BYTES // pf.itemsize
    while k < k_end:
        prefetch_l2(pf, pa)
        k += 1
        pa += line
        pj += 1
        if pj == prun:
            pa += pskip
            pj = 0
    return k, pa, pj


@inline_helper
def _share(j, share, pa, prun, plane, line):
    """Segment call ``j``'s share of a task's prefetch (see :func:`_prefetch_share`).

    Lines ``int(j*share)`` to ``int((j + 1)*share)`` of the runs of ``prun``
    lines that start at ``pa``, ``plane`` elements apart: ``(pa, pj, pn)``,
    its first line's element, that line's place in its run, its length.
    """
    k0 = int(j * share)
    c0 = k0 // prun
    return pa + c0 * plane + (k0 - c0 * prun) * line, k0 - c0 * prun, int((j + 1) * share) - k0


@noalias_helper
def _write_back(acc, st, ln, Wz, Q, kn, b1, k, o1, ob, oplane, row0, osh, Wo, ow0, osw, stream):
    """``out[k + kk, row0 + a*osh, ow0 + q*osw] = acc[kk*TA + a*Wz + q - st] + bias[k + kk]``.

    For the first ``kn`` channels and the flat pixels ``st <= a*Wz + q <
    st + ln`` with ``q < Q``; ``ob`` is the offset of channel ``k``'s plane
    (``oplane`` elements) in the flattened output ``o1``.

    When no column is discarded and output rows are whole and consecutive
    (``Wz == Q == Wo``, unit placement strides: 1x1 convolutions), the
    segment is one contiguous run of the output, copied in one loop.  With
    ``stream`` (from the plan, :func:`_streams`) the runs are written with
    non-temporal stores (:func:`._blocks.stream_row`).
    """
    TA = _acc_row(acc)
    if Wz == Q and Wo == Q and osh == 1 and osw == 1:
        for kk in range(kn):
            bk = b1[k + kk]
            ob_k = ob + kk * oplane + row0 * Wo + st
            ab = kk * TA
            if stream:
                stream_row(acc, ab, bk, o1, ob_k, ln)
                continue
            for t in range(ln):
                o1[np.uint64(ob_k + t)] = acc[np.uint64(ab + t)] + bk
        return
    for kk in range(kn):
        bk = b1[k + kk]
        for a in range(st // Wz, (st + ln - 1) // Wz + 1):
            q_lo = max(st - a * Wz, 0)
            q_hi = min(st + ln - a * Wz, Q)
            orow = ob + kk * oplane + (row0 + a * osh) * Wo + ow0
            ab = kk * TA + a * Wz - st
            if stream and osw == 1:
                stream_row(acc, ab + q_lo, bk, o1, orow + q_lo, q_hi - q_lo)
                continue
            for q in range(q_lo, q_hi):
                o1[np.uint64(orow + q * osw)] = acc[np.uint64(ab + q)] + bk


@inline_helper
def _acc_row(acc):
    """Distance of a micro-kernel's accumulator rows in ``acc`` (elements).

    A compile-time constant from the dtype: the helpers are called by
    address, so LLVM cannot propagate it from their caller (passed as an
    argument, the engine ran up to 1.2x slower).
    """
    return SEGMENT_BYTES // acc.itemsize + ROW_SKEW


_ARRAY = (1, False)
_OFFSETS = (1, False, np.int64)

#: How :func:`_direct_tasks` calls its loops (by address, see :mod:`._jit`):
#: each compiles once, on its own, and only when a call needs it.
GATHER = CalledByAddress(_gather, arrays=dict(x1=_ARRAY, use_h=_OFFSETS, use_w=_OFFSETS,
                                              band=(1, True)))
GATHER_SHIFTED = CalledByAddress(_gather_shifted, arrays=dict(x1=_ARRAY, band=(1, True)))
_SEGMENT_ARRAYS = dict(src=_ARRAY, eoff=_OFFSETS, w1=_ARRAY, acc=(1, True))
SEGMENT = CalledByAddress(_segment, arrays=_SEGMENT_ARRAYS)
SEGMENT3 = CalledByAddress(_segment3, arrays=_SEGMENT_ARRAYS)
SEGMENT1 = CalledByAddress(_segment1, arrays=_SEGMENT_ARRAYS)
_PREFETCHING_ARRAYS = dict(_SEGMENT_ARRAYS, pf=_ARRAY)
SEGMENT_PREFETCHING = CalledByAddress(_segment_prefetching, arrays=_PREFETCHING_ARRAYS)
SEGMENT1_PREFETCHING = CalledByAddress(_segment1_prefetching, arrays=_PREFETCHING_ARRAYS)
WRITE_BACK = CalledByAddress(_write_back, arrays=dict(acc=_ARRAY, b1=_ARRAY, o1=(1, True)))


@noalias_helper
def _direct_tasks(run, plan, x, w, b, out, out2):
    """Run ``run`` of a :func:`direct_plan`'s runs of tasks (the :func:`._tasks.engine_runs` interface).

    ``out[placed] = conv(x, w) + b`` for the tasks of this run.  A task
    is one (image, group, band of ``B`` output rows) block of the output
    (:func:`._tiling.band_task`); it writes only that block, and its result
    does not depend on which run computes it.  A run is a stretch of
    consecutive tasks, in its own band and accumulator buffers.

    Parameters
    ----------
    run : int
    plan : ndarray of int64
        :func:`direct_plan` for these shapes, dtype and arguments.
    x : ndarray, shape (N, Cin, H, W), C-contiguous, float32 or float64
    w : ndarray, shape (Kout, Cin // G, R, S), C-contiguous, x's dtype
        ``G = Cin // w.shape[1]`` groups.
    b : ndarray, shape (Kout,), x's dtype
    out : ndarray, shape (N, Kout, Ho, Wo), C-contiguous, x's dtype
        Output pixel ``(p, q)`` is written at ``[oh0 + p*osh, ow0 + q*osw]``
        (placement from the plan); nothing else is touched.  It must not
        overlap the other arguments: they are all ``noalias``.
    out2 : ndarray
        Not used.
    """
    Cin, H, W = x.shape[1], x.shape[2], x.shape[3]
    Kout, Cg = w.shape[0], w.shape[1]
    Wo = out.shape[3]
    oplane = out.shape[2] * Wo
    G = Cin // Cg
    Kg = Kout // G
    sh, sw, pt, pl = plan[8], plan[9], plan[12], plan[13]  # dilation is in eoff
    P, Q, oh0, ow0, osh, osw = plan[14], plan[15], plan[16], plan[17], plan[18], plan[19]
    B, Hz, Wz, in_place, band_size = plan[20], plan[21], plan[22], plan[23] != 0, plan[24]
    last_tap, nb, ntasks, PL, woff = plan[25], plan[26], plan[27], plan[28], plan[29]
    stream = plan[30]
    nruns = plan[PLAN_NRUNS]
    fns = plan[3:8]
    use_h = plan[_PLAN_HEAD:_PLAN_HEAD + sh]
    use_w = plan[_PLAN_HEAD + sh:_PLAN_HEAD + sh + sw]
    eoff = plan[_PLAN_HEAD + sh + sw:]
    E = eoff.size
    x1 = x.reshape(x.size)
    w1 = w.reshape(w.size)
    b1 = b
    o1 = out.reshape(out.size)
    t0 = run * ntasks // nruns
    t1 = (run + 1) * ntasks // nruns
    TS = SEGMENT_BYTES // x1.itemsize
    TA = _acc_row(x1)
    # one channel per group (depthwise) uses one accumulator row: segments
    # fill all 4 rows' space, a quarter of the calls
    ts = 4 * TS if Kg == 1 else TS
    zero = x1.dtype.type(0)
    acc = np.empty(4 * TA, dtype=x1.dtype)
    band = np.empty(band_size, dtype=x1.dtype)
    # segment calls per segment of pixels (the channel blocks below)
    calls = 0
    kb = 0
    while kb < Kg:
        kn = _block_channels(Kg - kb)
        calls += kn if kn <= 2 else 1
        kb += kn
    line = VECTOR_BYTES // x1.itemsize
    prefetching = plan[31] != 0
    shifted, dw = plan[32], plan[11]
    if not in_place:
        # the gaps between planes and the tail, read by rounded-up segments
        # (_gather never writes them)
        for pb in range(0, band_size - VW, PL):
            for i in range(pb + Hz * Wz, pb + PL):
                band[np.uint64(i)] = zero
        for i in range(band_size - VW, band_size):
            band[np.uint64(i)] = zero
    for task in range(t0, t1):
        n, g, p0, rows = band_task(task, nb, G, B, P)
        T = (rows - 1) * Wz + Q
        xb = (n * Cin + g * Cg) * H * W
        if shifted > 0:
            call_compiled(fns[0], _gather_shifted, (x1, xb, H, W, Cg, p0 - pt, pl, Hz, Wz, PL,
                                                    shifted, dw, band))
        elif not in_place:
            call_compiled(fns[0], _gather, (x1, xb, H, W, Cg, p0 * sh - pt, sh, sw, pl, Hz, Wz,
                                            PL, use_h, use_w, band))
        # equal segments, each a multiple of the vector width: the vector loop
        # then has no scalar remainder (a short last segment spent a third
        # of its time there)
        nseg = (T + ts - 1) // ts
        seg = ((T + nseg - 1) // nseg + VW - 1) // VW * VW
        # the input rows of this run's next task, prefetched while this one
        # computes: pa, the first of Cg runs of prun lines (one more than the
        # rows fill, for their alignment), H*W elements apart; an equal share
        # of the lines per segment call
        lines = 0
        pa = 0
        prun = 1
        if prefetching and task + 1 < t1:
            n2, g2, p2, _ = band_task(task + 1, nb, G, B, P)
            r_lo = max(0, p2 * sh - pt)
            r_hi = min(H, p2 * sh - pt + Hz * sh)
            if r_hi > r_lo:
                pa = (n2 * Cin + g2 * Cg) * H * W + r_lo * W
                prun = (r_hi - r_lo) * W // line + 1
                lines = Cg * prun
        pskip = H * W - prun * line
        share = lines / (nseg * calls)
        j = 0
        for st in range(0, T, seg):
            ln = min(seg, T - st)
            # computed pixels: ln rounded up to whole vectors, the extra ones
            # read the band's zero tail (or, in place, the next input rows,
            # never past its end)
            lnv = (ln + line - 1) // line * line
            if in_place:
                lnv = min(lnv, x1.size - (xb + p0 * W + st) - last_tap)
            kb = 0
            while kb < Kg:
                kw = woff + (g * Kg + kb) * E
                kn = _block_channels(Kg - kb)
                if kn <= 2:
                    # 1-2 channels left (depthwise, few-channel outputs): one
                    # at a time, so no FMA is wasted (2x faster for 1 channel)
                    for kk in range(kn):
                        if prefetching:
                            sa, sj, sn = _share(j, share, pa, prun, H * W, line)
                            j += 1
                            call_compiled(fns[3], _segment1_prefetching, (
                                band, st, lnv, eoff, E, w1, kw + kk * E, acc, kk * TA, x1, sa,
                                sj, prun, pskip, sn))
                        else:
                            call_compiled(fns[3], _segment1, (band, st, lnv, eoff, E, w1,
                                                              kw + kk * E, acc, kk * TA, 0))
                elif in_place:
                    call_compiled(fns[1], _segment, (x1, xb + p0 * W + st, lnv, eoff, E, w1,
                                                     kw, acc, 0))
                elif prefetching:
                    sa, sj, sn = _share(j, share, pa, prun, H * W, line)
                    j += 1
                    call_compiled(fns[1] if kn == 4 else fns[2], _segment_prefetching, (
                        band, st, lnv, eoff, E, w1, kw, acc, kn, x1, sa, sj, prun, pskip, sn))
                elif kn == 3:
                    call_compiled(fns[2], _segment3, (band, st, lnv, eoff, E, w1, kw, acc, 0))
                else:
                    call_compiled(fns[1], _segment, (band, st, lnv, eoff, E, w1, kw, acc, 0))
                k = g * Kg + kb
                call_compiled(fns[4], _write_back, (
                    acc, st, ln, Wz, Q, kn, b1, k, o1, (n * Kout + k) * oplane, oplane,
                    oh0 + p0 * osh, osh, Wo, ow0, osw, stream))
                kb += kn
    if stream:
        store_fence()


#: How :func:`._tasks.run_tasks` calls :func:`_direct_tasks` (by address, see :mod:`._jit`).
DIRECT_TASKS = declare_runs(_direct_tasks)


def helper_addresses(dtype, Kg, prefetching=False, shifted=False):
    """The ``fns`` argument of :func:`_direct_tasks` for ``dtype`` and ``Kg`` channels per group.

    ``[gather, 4-channel, 3-channel, 1-channel segment, write-back]``
    addresses: :func:`_gather_shifted` if ``shifted``, the segments'
    prefetching variants if ``prefetching`` (one for 4 and 3 channels).  A
    segment variant that ``Kg`` never uses (see :func:`_block_channels`) is
    not compiled and its address is 0.
    """
    blocks = set()
    left = Kg
    while left > 0:
        kn = _block_channels.py_func(left)
        blocks.add(kn if kn > 2 else 1)
        left -= kn
    segments = ((SEGMENT_PREFETCHING, SEGMENT_PREFETCHING, SEGMENT1_PREFETCHING) if prefetching
                else (SEGMENT, SEGMENT3, SEGMENT1))
    used = (s if b in blocks else None for s, b in zip(segments, (4, 3, 1)))
    return address_table(dtype, (GATHER_SHIFTED if shifted else GATHER, *used, WRITE_BACK))


#: Unit-stride convolutions whose band rows would hold at least this share
#: of discarded columns (``(Wz - Q) / Wz``, see the module docstring) read a
#: column-shifted band instead (:func:`_gather_shifted`): ``S`` copies of the
#: input, and no pixel computed in vain.  Measured against the padded band:
#: LeNet's 5x5 on 28x28 (1 channel, 4 of 32 columns) 1.09x float64 and 1.23x
#: float32; ResNet-20's 3x3 on 32x32 (2 of 34) 1.07x with 3 input channels
#: but 0.94x with 16 (float64), so that share stays below the threshold ...
SHIFTED_MIN_WASTE = 0.1

#: ... and only where the products saved, ``Kg*R*S*(Wz - Q)`` per band row,
#: are at least this many times the elements copied in addition,
#: ``(S - 1)*Q``: LeNet conv1's input gradient (one output channel: a ratio
#: of 0.9) ran 0.73x shifted; its forward pass (ratio 5.4) 1.09-1.23x.
SHIFTED_MIN_GAIN = 4

#: Tasks prefetch the next task's input rows (:func:`_prefetch_share`) only
#: when the input has at least this many bytes (a quarter of the 32 MiB L3
#: here): inputs read from DRAM gain (the depthwise layer's 25-51 MiB:
#: 1.1-1.2x; ResNet-20 downsampling, 16 MiB: 1.04-1.06x), those that stay in
#: cache lose (the ResNet-20 stem's 1.5-3 MiB: 0.87-0.98x).
PREFETCH_MIN_BYTES = 8 << 20


#: Slots of a plan (:func:`direct_plan`) before its variable-length parts.
_PLAN_HEAD = 33


def direct_plan(dtype, x_shape, w_shape, stride, padding, dilation, P, Q, place, rows=None,
                woff=0, out_shape=None, prefetch=True):
    """The plan of a direct convolution (:func:`_direct_tasks`), as one read-only int64 array.

    Slots: the :mod:`._tasks` head (0-2: the address of
    :func:`_direct_tasks`, the number of runs of tasks, no finishing step);
    its helpers' addresses (3-7, :func:`helper_addresses`); ``sh, sw, dh,
    dw, pt, pl`` (8-13: stride, dilation, top/left padding, negative crops);
    ``P, Q, oh0, ow0, osh, osw`` (14-19: output size, and pixel ``(p, q)``
    written at ``[oh0 + p*osh, ow0 + q*osw]``); ``B, Hz, Wz, in_place,
    band_size, last_tap, nb, ntasks, PL, woff`` (20-29: output rows per
    task, the band's phase-plane height and width, whether the input is
    read in place with no band, the band's size, the largest tap offset,
    bands per image, tasks, the distance of planes in the band, and where
    the weights start in the flattened ``w``); ``stream`` (30: whether the
    write-back uses non-temporal stores, :func:`_streams`, for an output of
    ``out_shape``); ``prefetching`` (31: whether a task prefetches the
    input rows of the next, see :func:`_prefetch_share`: with ``prefetch``,
    when the band is gathered, its rows are consecutive (every row phase
    holds taps), every run has two tasks or more, and the input has
    :data:`PREFETCH_MIN_BYTES`); ``shifted`` (32: ``S`` when the band is
    column-shifted, :data:`SHIFTED_MIN_WASTE`, else 0; ``Wz`` is then
    ``Q``); then ``use_h`` (``sh`` entries) and
    ``use_w`` (``sw``): 0 for a stride phase that holds no taps, else its
    number among those that do, from 1; and ``eoff``, the offset of tap
    ``(c, r, s)`` in the band (or, in place, in the input).  Tasks are cut
    into at most :data:`TASK_CHUNKS` runs.

    ``rows`` overrides the output rows per task (:func:`direct_rows`), and
    ``woff`` is the offset of this convolution's ``w_shape`` weights in the
    flattened ``w`` the kernel gets: the input gradient's stride phases run
    several plans over one weight array (:mod:`.conv2d_grad_input`);
    ``prefetch=False`` turns prefetching off (its phases read the same rows).

    Computed in Python once per shape (:func:`run_direct` keeps them): in
    the kernel, Numba's parfor passes took about 0.6 s to compile these
    loops, and a kernel call with 6 arguments instead of 20 costs about
    1 us less.
    """
    N, Cin, H, W = x_shape
    Kout, Cg, R, S = w_shape
    sh, sw = stride
    pt, pl = padding
    dh, dw = dilation
    G = Cin // Cg
    Kg = Kout // G
    use_h = _phase_numbers(R, dh, sh)
    use_w = _phase_numbers(S, dw, sw)
    nh, nw = int(use_h.max()), int(use_w.max())
    extra = ((R - 1) * dh) // sh
    Wz = Q + ((S - 1) * dw) // sw
    # in place: read x itself (unit stride, no padding, whole rows); only
    # with blocks of 4 channels (the other variants read the band)
    in_place = (sh == 1 and sw == 1 and pt == 0 and pl == 0 and Wz == W
                and P + (R - 1) * dh <= H and Kg % 4 == 0)
    shifted = (not in_place and sh == 1 and sw == 1 and S > 1
               and Wz - Q >= SHIFTED_MIN_WASTE * Wz
               and Kg * R * S * (Wz - Q) >= SHIFTED_MIN_GAIN * (S - 1) * Q)
    planes = S if shifted else nh * nw
    if shifted:
        Wz = Q  # band rows of Q pixels, one plane per column tap
    B = rows or direct_rows(P, Cg * planes * Wz, extra, N * G)
    Hz = B + extra
    PL = _plane_stride(Hz * Wz, np.dtype(dtype).itemsize)
    c, r, s = np.meshgrid(np.arange(Cg), np.arange(R) * dh, np.arange(S) * dw, indexing="ij")
    if in_place:
        eoff = (c * H + r) * W + s
    elif shifted:
        eoff = (c * S + s // dw) * PL + r * Wz
    else:
        plane = (c * nh + use_h[r % sh] - 1) * nw + use_w[s % sw] - 1
        eoff = plane * PL + (r // sh) * Wz + s // sw
    band_size = 0 if in_place else Cg * planes * PL + VW
    nb = -(-P // B)
    ntasks = N * G * nb
    prefetching = (prefetch and not in_place and nh == sh and ntasks >= 2 * TASK_CHUNKS
                   and math.prod(x_shape) * np.dtype(dtype).itemsize >= PREFETCH_MIN_BYTES)
    head = [DIRECT_TASKS.address(dtype), min(ntasks, TASK_CHUNKS), 0,
            *helper_addresses(dtype, Kg, prefetching, shifted), sh, sw, dh, dw, pt, pl, P, Q,
            *place,
            B, Hz, Wz, int(in_place), band_size, int(eoff.max()), nb, ntasks, PL, woff,
            int(_streams(out_shape, np.dtype(dtype).itemsize, Q, Wz, place)), int(prefetching),
            S if shifted else 0]
    plan = np.concatenate([np.array(head, np.int64), use_h, use_w, eoff.ravel()]).astype(np.int64)
    plan.flags.writeable = False
    return plan


@inline_helper
def _block_channels(left):
    """Output channels of the next micro-kernel block when ``left`` remain.

    Blocks of 4 (:func:`_segment`), then 3 (:func:`_segment3`; 6 left are
    two blocks of 3), then 1 at a time (:func:`_segment1`).
    """
    if left == 6 or left == 3:
        return 3
    return min(left, 4)


def direct_rows(P, per_row, extra, n_outer):
    """Output rows per task: a band of about :data:`BAND_ELEMENTS` and at least
    :data:`~._tiling.MIN_TASKS` tasks (counting the ``n_outer`` images x groups).

    ``per_row`` is the band elements per output row (channels x stored
    phases x ``Wz``) and ``extra`` the rows a band holds beyond its output
    rows (the kernel's height in phase rows).  A band gets at least ``4 *
    extra`` output rows, so that at most a fifth of it is gathered twice:
    with many channels and wide rows the size target alone gave one output
    row per band (the ResNet-50 stem's input gradient: 64 channels, 4 extra
    rows each).
    """
    rows = max(1, min(P, max(BAND_ELEMENTS // max(per_row, 1) - extra, 4 * extra)))
    want_bands = -(-MIN_TASKS // max(n_outer, 1))
    if -(-P // rows) < want_bands:
        rows = max(1, -(-P // want_bands))
    return rows


def _phase_numbers(R, d, s):
    """For each stride phase ``0..s-1``: 0 if no tap ``r*d`` (``r < R``) is in it, else its
    number among those that hold taps, from 1."""
    used = np.zeros(s, np.int64)
    used[(np.arange(R) * d) % s] = 1
    return np.where(used > 0, np.cumsum(used), 0)


def _plane_stride(plane, itemsize):
    """Distance in elements of a band's phase planes of ``plane`` elements.

    Rounded up to an odd number of cache lines, so that the taps of
    successive planes, which a micro-kernel reads together, fall in
    different L1 sets: planes a power of two apart (a 1x1 stride-2 layer's
    16x16 planes, 4 phases apart) map all its channels to a few sets.
    """
    line = 64 // itemsize
    lines = -(-plane // line)
    return (lines + 1 - lines % 2) * line


#: Below this many multiply-adds a call runs on the calling thread
#: (:data:`._tasks.run_tasks_serial`): waking the thread pool costs about 2.6 us,
#: the time of ~100k multiply-adds on one core.
SERIAL_MACS = 1 << 16


#: Results of at least this many bytes are written with non-temporal stores
#: (:func:`._blocks.stream_row`), where the write-back writes whole cache
#: lines (:func:`_streams`).  On this machine a core's normal stores into an
#: array that large ran at 5.4 GB/s (10-18 with both cores), non-temporal
#: ones at 26-28 GB/s: a normal store first reads the line it writes.
STREAM_MIN_BYTES = 8 << 20

#: ... and rows of at least this many bytes (shorter ones ran slower).
STREAM_MIN_ROW_BYTES = 256


def _streams(out_shape, itemsize, Q, Wz, place):
    """Whether the write-back uses non-temporal stores (see :data:`STREAM_MIN_BYTES`).

    Only for outputs allocated on a cache-line boundary (``fastconv._results``
    aligns those this large) whose written runs are whole lines: a segment
    when rows are contiguous (``Wz == Q == Wo``, unit placement), else rows
    of a multiple of 64 bytes, at least :data:`STREAM_MIN_ROW_BYTES`.
    """
    if out_shape is None or math.prod(out_shape) * itemsize < STREAM_MIN_BYTES:
        return False
    Wo = out_shape[3]
    if place[2] != 1 or place[3] != 1:
        return False
    if Wz == Q == Wo:
        return True
    return Wo * itemsize % 64 == 0 and Q * itemsize >= STREAM_MIN_ROW_BYTES


#: Whether :func:`run_direct` hands the depthwise convolutions that
#: :func:`.conv2d_depthwise.fits` to that engine (tests turn it off to
#: run them on this one).
DEPTHWISE = True

#: Plans (kernel and :func:`direct_plan`) by dtype, shapes and arguments,
#: up to :data:`MAX_PLANS` of them.
_PLANS = {}
MAX_PLANS = 1024


def run_direct(x, weight, bias, out, stride, padding, dilation, P, Q, place=(0, 0, 1, 1)):
    """``out[placed] = conv(x, weight) + bias`` (arrays as :func:`_direct_tasks` takes them).

    The other arguments as for :func:`direct_plan`; the plan is made on the
    first call with these shapes and kept.  Depthwise convolutions that
    :func:`.conv2d_depthwise.fits` run on that engine instead (unless
    :data:`DEPTHWISE` is off).
    """
    key = (x.dtype, x.shape, weight.shape, out.shape, *stride, *padding, *dilation, P, Q, *place)
    entry = _PLANS.get(key)
    if entry is None:
        if len(_PLANS) >= MAX_PLANS:
            _PLANS.clear()
        macs = x.shape[0] * weight.size * P * Q
        kernel = run_tasks_serial if macs < SERIAL_MACS else run_tasks
        if DEPTHWISE and depthwise.fits(x.shape, weight.shape, out.shape, stride, P, Q, place):
            plan = depthwise.depthwise_plan(
                x.dtype, x.shape, weight.shape, tuple(stride), tuple(padding), tuple(dilation), P,
                Q, stream=out.nbytes >= STREAM_MIN_BYTES)
        else:
            plan = direct_plan(x.dtype, x.shape, weight.shape, tuple(stride), tuple(padding),
                               tuple(dilation), P, Q, tuple(place), out_shape=out.shape)
        entry = _PLANS[key] = (kernel, plan, unused_output(x.dtype))
    kernel, plan, out2 = entry
    kernel(plan, x, weight, bias, out, out2)
