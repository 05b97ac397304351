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


def _is_float_array(t, dtype=None):
    return (isinstance(t, numba.types.Array) and t.layout == "C"
            and isinstance(t.dtype, numba.types.Float) and (dtype is None or t.dtype == dtype))


def _is_four_ints(t):
    return (isinstance(t, numba.types.UniTuple) and t.count == 4
            and isinstance(t.dtype, numba.types.Integer))


@intrinsic
def dot_block_4x4(typingctx, a, a_rows, b, b_rows, L, sums):
    """``sums[4*r + s] = sum over i < L of a.flat[a_rows[r] + i] * b.flat[b_rows[s] + i]``.

    For use inside kernels: the 4 x 4 dot products of 4 runs of ``a`` with 4
    runs of ``b``, each run ``L`` contiguous elements from a flat offset.
    ``a``, ``b`` (any number of dimensions) and the 1-D ``sums`` (at least 16
    elements) are C-contiguous arrays of one float dtype; ``a_rows`` and
    ``b_rows`` are 4-tuples of ints.  Nothing is checked: the runs must lie
    inside the arrays.  Runs vector by vector (16 float32 or 8 float64
    elements), then element by element over the last ``L % lanes``; each
    product is one fused multiply-add and the lanes are summed in a fixed
    order, so results do not depend on the thread count.
    """
    if not (_is_float_array(a) and _is_float_array(b, a.dtype) and _is_float_array(sums, a.dtype)
            and sums.ndim == 1 and _is_four_ints(a_rows) and _is_four_ints(b_rows)
            and isinstance(L, numba.types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        aty, arows_ty, bty, brows_ty, lty, sty = signature.args
        i64 = llvmir.IntType(64)

        def offsets(tup, ty):
            return [context.cast(builder, builder.extract_value(tup, j), ty.dtype,
                                 numba.types.int64) for j in range(4)]

        L_ = context.cast(builder, args[4], lty, numba.types.int64)
        a_data = context.make_array(aty)(context, builder, args[0]).data
        b_data = context.make_array(bty)(context, builder, args[2]).data
        out = context.make_array(sty)(context, builder, args[5]).data
        arows = [builder.gep(a_data, [o]) for o in offsets(args[1], arows_ty)]
        brows = [builder.gep(b_data, [o]) for o in offsets(args[3], brows_ty)]
        scalar = context.get_value_type(aty.dtype)
        bits = aty.dtype.bitwidth
        lanes = VECTOR_BYTES * 8 // bits
        vector = llvmir.VectorType(scalar, lanes)
        fma = cgutils.get_or_insert_function(
            builder.module, llvmir.FunctionType(vector, [vector] * 3), f"llvm.fma.v{lanes}f{bits}")
        fma1 = cgutils.get_or_insert_function(
            builder.module, llvmir.FunctionType(scalar, [scalar] * 3), f"llvm.fma.f{bits}")
        vzero = llvmir.Constant(vector, None)
        full = builder.sub(L_, builder.srem(L_, i64(lanes)))

        def loop(name, stop, start, init, step):
            """A counted loop ``start <= i < stop`` carrying 16 accumulators; their final values."""
            head = builder.block
            body = builder.append_basic_block(f"dot_block.{name}")
            after = builder.append_basic_block(f"dot_block.{name}.end")
            builder.cbranch(builder.icmp_signed("<", start, stop), body, after)
            builder.position_at_end(body)
            i = builder.phi(i64)
            acc = [builder.phi(v.type) for v in init]
            new, width = step(i, acc)
            i_next = builder.add(i, i64(width))
            i.add_incoming(start, head)
            i.add_incoming(i_next, body)
            for phi, v0, v1 in zip(acc, init, new):
                phi.add_incoming(v0, head)
                phi.add_incoming(v1, body)
            builder.cbranch(builder.icmp_signed("<", i_next, stop), body, after)
            builder.position_at_end(after)
            final = []
            for v0, v1 in zip(init, new):
                phi = builder.phi(v0.type)
                phi.add_incoming(v0, head)
                phi.add_incoming(v1, body)
                final.append(phi)
            return final

        def vector_step(i, acc):
            def load(row):
                return builder.load(builder.bitcast(builder.gep(row, [i]), vector.as_pointer()),
                                    align=bits // 8)
            av = [load(row) for row in arows]
            bv = [load(row) for row in brows]
            return [builder.call(fma, [av[r], bv[s], acc[4 * r + s]])
                    for r in range(4) for s in range(4)], lanes

        def scalar_step(i, acc):
            av = [builder.load(builder.gep(row, [i])) for row in arows]
            bv = [builder.load(builder.gep(row, [i])) for row in brows]
            return [builder.call(fma1, [av[r], bv[s], acc[4 * r + s]])
                    for r in range(4) for s in range(4)], 1

        vsums = loop("vector", full, i64(0), [vzero] * 16, vector_step)
        for j, v in enumerate(_lane_sums(builder, vsums, lanes)):
            dest = builder.gep(out, [i64(j * lanes)])
            builder.store(v, builder.bitcast(dest, vector.as_pointer()), align=bits // 8)
        tails = loop("tail", L_, full, [llvmir.Constant(scalar, 0.0)] * 16, scalar_step)
        with builder.if_then(builder.icmp_signed("<", full, L_)):
            for j, t in enumerate(tails):
                dest = builder.gep(out, [i64(j)])
                builder.store(builder.fadd(builder.load(dest), t), dest)
        return context.get_dummy_value()

    return numba.types.void(a, a_rows, b, b_rows, L, sums), codegen


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

    Blocks of 4 channels x 4 pixels (:func:`dot_block_4x4`).  A block that
    would run past the last pixel or channel is clamped onto it: it
    recomputes and rewrites the same values instead of needing a separate
    remainder loop (which would add compile time, not speed).  With fewer
    than 4 channels (only when tests force this engine) the last channel
    repeats.
    """
    last_k = Kg - 1
    last_t = T - 1
    c = np.empty(16, dtype=panel.dtype)
    for kb in range(0, Kg, 4):
        k = k0 + min(kb, max(Kg - 4, 0))
        k1 = k + min(1, last_k)
        k2 = k + min(2, last_k)
        k3 = k + min(3, last_k)
        for tb in range(0, T, 4):
            t0 = min(tb, last_t)
            t1 = min(tb + 1, last_t)
            t2 = min(tb + 2, last_t)
            t3 = min(tb + 3, last_t)
            dot_block_4x4(wmat, (k * L, k1 * L, k2 * L, k3 * L),
                          panel, (t0 * L, t1 * L, t2 * L, t3 * L), L, c)
            for r, kr in enumerate((k, k1, k2, k3)):
                bk = bias[kr]
                out3[n, kr, dest[t0]] = c[4 * r] + bk
                out3[n, kr, dest[t1]] = c[4 * r + 1] + bk
                out3[n, kr, dest[t2]] = c[4 * r + 2] + bk
                out3[n, kr, dest[t3]] = c[4 * r + 3] + bk


#: How the packed engine's tasks call the micro-kernel (by address, see :mod:`._jit`).
WEIGHTS_TIMES_PANEL = CalledByAddress(weights_times_panel, arrays=dict(
    wmat=(2, False), panel=(2, False), bias=(1, False), out3=(3, True),
    dest=(1, False, np.int64)))
