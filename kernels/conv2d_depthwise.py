"""Depthwise engine: one input and one output channel per group, unit column stride.

A depthwise convolution does few multiply-adds per element it moves (9 per
output for a 3x3 filter), so its time is memory traffic.  The direct
engine (:mod:`.conv2d_direct`) moves each element three times: it copies
the input into a padded band, computes into an L1 buffer, and writes that
buffer out.  This engine reads the input where it lies and writes each sum
once, from the register it was computed in (:func:`._blocks.row_taps_block`):

* A task is one (image, channel, band of ``B`` output rows).
* Each output row is cut into vectors of pixels (16 float32 or 8 float64).
  Rows whose window lies inside the input's rows go :data:`ROWS` at a
  time, one vector in each per block, so that the blocks' independent
  chains of fused multiply-adds hide each other's latency; with 3-, 5- and
  7-row filters at unit row stride and dilation, a stencil block loads
  each input vector once for all the rows that use it
  (:data:`STENCIL_ROWS`).
* A vector whose taps all read columns inside the input loads plainly;
  the others (the first and last of a padded row) use masked loads, which
  read zero outside the input's columns.  The last vector of a row that is
  not a whole number of vectors has a masked store, which ends it at the
  row's last pixel.  For large results, whole vectors are stored
  non-temporally when the rows start on 64-byte boundaries (float64 rows
  of 56 pixels, for example).
* Rows whose window leaves the input at the top or bottom go one at a
  time and sum only the taps of the rows inside it, so padding rows are
  never read.  (Padding columns are multiplied as zeros; only non-finite
  weights could tell the two apart.)
* Each output is computed by one task, in a fixed order: the result does
  not depend on the thread count.

Against the direct engine's band, same process, forward and input
gradient: the benchmark suite's depthwise layer (32 x 64 x 56 x 56, 3x3,
padding 1) 1.3-1.85x float32 and 1.25-1.55x float64 (over three runs on a
noisy machine); other 3x3 layers 1.1-2.9x (7x7 to 112x112 images), 5x5
1.4-1.8x, 7x7 1.2-1.35x.  See :func:`fits` for where it is used.
"""

import numpy as np

from ._blocks import VECTOR_BYTES, row_taps_block, stencil_block, store_fence
from ._jit import noalias_helper
from ._tasks import PLAN_NRUNS, declare_runs
from ._tiling import MIN_TASKS, band_task

#: Output rows computed together (:func:`._blocks.row_taps_block`): one
#: vector in each, so that their sums' chains of fused multiply-adds hide
#: each other's latency.
ROWS = 4

#: Filter heights with a :func:`._blocks.stencil_block` (at unit row stride
#: and dilation): each input vector loaded once for the rows that use it.
#: Measured on a 3x3 filter (4 rows x 56 pixels from L1): 1.8-1.95x the
#: speed of the tap list, which loads every tap for every row.
STENCIL_ROWS = (3, 5, 7)

#: Most runs of consecutive tasks a call is cut into (one per ``prange``
#: iteration), as in the direct engine.
TASK_CHUNKS = 64

_ROWS = row_taps_block(ROWS)
_ROWS_MASKED = row_taps_block(ROWS, masked=True)
_STENCIL3 = stencil_block(ROWS, 3)
_STENCIL3_MASKED = stencil_block(ROWS, 3, masked=True)
_STENCIL5 = stencil_block(ROWS, 5)
_STENCIL5_MASKED = stencil_block(ROWS, 5, masked=True)
_STENCIL7 = stencil_block(ROWS, 7)
_STENCIL7_MASKED = stencil_block(ROWS, 7, masked=True)
_ROW = row_taps_block(1)
_ROW_MASKED = row_taps_block(1, masked=True)

#: Slots of a plan (:func:`depthwise_plan`) before its tap offsets.
_PLAN_HEAD = 15


