"""Strided, padded, dilated, grouped 2-D convolution (cross-correlation), NCHW."""

import numpy as np

from ._jit import address_table, call_compiled, noalias_helper
from ._microkernels import WEIGHTS_TIMES_PANEL, weights_times_panel
from ._panels import GATHER_BAND, PACK_ROWS_FROM_BAND, gather_band, pack_rows_from_band
from ._tasks import declare_runs, run_tasks, unused_output, zero_bias
from ._tiling import band_rows, band_task, padded, task_rows
from .conv2d_direct import run_direct

#: The direct engine (pixels innermost) is used for reductions ``Cg*R*S`` up
#: to this length, and for any reduction when a group has fewer than
#: :data:`DIRECT_MAX_CHANNELS` output channels.  Measured on the benchmark
#: suite (float32 / float64): direct is 1.1-6x faster than the packed engine
#: for reductions of 16-150 and for 3-6 output channels, 1.15-1.2x for 32
#: channels 3x3 (288).
DIRECT_MAX_REDUCTION = 320
DIRECT_MAX_CHANNELS = 16

#: Longer reductions with unit stride also go to the direct engine when its
#: output rows have at least :data:`DIRECT_MIN_WIDTH` pixels, or when a group
#: has at least :data:`DIRECT_MIN_WIDE_CHANNELS` output channels.  Its
#: register blocks keep their sums over all taps, and at 3x3 it ran 1.0-1.17x
#: (float32) and 1.0-1.35x (float64) the packed engine's speed on 14x14 to
#: 112x112 images with 64-512 channels, 1.26-2.2x on 7x7 with 512 channels.
#: Narrow images, whose rows it once computed with discarded columns (2 of
#: 10 at 8x8), it reads in the column-shifted layout
#: (:data:`.conv2d_direct.SHIFTED_MIN_WASTE`): 8x8 with 32-64 channels
#: 1.07-1.2x, 14x14 5x5 with 64 channels 1.18-1.2x; 7x7 with 128 channels
#: 0.92x (float32) and 1.01x (float64), so narrower rows stay packed.
#: Strided layers stay packed (3x3 stride 2, 128 channels: direct 0.92-0.95x).
#: Chosen direct but no faster: 1x1 from 1024 to 256 channels on 14x14
#: (0.88-1.04x).
DIRECT_MIN_WIDTH = 8
DIRECT_MIN_WIDE_CHANNELS = 256


@noalias_helper
def _packed_task(run, plan, x, w, b, out, out2):
    """Task ``run`` of a packed convolution (the :func:`._tasks.engine_runs` interface).

    ``out[placed] = conv(x, wmat) + b`` for one (image, group, band of ``B``
    output rows) block of the output: gathers the band, then packs and
    multiplies ``Bp`` rows at a time, in its own band and panel buffers.

    Parameters
    ----------
    run : int
    plan : ndarray of int64
        :func:`packed_plan`: the :mod:`._tasks` head, the addresses of the
        packers and the micro-kernel (3-5, :data:`_HELPERS`), then ``G, R,
        S, sh, sw, dh, dw, pt, pl, B, Bp, P, Q, oh0, ow0, osh, osw``:
        groups (output channels ``g*Kg:(g+1)*Kg`` see input channels
        ``g*Cg:(g+1)*Cg``), kernel size, stride, dilation, top/left padding
        (negative crops), output rows per task and per panel, output size,
        and placement: pixel ``(p, q)`` is written at ``[oh0 + p*osh, ow0 +
        q*osw]``.
    x : ndarray, shape (N, Cin, Hs, Ws), C-contiguous
    w : ndarray, shape (Kout, L, 1, 1), C-contiguous, L >= R * S * (Cin // G)
        Column ``(r*S + s)*Cg + c`` multiplies tap ``(r, s)`` of channel ``c``
        (a ``(K, R, S, C)`` weight reshaped); columns past ``R*S*Cg`` are zero
        padding that makes ``L`` a multiple of the vector width
        (:func:`weight_matrix`).
    b : ndarray, shape (Kout,)
    out : ndarray, shape (N, Kout, Ho, Wo), C-contiguous
        Only this task's block is written.  It must not overlap the other
        arguments: they are all ``noalias``.
    out2 : ndarray
        Not used.
    """
    fns = plan[3:6]
    G, R, S, sh, sw, dh, dw = plan[6], plan[7], plan[8], plan[9], plan[10], plan[11], plan[12]
    pt, pl, B, Bp, P, Q = plan[13], plan[14], plan[15], plan[16], plan[17], plan[18]
    oh0, ow0, osh, osw = plan[19], plan[20], plan[21], plan[22]
    N = x.shape[0]
    Wo = out.shape[3]
    out3 = out.reshape((N, out.shape[1], out.shape[2] * Wo))
    wmat = w.reshape((w.shape[0], w.shape[1]))
    Cg = x.shape[1] // G
    Kg = out3.shape[1] // G
    L = wmat.shape[1]
    CRS = Cg * R * S
    zero = x.dtype.type(0)
    nb = (P + B - 1) // B
    rows_in = (B - 1) * sh + (R - 1) * dh + 1
    cols_in = (Q - 1) * sw + (S - 1) * dw + 1
    n, g, p0, rows = band_task(run, nb, G, B, P)
    band = np.empty((rows_in, cols_in, Cg), dtype=x.dtype)
    panel = np.empty((Bp * Q, L), dtype=x.dtype)
    for t in range(Bp * Q):  # packing writes columns < CRS; the vector padding must be zero
        for i in range(CRS, L):
            panel[t, i] = zero
    dest = np.empty(Bp * Q, dtype=np.int64)
    call_compiled(fns[0], gather_band, (x, n, g * Cg, Cg, p0 * sh - pt, -pl, band))
    for a0 in range(0, rows, Bp):
        prow = min(Bp, rows - a0)
        for a in range(prow):
            for q in range(Q):
                dest[a * Q + q] = (oh0 + (p0 + a0 + a) * osh) * Wo + ow0 + q * osw
        call_compiled(fns[1], pack_rows_from_band, (band, a0, prow, Q, R, S, Cg, sh, sw, dh, dw,
                                                    panel))
        call_compiled(fns[2], weights_times_panel, (wmat, g * Kg, Kg, panel, prow * Q, L, b,
                                                    out3, n, dest))


