"""Strided, padded, dilated, grouped 2-D convolution (cross-correlation), NCHW."""

import numpy as np
from numba import prange

from ._jit import (
    CalledByAddress,
    address_table,
    call_compiled,
    noalias_helper,
    parallel_kernel,
)
from ._microkernels import WEIGHTS_TIMES_PANEL, weights_times_panel
from ._panels import GATHER_BAND, PACK_ROWS_FROM_BAND, gather_band, pack_rows_from_band
from ._tiling import band_rows, band_task, padded, task_rows
from .conv2d_direct import run_direct

#: The direct engine (pixels innermost) is used for reductions ``Cg*R*S`` up
#: to this length, and for any reduction when a group has fewer than
#: :data:`DIRECT_MAX_CHANNELS` output channels.  Measured on the benchmark
#: suite (float32 / float64): direct is 1.1-6x faster than the packed engine
#: for reductions of 16-150 and for 3-6 output channels, 1.15-1.2x for 32
#: channels 3x3 (288), and 0.4-0.9x for reductions of 576-1152 with 64-128
#: output channels.
DIRECT_MAX_REDUCTION = 320
DIRECT_MAX_CHANNELS = 16


@noalias_helper
def _packed_task(task, fns, src, wmat, bias, out3, G, R, S, sh, sw, dh, dw, pt, pl, B, Bp,
                 P, Q, oh0, ow0, osh, osw, Wo):
    """Task ``task`` of :func:`conv_packed`: one (image, group, band of ``B`` output rows).

    ``fns`` holds the addresses of the packers and the micro-kernel
    (:data:`_HELPERS`), ``out3`` is ``out`` with its spatial axes
    flattened; other arguments as for :func:`conv_packed`.  Allocates its
    own band and panel buffers.
    Array arguments are ``noalias`` (as they were in the ``prange`` body
    this code came from): ``out3`` must not overlap the others.
    """
    Cg = src.shape[1] // G
    Kg = out3.shape[1] // G
    L = wmat.shape[1]
    CRS = Cg * R * S
    zero = src.dtype.type(0)
    nb = (P + B - 1) // B
    rows_in = (B - 1) * sh + (R - 1) * dh + 1
    cols_in = (Q - 1) * sw + (S - 1) * dw + 1
    n, g, p0, rows = band_task(task, nb, G, B, P)
    band = np.empty((rows_in, cols_in, Cg), dtype=src.dtype)
    panel = np.empty((Bp * Q, L), dtype=src.dtype)
    for t in range(Bp * Q):  # packing writes columns < CRS; the vector padding must be zero
        for i in range(CRS, L):
            panel[t, i] = zero
    dest = np.empty(Bp * Q, dtype=np.int64)
    call_compiled(fns[0], gather_band, (src, n, g * Cg, Cg, p0 * sh - pt, -pl, band))
    for a0 in range(0, rows, Bp):
        prow = min(Bp, rows - a0)
        for a in range(prow):
            for q in range(Q):
                dest[a * Q + q] = (oh0 + (p0 + a0 + a) * osh) * Wo + ow0 + q * osw
        call_compiled(fns[1], pack_rows_from_band, (band, a0, prow, Q, R, S, Cg, sh, sw, dh, dw,
                                                    panel))
        call_compiled(fns[2], weights_times_panel, (wmat, g * Kg, Kg, panel, prow * Q, L, bias,
                                                    out3, n, dest))


#: How :func:`conv_packed` calls :func:`_packed_task` (by address, see :mod:`._jit`).
PACKED_TASK = CalledByAddress(_packed_task, arrays=dict(
    fns=(1, False, np.int64), src=(4, False), wmat=(2, False), bias=(1, False), out3=(3, True)))

#: What :func:`_packed_task` calls by address (its ``fns``, from :func:`._jit.address_table`).
_HELPERS = (GATHER_BAND, PACK_ROWS_FROM_BAND, WEIGHTS_TIMES_PANEL)


