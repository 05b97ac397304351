"""Register-blocked dot-product micro-kernel of the packed convolution engine.

It computes a small matrix product whose reduction runs innermost over a
contiguous axis.  A 4 x 4 block keeps 16 vector accumulators live, loads 8
vectors per step and reuses each of them 4 times.

The block is written in LLVM IR (:func:`dot_block_4x4`), not left to LLVM's
loop vectoriser: the vectoriser ends each of the 16 reductions with its own
horizontal sum and spilled registers doing so (42 spills per block); here
the 16 accumulators are summed together in one tree of shuffles, 15 vector
additions for float32.  Measured on one core, 64 channels x 112 pixels x
576 reduction: 98 -> 106 GFLOP/s float32 and 51 -> 55 float64, where a loop
of register-only FMAs reaches 116 and 58.
"""

import numba
import numpy as np
from llvmlite import ir as llvmir
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import CalledByAddress, noalias_helper

#: Bytes in one AVX-512 register: the vector width of :func:`dot_block_4x4`.
VECTOR_BYTES = 64


def _lane_sums(builder, vectors, lanes):
    """Sum the lanes of each vector: ``len(vectors) / lanes`` vectors of sums, in order.

    Each step pairs neighbouring vectors and adds the first half of every
    group of lanes to its second half, halving the group size: after
    ``log2(lanes)`` steps, lane ``j`` of result ``i`` is the sum of
    ``vectors[i*lanes + j]``.
    """
    i32 = llvmir.IntType(32)
    mask_type = llvmir.VectorType(i32, lanes)
    group = lanes
    while group > 1:
        half = group // 2
        if len(vectors) % 2:
            vectors = [*vectors, llvmir.Constant(vectors[0].type, None)]  # zeros
        firsts, seconds = [], []
        for source in (0, lanes):  # lanes of the left, then of the right vector
            for start in range(source, source + lanes, group):
                firsts += range(start, start + half)
                seconds += range(start + half, start + group)
        paired = []
        for u, v in zip(vectors[::2], vectors[1::2]):
            x = builder.shuffle_vector(u, v, llvmir.Constant(mask_type, firsts))
            y = builder.shuffle_vector(u, v, llvmir.Constant(mask_type, seconds))
            paired.append(builder.fadd(x, y))
        vectors = paired
        group = half
    return vectors


def _is_matrix(t, dtype=None):
    return (isinstance(t, numba.types.Array) and t.ndim == 2 and t.layout == "C"
            and isinstance(t.dtype, numba.types.Float) and (dtype is None or t.dtype == dtype))