#: How :func:`._tasks.run_tasks` calls :func:`_packed_task` (by address, see :mod:`._jit`).
PACKED_TASK = declare_runs(_packed_task)

#: What :func:`_packed_task` calls by address (its ``fns``, from :func:`._jit.address_table`).
_HELPERS = (GATHER_BAND, PACK_ROWS_FROM_BAND, WEIGHTS_TIMES_PANEL)


def packed_plan(dtype, N, G, R, S, stride, padding, dilation, B, Bp, P, Q, place):
    """The read-only plan of a packed convolution (see :func:`_packed_task`): one task per run."""
    ntasks = N * G * -(-P // B)
    plan = np.array([PACKED_TASK.address(dtype), ntasks, 0, *address_table(dtype, _HELPERS),
                     G, R, S, *stride, *dilation, *padding, B, Bp, P, Q, *place], np.int64)
    plan.flags.writeable = False
    return plan


def weight_matrix(weight_krsc):
    """``(Kout, R, S, Cg)`` weights as a ``(Kout, L, 1, 1)`` matrix, zero-padded to the vector width.

    4-D because :func:`._tasks.run_tasks` takes 4-D weights; :func:`_packed_task`
    reads it as ``(Kout, L)``.
    """
    K = weight_krsc.shape[0]
    n = weight_krsc[0].size
    wmat = np.zeros((K, padded(n), 1, 1), dtype=weight_krsc.dtype)
    wmat[:, :n, 0, 0] = weight_krsc.reshape(K, n)
    return wmat


def run_packed(src, weight, bias, out, stride, padding, dilation, groups, P, Q,
               place=(0, 0, 1, 1)):
    """Run :func:`_packed_task` over all tasks, with a ``(Kout, Cg, R, S)`` weight.

    Arguments as for :func:`.conv2d_direct.run_direct` (pairs for stride,
    padding, dilation), plus ``groups``; sizes the tasks and packs the weight.
    """
    K, Cg, R, S = weight.shape
    wmat = weight_matrix(weight.transpose(0, 2, 3, 1))
    Bp = band_rows(P, Q, Cg * R * S)
    B, Bp = task_rows(P, Bp, stride[0], (R - 1) * dilation[0] + 1,
                      (Q - 1) * stride[1] + (S - 1) * dilation[1] + 1, Cg, src.shape[0] * groups)
    plan = packed_plan(src.dtype, src.shape[0], groups, R, S, tuple(stride), tuple(padding),
                       tuple(dilation), B, Bp, P, Q, tuple(place))
    run_tasks(plan, src, wmat, bias, out, unused_output(src.dtype))


def choose_engine(reduction, out_channels, unit_stride, Q):
    """``"direct"`` or ``"packed"`` for one convolution (see :data:`DIRECT_MIN_WIDTH`).

    Parameters
    ----------
    reduction : int
        ``Cg * R * S``, the products summed per output.
    out_channels : int
        Output channels per group.
    unit_stride : bool
    Q : int
        Output width.
    """
    if reduction <= DIRECT_MAX_REDUCTION or out_channels < DIRECT_MAX_CHANNELS:
        return "direct"
    if unit_stride and (Q >= DIRECT_MIN_WIDTH or out_channels >= DIRECT_MIN_WIDE_CHANNELS):
        return "direct"
    return "packed"


def conv2d_forward(x, weight, bias, out, stride, padding, dilation, groups, engine=None):
    """Write ``conv2d(x, weight) + bias`` into ``out``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), C-contiguous, float32 or float64
    weight : ndarray, shape (K, C // groups, R, S), C-contiguous, x's dtype
    bias : ndarray, shape (K,), x's dtype, or None (no bias)
    out : ndarray, shape (N, K, P, Q), C-contiguous, x's dtype
    stride, dilation : (int, int)
    padding : (int, int)
        Top and left padding; bottom/right padding is implied by ``out``'s shape.
    groups : int
    engine : {None, "direct", "packed"}
        None picks by :func:`choose_engine`; tests force each engine.
    """
    K, Cg, R, S = weight.shape
    if bias is None:
        bias = zero_bias(K, x.dtype)
    P, Q = out.shape[2], out.shape[3]
    unit = stride[0] == 1 and stride[1] == 1
    if (engine or choose_engine(Cg * R * S, K // groups, unit, Q)) == "direct":
        run_direct(x, weight, bias, out, stride, padding, dilation, P, Q)
        return
    run_packed(x, weight, bias, out, stride, padding, dilation, groups, P, Q)