@parallel_kernel
def conv_packed(task_fn, fns, src, wmat, bias, out, G, R, S, sh, sw, dh, dw, pt, pl, B, Bp,
                P, Q, oh0, ow0, osh, osw):
    """Generic packed convolution: ``out[placed] = conv(src, w) + bias``.

    Parameters
    ----------
    task_fn : int
        ``PACKED_TASK.address(src.dtype)``: the compiled :func:`_packed_task`.
    fns : ndarray of int64
        ``address_table(src.dtype, _HELPERS)``: the addresses of its helpers.
    src : ndarray, shape (N, Cin, Hs, Ws), C-contiguous
    wmat : ndarray, shape (Kout, L), C-contiguous, L >= R * S * (Cin // G)
        Column ``(r*S + s)*Cg + c`` multiplies tap ``(r, s)`` of channel ``c``
        (a ``(K, R, S, C)`` weight reshaped); columns past ``R*S*Cg`` are zero
        padding that makes ``L`` a multiple of the vector width.
    bias : ndarray, shape (Kout,)
    out : ndarray, shape (N, Kout, Ho, Wo), C-contiguous
        Output pixel ``(p, q)`` is written at ``[oh0 + p*osh, ow0 + q*osw]``;
        nothing else is touched.
    G : int
        Groups: output channels ``g*Kg:(g+1)*Kg`` see input channels
        ``g*Cg:(g+1)*Cg``.
    R, S, sh, sw, dh, dw, pt, pl : int
        Kernel size, stride, dilation, top/left padding (negative crops).
    B, Bp : int
        Output rows per task (one channels-last band gathered per task) and
        per panel (packed and multiplied ``Bp`` rows at a time).
    P, Q, oh0, ow0, osh, osw : int
        Output size and placement in ``out``.

    Each prange iteration runs one (image, group, band of B output rows)
    task, which owns that block of the output and its own band and panel
    buffers.
    """
    N = src.shape[0]
    Wo = out.shape[3]
    out3 = out.reshape((N, out.shape[1], out.shape[2] * Wo))
    ntasks = N * G * ((P + B - 1) // B)
    for task in prange(ntasks):
        call_compiled(task_fn, _packed_task, (
            np.int64(task), fns, src, wmat, bias, out3, G, R, S, sh, sw, dh, dw, pt, pl, B, Bp,
            P, Q, oh0, ow0, osh, osw, Wo))


def weight_matrix(weight_krsc):
    """``(Kout, R, S, Cg)`` weights as a ``(Kout, L)`` matrix, zero-padded to the vector width."""
    K = weight_krsc.shape[0]
    n = weight_krsc[0].size
    wmat = np.zeros((K, padded(n)), dtype=weight_krsc.dtype)
    wmat[:, :n] = weight_krsc.reshape(K, n)
    return wmat


def run_packed(src, weight, bias, out, stride, padding, dilation, groups, P, Q,
               place=(0, 0, 1, 1)):
    """Run :func:`conv_packed` with a ``(Kout, Cg, R, S)`` weight.

    Arguments as for :func:`.conv2d_direct.run_direct` (pairs for stride,
    padding, dilation), plus ``groups``; sizes the tasks and packs the weight.
    """
    K, Cg, R, S = weight.shape
    wmat = weight_matrix(weight.transpose(0, 2, 3, 1))
    Bp = band_rows(P, Q, Cg * R * S)
    B, Bp = task_rows(P, Bp, stride[0], (R - 1) * dilation[0] + 1,
                      (Q - 1) * stride[1] + (S - 1) * dilation[1] + 1, Cg, src.shape[0] * groups)
    conv_packed(PACKED_TASK.address(src.dtype), address_table(src.dtype, _HELPERS), src, wmat,
                bias, out, groups, R, S, stride[0], stride[1], dilation[0], dilation[1],
                padding[0], padding[1], B, Bp, P, Q, *place)


def choose_engine(reduction, out_channels):
    """``"direct"`` or ``"packed"`` for a convolution with this reduction length and group width."""
    if reduction <= DIRECT_MAX_REDUCTION or out_channels < DIRECT_MAX_CHANNELS:
        return "direct"
    return "packed"


def conv2d_forward(x, weight, bias, out, stride, padding, dilation, groups, engine=None):
    """Write ``conv2d(x, weight) + bias`` into ``out``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), C-contiguous, float32 or float64
    weight : ndarray, shape (K, C // groups, R, S), C-contiguous, x's dtype
    bias : ndarray, shape (K,), x's dtype (zeros for no bias)
    out : ndarray, shape (N, K, P, Q), C-contiguous, x's dtype
    stride, dilation : (int, int)
    padding : (int, int)
        Top and left padding; bottom/right padding is implied by ``out``'s shape.
    groups : int
    engine : {None, "direct", "packed"}
        None picks by :func:`choose_engine`; tests force each engine.
    """
    K, Cg, R, S = weight.shape
    P, Q = out.shape[2], out.shape[3]
    if (engine or choose_engine(Cg * R * S, K // groups)) == "direct":
        run_direct(x, weight, bias, out, stride, padding, dilation, P, Q)
        return
    run_packed(x, weight, bias, out, stride, padding, dilation, groups, P, Q)