@intrinsic
def dot_block_4x4(typingctx, wmat, k, panel, t0, t1, t2, t3, L, sums):
    """``sums[4*r + s] = sum over i < L of wmat[k + r, i] * panel[t_s, i]``, for r, s < 4.

    For use inside kernels.  ``wmat`` and ``panel`` are C-contiguous 2-D
    arrays and ``sums`` a 1-D array of at least 16 elements, all of one
    float dtype.  ``L`` must be a positive multiple of the vector width
    (16 float32 or 8 float64 elements; :data:`._tiling.VECTOR_PAD` pads the
    reduction to it) and rows ``k .. k+3`` and ``t0 .. t3`` must exist:
    nothing is checked.  Each product is one fused multiply-add; the lanes
    are summed in a fixed order, so results do not depend on the thread count.
    """
    if not (_is_matrix(wmat) and _is_matrix(panel, wmat.dtype)
            and isinstance(sums, numba.types.Array) and sums.dtype == wmat.dtype
            and sums.ndim == 1 and sums.layout == "C"):
        return None
    ints = (k, t0, t1, t2, t3, L)
    if not all(isinstance(i, numba.types.Integer) for i in ints):
        return None

    def codegen(context, builder, signature, args):
        wty, _, pty, _, _, _, _, _, sty = signature.args
        i64 = llvmir.IntType(64)
        k_, t0_, t1_, t2_, t3_, L_ = (context.cast(builder, args[j], signature.args[j],
                                                   numba.types.int64) for j in (1, 3, 4, 5, 6, 7))
        w = context.make_array(wty)(context, builder, args[0])
        p = context.make_array(pty)(context, builder, args[2])
        out = context.make_array(sty)(context, builder, args[8])
        scalar = context.get_value_type(wty.dtype)
        lanes = VECTOR_BYTES // (wty.dtype.bitwidth // 8)
        vector = llvmir.VectorType(scalar, lanes)
        ldw = builder.extract_value(w.shape, 1)
        ldp = builder.extract_value(p.shape, 1)
        wrows = [builder.gep(w.data, [builder.mul(builder.add(k_, i64(r)), ldw)]) for r in range(4)]
        prows = [builder.gep(p.data, [builder.mul(t, ldp)]) for t in (t0_, t1_, t2_, t3_)]
        fma = cgutils.get_or_insert_function(
            builder.module, llvmir.FunctionType(vector, [vector] * 3),
            f"llvm.fma.v{lanes}f{wty.dtype.bitwidth}")
        zero = llvmir.Constant(vector, None)

        entry = builder.block
        loop = builder.append_basic_block("dot_block.loop")
        done = builder.append_basic_block("dot_block.done")
        builder.branch(loop)
        builder.position_at_end(loop)
        i = builder.phi(i64)
        acc = [builder.phi(vector) for _ in range(16)]

        def load(row):
            return builder.load(builder.bitcast(builder.gep(row, [i]), vector.as_pointer()),
                                align=wty.dtype.bitwidth // 8)

        wv = [load(row) for row in wrows]
        pv = [load(row) for row in prows]
        new = [builder.call(fma, [wv[r], pv[s], acc[4 * r + s]]) for r in range(4) for s in range(4)]
        i_next = builder.add(i, i64(lanes))
        i.add_incoming(i64(0), entry)
        i.add_incoming(i_next, loop)
        for a, n in zip(acc, new):
            a.add_incoming(zero, entry)
            a.add_incoming(n, loop)
        builder.cbranch(builder.icmp_signed("<", i_next, L_), loop, done)

        builder.position_at_end(done)
        for j, v in enumerate(_lane_sums(builder, new, lanes)):
            dest = builder.gep(out.data, [i64(j * lanes)])
            builder.store(v, builder.bitcast(dest, vector.as_pointer()),
                          align=wty.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return numba.types.void(wmat, k, panel, t0, t1, t2, t3, L, sums), codegen


@noalias_helper
def weights_times_panel(wmat, k0, Kg, panel, T, L, bias, out3, n, dest):
    """``out3[n, k0+k, dest[t]] = bias[k0+k] + sum_i wmat[k0+k, i] * panel[t, i]``.

    Parameters
    ----------
    wmat : ndarray, shape (Kout, L)
    k0, Kg : int
        First output channel and number of output channels to compute.
    panel : ndarray, shape (>= T, L)
        Pixel-major patches (see ``_panels.pack_rows_from_band``).
    T, L : int
        Pixels in the tile and reduction length.
    bias : ndarray, shape (Kout,)
    out3 : ndarray, shape (N, Kout, Ho * Wo)
    n : int
    dest : ndarray of int64, shape (>= T,)
        Flat output position of each tile pixel (the input gradient of a
        strided convolution writes one stride phase at a time).

    Blocks of 4 channels x 4 pixels keep 16 accumulators.  With fewer than 4
    channels, blocks of 1 channel x 8 pixels keep 8.  A block that would run
    past the last pixel or channel is clamped onto it: it recomputes and
    rewrites the same values instead of needing a separate remainder loop
    (which would add compile time, not speed).
    """
    zero = panel.dtype.type(0)
    last_t = T - 1
    if Kg >= 4:
        c = np.empty(16, dtype=panel.dtype)
        for kb in range(0, Kg, 4):
            k = k0 + min(kb, Kg - 4)
            for tb in range(0, T, 4):
                t0 = min(tb, last_t)
                t1 = min(tb + 1, last_t)
                t2 = min(tb + 2, last_t)
                t3 = min(tb + 3, last_t)
                dot_block_4x4(wmat, k, panel, t0, t1, t2, t3, L, c)
                out3[n, k, dest[t0]] = c[0] + bias[k]
                out3[n, k, dest[t1]] = c[1] + bias[k]
                out3[n, k, dest[t2]] = c[2] + bias[k]
                out3[n, k, dest[t3]] = c[3] + bias[k]
                out3[n, k + 1, dest[t0]] = c[4] + bias[k + 1]
                out3[n, k + 1, dest[t1]] = c[5] + bias[k + 1]
                out3[n, k + 1, dest[t2]] = c[6] + bias[k + 1]
                out3[n, k + 1, dest[t3]] = c[7] + bias[k + 1]
                out3[n, k + 2, dest[t0]] = c[8] + bias[k + 2]
                out3[n, k + 2, dest[t1]] = c[9] + bias[k + 2]
                out3[n, k + 2, dest[t2]] = c[10] + bias[k + 2]
                out3[n, k + 2, dest[t3]] = c[11] + bias[k + 2]
                out3[n, k + 3, dest[t0]] = c[12] + bias[k + 3]
                out3[n, k + 3, dest[t1]] = c[13] + bias[k + 3]
                out3[n, k + 3, dest[t2]] = c[14] + bias[k + 3]
                out3[n, k + 3, dest[t3]] = c[15] + bias[k + 3]
    else:
        # pixel blocks outside channels: a block's 8 panel rows stay in L1 for all Kg channels
        for tb in range(0, T, 8):
            for k in range(k0, k0 + Kg):
                t0 = min(tb, last_t)
                t1 = min(tb + 1, last_t)
                t2 = min(tb + 2, last_t)
                t3 = min(tb + 3, last_t)
                t4 = min(tb + 4, last_t)
                t5 = min(tb + 5, last_t)
                t6 = min(tb + 6, last_t)
                t7 = min(tb + 7, last_t)
                b0 = zero
                b1 = zero
                b2 = zero
                b3 = zero
                b4 = zero
                b5 = zero
                b6 = zero
                b7 = zero
                for i in range(L):
                    w0 = wmat[k, i]
                    b0 += w0 * panel[t0, i]
                    b1 += w0 * panel[t1, i]
                    b2 += w0 * panel[t2, i]
                    b3 += w0 * panel[t3, i]
                    b4 += w0 * panel[t4, i]
                    b5 += w0 * panel[t5, i]
                    b6 += w0 * panel[t6, i]
                    b7 += w0 * panel[t7, i]
                out3[n, k, dest[t0]] = b0 + bias[k]
                out3[n, k, dest[t1]] = b1 + bias[k]
                out3[n, k, dest[t2]] = b2 + bias[k]
                out3[n, k, dest[t3]] = b3 + bias[k]
                out3[n, k, dest[t4]] = b4 + bias[k]
                out3[n, k, dest[t5]] = b5 + bias[k]
                out3[n, k, dest[t6]] = b6 + bias[k]
                out3[n, k, dest[t7]] = b7 + bias[k]


#: How the packed engine's tasks call the micro-kernel (by address, see :mod:`._jit`).
WEIGHTS_TIMES_PANEL = CalledByAddress(weights_times_panel, arrays=dict(
    wmat=(2, False), panel=(2, False), bias=(1, False), out3=(3, True),
    dest=(1, False, np.int64)))
