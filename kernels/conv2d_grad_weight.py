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

Depthwise convolutions at unit stride have a layout of their own, one
channel plane per image (:mod:`._grad_weight_depthwise`), with the same
fallback.

Bands are grouped into a fixed number of chunks that depends on the shape
only; each chunk sums into its own partial, and the partials are added in
chunk order, so any thread count gives the same bits.  Small problems run
on the calling thread.
"""

import functools

import numpy as np

from . import _grad_weight_depthwise as depthwise
from ._grad_weight_microkernels import DY_TIMES_TAPS, ROW_TIMES_TAPS, dy_times_taps
from ._grad_weight_packing import (
    PACK_DY_ROWS,
    PACK_X_DIRECT,
    PACK_X_PANEL,
    pack_dy_rows,
    pack_x_direct,
    pack_x_panel,
)
from ._grad_weight_plan import DEPTHWISE, DIRECT, PANEL, SERIAL_FMAS, X_IN_PLACE, _plan
from ._jit import address_table, call_compiled, serial_helper
from ._tasks import PLAN_NRUNS, declare_runs, run_tasks, run_tasks_serial, unused_input
from ._tiling import VECTOR_PAD


@serial_helper
def grad_weight_chunk(run, plan, x, w, b, out, out2):
    """Weight gradient of chunk ``run``: its share of the (band, group) tasks or output channels.

    The :func:`._tasks.engine_runs` interface: ``x`` is the input, ``w`` the
    output gradient ``dy``, ``out`` the partial sums (``b`` and ``out2`` are
    not used); the other arguments below are slots of ``plan``
    (:func:`grad_weight_plan`).

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
    run : int
        The chunk, ``0 <= run < nchunks`` (``plan[PLAN_NRUNS]``).
    plan : ndarray of int64
        Slots 3-7 ``fns``, the addresses of the packers and the micro-kernel
        (:func:`chunk_helpers`); 8-30 ``mode, in_place, ksplit, G, cblock,
        R, S, sh, sw, dh, dw, pt, pl, Hs, Ws, emin, lead, span, B, n_rows,
        NTp`` and the lengths of ``phases_h`` and ``phases_w``; then
        ``xrow``, ``off``, ``phases_h``, ``phases_w``.
    x : ndarray, shape (N, C, H, W), C-contiguous
    w : ndarray, shape (N, K, P, Q), C-contiguous
        The output gradient ``dy``.
    out : ndarray, shape (nchunks, G, Kg, NTp), or (1, G, Kg, NTp) with ``ksplit``
        This chunk's sums ``acc = out[run]`` (``out[0]`` with ``ksplit``):
        ``acc[g, k, (c*R + r)*S + s]`` for ``dW[g*Kg + k, c, r, s]``.
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
    ch = run
    nchunks = plan[PLAN_NRUNS]
    fns = plan[3:8]
    mode, in_place, ksplit, G, cblock = plan[8], plan[9], plan[10] != 0, plan[11], plan[12]
    R, S, sh, sw, dh, dw, pt, pl = (plan[13], plan[14], plan[15], plan[16], plan[17], plan[18],
                                    plan[19], plan[20])
    Hs, Ws, emin, lead, span, B, n_rows = (plan[21], plan[22], plan[23], plan[24], plan[25],
                                           plan[26], plan[27])
    NTp, nph, npw = plan[28], plan[29], plan[30]
    xrow = plan[_HEAD:_HEAD + NTp]
    off = plan[_HEAD + NTp:_HEAD + 2 * NTp]
    phases_h = plan[_HEAD + 2 * NTp:_HEAD + 2 * NTp + nph]
    phases_w = plan[_HEAD + 2 * NTp + nph:_HEAD + 2 * NTp + nph + npw]
    dy = w
    acc = out[0] if ksplit else out[ch]
    N = x.shape[0]
    C = x.shape[1]
    Cg = C // G
    K = dy.shape[1]
    Kg = K // G
    P = dy.shape[2]
    Q = dy.shape[3]
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
            call_compiled(fns[0], pack_dy_rows, (dy, g * Kg + k_lo, nk, G0, rows, Hs, Ws, T,
                                                 dyb))
        for c0 in range(0, Cg, cblock):
            cb = min(cblock, Cg - c0)
            i0 = c0 * R * S
            i1 = min(NTp, i0 + (cb * R * S + 3) // 4 * 4)
            # one call site for the micro-kernel (each call site is another
            # inlined copy for LLVM to optimise: compile time)
            if in_place == X_IN_PLACE:
                xs, xr0, xo0 = x2, n * C + g * Cg + c0, p0 * Q
            else:
                xs, xr0, xo0 = buf, 0, 0
                if mode == DIRECT:
                    call_compiled(fns[1], pack_x_direct, (
                        x, g * Cg + c0, cb, cblock, phases_h, phases_w, sh, sw,
                        Hs, Ws, (G0 + emin) * Ws - lead, T + span, buf))
                else:
                    call_compiled(fns[2], pack_x_panel, (
                        x, g * Cg + c0, cb, R, S, sh, sw, dh, dw, pt, pl, P, Q, G0, rows, T, buf))
            if in_place:
                dys, kr0, t0 = dy2, n * K + g * Kg + k_lo, p0 * Q
            else:
                dys, kr0, t0 = dyb, 0, 0
            call_compiled(fns[3], dy_times_taps, (dys, kr0, t0, xs, xr0, xo0, xrow, off, T, nk,
                                                  i0, i1, (c0 + cb) * R * S, acc_g, fns[4]))


#: How :func:`._tasks.run_tasks` calls :func:`grad_weight_chunk` (by address, see :mod:`._jit`).
CHUNK = declare_runs(grad_weight_chunk)

#: Plan slots before ``xrow`` (see :func:`grad_weight_chunk`).
_HEAD = 31


@serial_helper
def sum_partials(run, plan, x, w, b, out, out2):
    """``out2[g*Kg + k, i] = sum_ch out[ch, g, k, i]``, added in chunk order (the finishing step).

    The :func:`._tasks.engine_runs` interface, called with ``run == -1``
    after every chunk has run: ``out`` holds the partial sums (shape
    ``(nparts, G, Kg, NTp)``) and ``out2`` is the weight gradient (shape
    ``(K, Cg, R, S)``, overwritten).  Then sets ``out[0, 0, 0, 0]`` to NaN
    if some element of ``out2`` is not finite, else to 0.  At most a few
    percent of the work: it runs on the calling thread.
    """
    nparts, Kg = out.shape[0], out.shape[2]
    K = out2.shape[0]
    gw = out2.reshape((K, out2.size // K))
    zero = out.dtype.type(0)
    check = zero
    for kk in range(K):
        g = kk // Kg
        k = kk - g * Kg
        for i in range(gw.shape[1]):
            s = out[0, g, k, i]
            for ch in range(1, nparts):
                s += out[ch, g, k, i]
            gw[kk, i] = s
            check += s * zero  # NaN for an infinite or NaN s
    out[0, 0, 0, 0] = check


SUM_PARTIALS = declare_runs(sum_partials)


def chunk_helpers(dtype, mode, in_place, Kg):
    """The ``fns`` argument of :func:`grad_weight_chunk`.

    ``[pack_dy_rows, pack_x_direct, pack_x_panel, dy_times_taps,
    row_times_taps]`` addresses for ``dtype``; a helper that this layout
    (``mode``, ``in_place``) or ``Kg`` output channels per group never
    call is not compiled, and its address is 0.
    """
    return address_table(dtype, (
        None if in_place else PACK_DY_ROWS,
        PACK_X_DIRECT if mode == DIRECT and in_place != X_IN_PLACE else None,
        PACK_X_PANEL if mode == PANEL else None,
        DY_TIMES_TAPS,
        ROW_TIMES_TAPS if Kg % 4 else None))


@functools.lru_cache(maxsize=256)
def grad_weight_plan(dtype, mode, x_shape, dy_shape, w_shape, stride, padding, dilation, groups):
    """The read-only plan of :func:`grad_weight_chunk` for one layout (``mode``) and these shapes.

    For ``DEPTHWISE`` the runs are :func:`._grad_weight_depthwise.depthwise_chunk`'s.
    Returns ``(plan, partial_shape, serial)``: the plan (the :mod:`._tasks`
    head: chunks, then :func:`sum_partials`), the shape of the partial sums,
    and whether to run on the calling thread.
    """
    K = w_shape[0]
    if mode == DEPTHWISE:
        nparts, slots = depthwise.depthwise_slots(x_shape, dy_shape, w_shape, padding, dilation)
        plan = np.array([depthwise.DEPTHWISE_CHUNK.address(dtype), nparts * groups,
                         SUM_PARTIALS.address(dtype), *slots], np.int64)
        plan.flags.writeable = False
        fmas = x_shape[0] * dy_shape[2] * dy_shape[3] * K * w_shape[2] * w_shape[3]
        return plan, (nparts, groups, 1, w_shape[2] * w_shape[3]), fmas < SERIAL_FMAS
    nchunks, NTp, args, serial = _plan(mode, x_shape, dy_shape, w_shape, dtype.itemsize, stride,
                                       padding, dilation, groups)
    (mode, in_place, ksplit, G, cblock, xrow, off, phases_h, phases_w, R, S, sh, sw, dh, dw,
     pt, pl, Hs, Ws, emin, lead, span, B, n_rows) = args
    head = [CHUNK.address(dtype), nchunks, SUM_PARTIALS.address(dtype),
            *chunk_helpers(dtype, mode, in_place, K // groups),
            mode, in_place, int(ksplit), G, cblock, R, S, sh, sw, dh, dw, pt, pl,
            Hs, Ws, emin, lead, span, B, n_rows, NTp, phases_h.size, phases_w.size]
    plan = np.concatenate([np.array(head, np.int64), xrow, off, phases_h, phases_w])
    plan.flags.writeable = False
    return plan, (1 if ksplit else nchunks, groups, K // groups, NTp), serial


def _run(mode, x, dy, grad_weight, stride, padding, dilation, groups):
    """Run one layout into ``grad_weight``; whether every element of the result is finite."""
    plan, partial_shape, serial = grad_weight_plan(
        x.dtype, mode, x.shape, dy.shape, grad_weight.shape, tuple(stride), tuple(padding),
        tuple(dilation), groups)
    partial = np.empty(partial_shape, x.dtype)
    kernel = run_tasks_serial if serial else run_tasks
    kernel(plan, x, dy, unused_input(x.dtype), partial, grad_weight)
    return not np.isnan(partial[0, 0, 0, 0])


def conv2d_grad_weight(x, grad_output, grad_weight, stride, padding, dilation, groups):
    """Write dL/dweight into ``grad_weight``.

    Runs the direct layout (:mod:`._grad_weight_depthwise` for depthwise
    convolutions at unit stride); if the result is not finite (a NaN or infinite
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
    first = DIRECT
    if depthwise.applies(x.shape, grad_weight.shape, tuple(stride), groups):
        first = DEPTHWISE
    if not _run(first, *args):
        _run(PANEL, *args)