@noalias_helper
def _depthwise_tasks(run, plan, x, w, b, out, out2):
    """Run ``run`` of a :func:`depthwise_plan`'s runs of tasks (the :func:`._tasks.engine_runs` interface).

    ``out = conv(x, w) + b`` for this run's tasks: each writes the rows
    ``p0 <= p < p0 + rows`` of one channel of one image, and nothing else.

    Parameters
    ----------
    run : int
    plan : ndarray of int64
        :func:`depthwise_plan` for these shapes and arguments.
    x : ndarray, shape (N, C, H, W), C-contiguous, float32 or float64
    w : ndarray, shape (C, 1, R, S), C-contiguous, x's dtype
        Output channel ``c`` reads input channel ``c``.
    b : ndarray, shape (C,), x's dtype
    out : ndarray, shape (N, C, P, Q), C-contiguous, x's dtype
        Must not overlap the other arguments: they are all ``noalias``.
    out2 : ndarray
        Not used.
    """
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    R, S = w.shape[2], w.shape[3]
    P, Q = out.shape[2], out.shape[3]
    sh, dh, pt, pl, dw = plan[3], plan[4], plan[5], plan[6], plan[13]
    stencil = plan[14]
    B, nb, ntasks, i_lo, i_hi = plan[7], plan[8], plan[9], plan[10], plan[11]
    RS = R * S
    eoff = plan[_PLAN_HEAD:_PLAN_HEAD + RS]
    coff = plan[_PLAN_HEAD + RS:_PLAN_HEAD + 2 * RS]
    x1 = x.reshape(x.size)
    w1 = w.reshape(w.size)
    o1 = out.reshape(out.size)
    lanes = VECTOR_BYTES // x1.itemsize
    nv = (Q + lanes - 1) // lanes
    nruns = plan[PLAN_NRUNS]
    # non-temporal stores need every full vector on a 64-byte boundary
    stream = (plan[12] != 0 and (Q * x1.itemsize) % VECTOR_BYTES == 0
              and o1.ctypes.data % VECTOR_BYTES == 0)
    full = Q // lanes  # vectors that end inside their row
    # output rows whose window lies inside the input's rows (every tap read)
    p_in = max(0, -(-pt // sh))
    p_out = (H - 1 - (R - 1) * dh + pt) // sh + 1
    for task in range(run * ntasks // nruns, (run + 1) * ntasks // nruns):
        n, c, p0, rows = band_task(task, nb, C, B, P)
        xb = (n * C + c) * H * W
        bk = b[c]
        ob = (n * C + c) * P * Q
        p = p0
        while p < p0 + rows:
            xr = xb + (p * sh - pt) * W - pl  # input element of column 0, tap (0, 0)
            orow = ob + p * Q
            if p >= p_in and p + ROWS <= min(p_out, p0 + rows):
                for i in range(nv):
                    q = i * lanes
                    inside = i_lo <= i < i_hi
                    n_q = min(lanes, Q - q)
                    streamed = int(stream and i < full)
                    if stencil == 0:
                        args = (x1, xr + q, sh * W, eoff, coff, RS, w1, c * RS, o1, orow + q,
                                Q, q - pl, W, n_q, bk, streamed)
                        if inside:
                            _ROWS(*args)
                        else:
                            _ROWS_MASKED(*args)
                        continue
                    args = (x1, xr + q, W, S, dw, w1, c * RS, o1, orow + q, Q, q - pl, W, n_q,
                            bk, streamed)
                    if stencil == 3:
                        if inside:
                            _STENCIL3(*args)
                        else:
                            _STENCIL3_MASKED(*args)
                    elif stencil == 5:
                        if inside:
                            _STENCIL5(*args)
                        else:
                            _STENCIL5_MASKED(*args)
                    elif inside:
                        _STENCIL7(*args)
                    else:
                        _STENCIL7_MASKED(*args)
                p += ROWS
                continue
            # one row, with the taps whose input rows h0 + r*dh lie inside [0, H)
            h0 = p * sh - pt
            r_lo = max(0, (dh - 1 - h0) // dh)
            r_hi = min(R, (H - 1 - h0) // dh + 1) if h0 < H else 0
            p += 1
            if r_lo >= r_hi:
                for q in range(Q):
                    o1[np.uint64(orow + q)] = bk
                continue
            E = (r_hi - r_lo) * S
            ex = eoff[r_lo * S:]
            cx = coff[r_lo * S:]
            for i in range(nv):
                q = i * lanes
                args = (x1, xr + q, 0, ex, cx, E, w1, c * RS + r_lo * S, o1, orow + q, 0,
                        q - pl, W, min(lanes, Q - q), bk, int(stream and i < full))
                if i_lo <= i < i_hi:
                    _ROW(*args)
                else:
                    _ROW_MASKED(*args)
    if stream:
        store_fence()


#: How :func:`._tasks.run_tasks` calls :func:`_depthwise_tasks` (by address, see :mod:`._jit`).
DEPTHWISE_TASKS = declare_runs(_depthwise_tasks)


def fits(x_shape, w_shape, out_shape, stride, P, Q, place):
    """Whether this engine computes ``out[placed] = conv(x, w)`` (arguments as for :func:`depthwise_plan`).

    One input and one output channel per group (``w_shape`` is ``(C, 1, R,
    S)``), unit column stride, and outputs written whole, in place:
    ``out`` is ``(N, C, P, Q)`` with unit placement.  With several output
    channels per input channel (LeNet's first layer: 1 input channel, 6
    outputs) the direct engine's blocks of 4 channels share each load: the
    ``Kg`` loop here ran LeNet conv1 1.2-1.8x slower.
    """
    return (w_shape[1] == 1 and w_shape[0] == x_shape[1] and stride[1] == 1
            and tuple(out_shape[2:]) == (P, Q) and tuple(place) == (0, 0, 1, 1))


def depthwise_plan(dtype, x_shape, w_shape, stride, padding, dilation, P, Q, stream=False):
    """The plan of a depthwise convolution (:func:`_depthwise_tasks`), as one read-only int64 array.

    Slots: the :mod:`._tasks` head (0-2: the address of
    :func:`_depthwise_tasks`, the number of runs of tasks, no finishing
    step); ``sh, dh, pt, pl`` (3-6: row stride, dilation, top/left padding,
    negative for crops); ``B, nb, ntasks`` (7-9: output rows per task,
    bands per channel, tasks); ``i_lo, i_hi`` (10-11: the vectors of a row,
    by number, whose taps all read inside the input's columns); ``stream``
    (12: whether whole vectors are stored non-temporally, when the kernel
    finds the output's rows on 64-byte boundaries); ``dw`` (13: column
    dilation); ``stencil`` (14: ``R`` when 4-row groups use
    :func:`._blocks.stencil_block`, see :data:`STENCIL_ROWS`, else 0); then
    ``eoff`` (``R*S``: the offset of tap ``(r, s)`` from tap ``(0, 0)`` in
    the input, ``r*dh*W + s*dw``) and ``coff`` (``R*S``: its column offset,
    ``s*dw``).  ``stream`` asks for non-temporal stores: for results too
    large to stay in cache (the caller decides, as for the direct engine).
    """
    N, C, _, W = x_shape
    R, S = w_shape[2:]
    sh, _ = stride
    pt, pl = padding
    dh, dw = dilation
    itemsize = np.dtype(dtype).itemsize
    lanes = VECTOR_BYTES // itemsize
    nv = -(-Q // lanes)
    # vector i reads columns i*lanes - pl to i*lanes + lanes - 1 - pl + (S-1)*dw
    i_lo = min(nv, max(0, -(-pl // lanes)))
    i_hi = i_lo
    while i_hi < nv and (i_hi + 1) * lanes - 1 - pl + (S - 1) * dw <= W - 1:
        i_hi += 1
    # enough tasks to share among the threads; otherwise a channel's whole output
    want_bands = -(-MIN_TASKS // (N * C))
    B = -(-P // want_bands)
    nb = -(-P // B)
    ntasks = N * C * nb
    r, s = np.meshgrid(np.arange(R), np.arange(S), indexing="ij")
    eoff = r * dh * W + s * dw
    coff = s * dw
    head = [DEPTHWISE_TASKS.address(dtype), min(ntasks, TASK_CHUNKS), 0, sh, dh, pt, pl,
            B, nb, ntasks, i_lo, i_hi, int(stream), dw,
            R if sh == 1 and dh == 1 and R in STENCIL_ROWS else 0]
    plan = np.concatenate([np.array(head, np.int64), eoff.ravel(), coff.ravel()]).astype(np.int64)
    plan.flags.writeable = False
    return plan
