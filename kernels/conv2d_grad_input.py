"""Input gradient of ``conv2d``: a transposed convolution, split into stride phases."""

import math

import numpy as np

from . import conv2d_direct
from ._jit import call_compiled, noalias_helper
from ._tasks import (
    PLAN_NRUNS,
    PLAN_RUNS,
    declare_runs,
    engine_runs,
    run_tasks,
    run_tasks_serial,
    unused_output,
    zero_bias,
)
from .conv2d_direct import direct_plan, direct_rows, run_direct
from .conv2d_forward import choose_engine, run_packed


def stride_phase(a, stride, dilation, pad, kernel, n_out, size):
    """The taps and geometry of input positions ``a, a + stride, ...`` along one axis.

    Input position ``x = a + stride*i`` receives ``grad_output[p] * w[r]`` for
    every tap ``r`` with ``x + pad - r*dilation == p*stride``.  Those taps are
    evenly spaced, so phase ``a`` is a stride-1 correlation of ``grad_output``
    with the flipped sub-kernel of its taps: no multiplication by the zeros of
    a stride-upsampled gradient.

    Returns
    -------
    taps : list of int
        Kernel taps in the order the sub-correlation uses them (decreasing).
    dil, pad_before : int
        Dilation and top/left padding of the sub-correlation over grad_output.
    count : int
        Number of input positions in this phase.
    """
    count = (size - a + stride - 1) // stride
    taps = [r for r in range(kernel) if (a + pad - r * dilation) % stride == 0]
    taps.reverse()
    if not taps or count <= 0:
        return [], 1, 0, max(count, 0)
    step = stride // math.gcd(stride, dilation)
    dil = dilation * step // stride
    pad_before = -((a + pad - taps[0] * dilation) // stride)
    return taps, dil, pad_before, count


def conv2d_grad_input(grad_output, weight, grad_input, stride, padding, dilation, groups,
                      engine=None):
    """Write dL/dx into ``grad_input``.

    For each of the ``stride[0] * stride[1]`` phases of input positions, run
    the forward engine over ``grad_output`` with the phase's flipped
    sub-kernel (in/out channels swapped within each group) and place its
    output at that phase's positions.  Positions that no window covers get
    zero.  Every element of ``grad_input`` is written by exactly one task.
    When several phases all use the direct engine, they run in one parallel
    call (:func:`_run_phases`).

    Parameters
    ----------
    grad_output : ndarray, shape (N, K, P, Q), C-contiguous, float32 or float64
    weight : ndarray, shape (K, C // groups, R, S), C-contiguous, same dtype
    grad_input : ndarray, shape (N, C, H, W), C-contiguous, same dtype
        Overwritten entirely.
    stride, padding, dilation : (int, int)
        As given to the forward pass (padding is top/left).
    groups : int
    engine : {None, "direct", "packed"}
        As for :func:`.conv2d_forward`, chosen per stride phase.
    """
    K, Cg, R, S = weight.shape
    G = groups
    Kg = K // G
    C = Cg * G
    key = (weight.shape, grad_input.shape[2:], grad_output.shape[2:], stride, padding, dilation,
           groups, engine)
    fill, phases = _DISPATCH.get(key) or _dispatch(key)
    if fill:
        # some phase gets no gradient (stride > dilated kernel, e.g. 1x1 stride
        # 2): one contiguous fill, 4.7x faster than zeroing the phases strided
        grad_input.fill(0)
    bias = zero_bias(C, grad_output.dtype)
    # in/out channels swapped within each group: ws[g, c, k] = weight[g*Kg + k, c]
    ws = weight.reshape(G, Kg, Cg, R, S).transpose(0, 2, 1, 3, 4)
    direct = []
    for rows, cols, pad, dil, Hp, Wp, place, use_direct in phases:
        taps = ws[:, :, :, rows, cols]  # a view, (G, Cg, Kg, Rm, Sm)
        if use_direct:
            direct.append((taps, pad, dil, Hp, Wp, place))
        else:
            run_packed(grad_output, _sub_kernel(taps), bias, grad_input, (1, 1), pad, dil, G,
                       Hp, Wp, place=place)
    if len(direct) == 1:
        taps, pad, dil, Hp, Wp, place = direct[0]
        run_direct(grad_output, _sub_kernel(taps), bias, grad_input, (1, 1), pad, dil, Hp, Wp,
                   place=place)
    elif direct:
        _run_phases(grad_output, direct, bias, grad_input)


def _sub_kernel(taps, out=None):
    """One phase's ``taps`` (``(G, Cg, Kg, Rm, Sm)``, a view) copied once, as ``(C, Kg, Rm, Sm)``.

    Into ``out`` (C-contiguous, ``taps.size`` elements) if given.
    """
    G, Cg, Kg, Rm, Sm = taps.shape
    sub = np.empty(taps.shape, taps.dtype) if out is None else out.reshape(taps.shape)
    sub[...] = taps
    return sub.reshape(G * Cg, Kg, Rm, Sm)


#: Per geometry (:func:`conv2d_grad_input`'s key), whether ``grad_input`` is
#: zero-filled first and its phases (:func:`_dispatch`), up to
#: :data:`MAX_PLANS` of them: for small inputs, working them out took 8 of
#: the 18 us of a call (``single_image``).
_DISPATCH = {}


def _dispatch(key):
    """Work out and keep ``(fill, phases)`` for ``key`` (see :data:`_DISPATCH`).

    ``phases``: per stride phase with taps and positions, the slices of
    the flipped kernel's rows and columns it uses, its padding, dilation,
    size and placement for the engines, and whether it runs on the direct
    engine.
    """
    w_shape, (H, W), (P, Q), stride, padding, dilation, groups, engine = key
    K, Cg, R, S = w_shape
    Kg = K // groups
    phases_h = [(ah,) + stride_phase(ah, stride[0], dilation[0], padding[0], R, P, H)
                for ah in range(stride[0])]
    phases_w = [(aw,) + stride_phase(aw, stride[1], dilation[1], padding[1], S, Q, W)
                for aw in range(stride[1])]
    fill = any(count and not taps for _, taps, _, _, count in phases_h + phases_w)
    phases = []
    for ah, rows, dil_h, pt, Hp in phases_h:
        for aw, cols, dil_w, pl, Wp in phases_w:
            if Hp == 0 or Wp == 0 or not rows or not cols:
                continue
            # the sub-correlations have unit stride
            use_direct = (engine or choose_engine(len(rows) * len(cols) * Kg, Cg, True,
                                                  Wp)) == "direct"
            phases.append((_taps_slice(rows), _taps_slice(cols), (pt, pl), (dil_h, dil_w), Hp, Wp,
                           (ah, aw, stride[0], stride[1]), use_direct))
    if len(_DISPATCH) >= MAX_PLANS:
        _DISPATCH.clear()
    _DISPATCH[key] = fill, phases
    return fill, phases


def _taps_slice(taps):
    """The decreasing, evenly spaced ``taps`` of :func:`stride_phase` as a slice."""
    step = taps[1] - taps[0] if len(taps) > 1 else -1
    stop = taps[-1] + step
    return slice(taps[0], None if stop < 0 else stop, step)


@noalias_helper
def _phases_runs(run, plan, x, w, b, out, out2):
    """Run ``run`` of each phase's direct plan (the :func:`._tasks.engine_runs` interface).

    ``plan``: the :mod:`._tasks` head, the number of phases, then per phase
    the start and length of its :func:`.conv2d_direct.direct_plan` in
    ``plan``.  A phase with fewer runs skips the runs past its own.
    """
    for i in range(plan[3]):
        sub = plan[plan[4 + 2 * i]:plan[4 + 2 * i] + plan[5 + 2 * i]]
        if run < sub[PLAN_NRUNS]:
            call_compiled(sub[PLAN_RUNS], engine_runs, (run, sub, x, w, b, out, out2))


#: How :func:`._tasks.run_tasks` calls :func:`_phases_runs` (by address, see :mod:`._jit`).
PHASES_RUNS = declare_runs(_phases_runs)

#: Plans of :func:`_run_phases` by dtype, shapes and arguments (as in :mod:`.conv2d_direct`).
_PLANS = {}
MAX_PLANS = 256


def _run_phases(grad_output, phases, bias, grad_input):
    """Run several stride phases' direct convolutions in one parallel call.

    Each run (``prange`` iteration) computes the same images and rows of
    every phase, one phase after another: the phases read the same rows of
    ``grad_output``, and their outputs interleave in ``grad_input``'s cache
    lines (column phases alternate), so the later phases find both in the
    core's L2 instead of DRAM.  Run as separate calls, each phase streamed
    all of ``grad_output`` and ``grad_input``.

    Parameters
    ----------
    grad_output, bias, grad_input
        As for :func:`.conv2d_direct.run_direct` (``x``, ``bias``, ``out``).
    phases : list of (taps, padding, dilation, Hp, Wp, place)
        Per phase, its ``(G, Cg, Kg, Rm, Sm)`` taps (:func:`_sub_kernel`) and
        the arguments of a unit-stride :func:`.conv2d_direct.run_direct`.
    """
    # every phase's sub-kernel, one after another in one weight array
    w = np.empty(sum(p[0].size for p in phases), grad_output.dtype)
    start = 0
    subs = []
    for taps, *rest in phases:
        subs.append((_sub_kernel(taps, w[start:start + taps.size]), *rest))
        start += taps.size
    phases = subs
    C, Kg = phases[0][0].shape[:2]
    w = w.reshape(C, Kg, 1, -1)
    key = (grad_output.dtype, grad_output.shape, grad_input.shape,
           tuple((p[0].shape, *p[1:]) for p in phases))
    entry = _PLANS.get(key)
    if entry is None:
        if len(_PLANS) >= MAX_PLANS:
            _PLANS.clear()
        macs = grad_output.shape[0] * sum(p[0].size * p[3] * p[4] for p in phases)
        serial = macs < conv2d_direct.SERIAL_MACS  # the direct engine's threshold
        entry = _PLANS[key] = (run_tasks_serial if serial else run_tasks,
                               _phases_plan(grad_output.dtype, grad_output.shape, phases))
    kernel, plan = entry
    kernel(plan, grad_output, w, bias, grad_input, unused_output(grad_output.dtype))


def _phases_plan(dtype, x_shape, phases):
    """The read-only plan of :func:`_phases_runs`: one direct plan per phase, equal band heights.

    The band height is the smallest any phase would choose on its own
    (:func:`.conv2d_direct.direct_rows`), so that run ``r`` of every phase
    covers about the same rows.
    """
    N, K = x_shape[0], x_shape[1]
    rows = min(direct_rows(Hp, sub.shape[1] * (Wp + (sub.shape[3] - 1) * dil[1]),
                           (sub.shape[2] - 1) * dil[0], N * (K // sub.shape[1]))
               for sub, _, dil, Hp, Wp, _ in phases)
    subplans, woff = [], 0
    for sub, pad, dil, Hp, Wp, place in phases:
        # no prefetching of the next task's rows (see direct_plan): the phases
        # of a run read the same rows, and with the first phase prefetching
        # them the ResNet-20 downsampling layer's float64 input gradient ran
        # 0.94-0.98x; without, 1.00-1.02x
        subplans.append(direct_plan(dtype, x_shape, sub.shape, (1, 1), pad, dil, Hp, Wp, place,
                                    rows=rows, woff=woff, prefetch=False))
        woff += sub.size
    starts = np.cumsum([4 + 2 * len(phases)] + [p.size for p in subplans])
    index = [v for start, p in zip(starts, subplans) for v in (start, p.size)]
    nruns = max(p[PLAN_NRUNS] for p in subplans)
    head = np.array([PHASES_RUNS.address(dtype), nruns, 0, len(phases), *index], np.int64)
    plan = np.concatenate([head, *subplans])
    plan.flags.writeable = False
    return plan
