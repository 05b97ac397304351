"""Register blocks (and one copy loop) written in LLVM IR, for the engines' micro-kernels.

Numba leaves vectorisation to LLVM's loop vectoriser, which vectorises the
innermost loop only and keeps accumulators that live across an outer loop
in memory.  These intrinsics emit the loops themselves, with explicit
AVX-512 vectors whose accumulators stay in registers for a whole reduction:

* :func:`dot_block_4x4`: 4 x 4 dot products of contiguous runs (the packed
  engine and the weight gradient), the 16 accumulators summed in one tree
  of shuffles.  The vectoriser ended each of the 16 reductions with its own
  horizontal sum and spilled registers doing so (42 spills per block).
  Measured on one core, 64 channels x 112 pixels x 576 reduction: 98 -> 106
  GFLOP/s float32 and 51 -> 55 float64, where a loop of register-only FMAs
  reaches 116 and 58.
* :func:`taps_block`: a few output channels x a few vectors of pixels over
  all taps of the direct engine, an outer product per tap.
* :func:`row_taps_block` and :func:`stencil_block`: one vector of pixels
  in each of a few output rows of a one-channel (depthwise) convolution,
  read straight from the input and stored from the registers; masked loads
  read the zero padding at a row's ends and masked stores end it at its
  last pixel.  The stencil loads each input vector once for all the rows
  that use it.
* :func:`copy_stride2`: every other element of a run, two vectors at a time
  (the direct engine's gather for column stride 2), where the vectoriser
  emitted a slow ``vgather``.
* :func:`stream_row`: a run plus a constant, written with non-temporal
  stores (the direct engine's write-back of large results), which Numba
  cannot ask for.

In the blocks, every product is one fused multiply-add (``llvm.fma``) and
the order of the sums is fixed, so results do not depend on the thread
count.  Nothing is checked at run time: callers pass offsets that lie
inside their arrays.
"""

import numba
from llvmlite import ir as llvmir
from numba.core import cgutils
from numba.extending import intrinsic

#: Bytes in one AVX-512 register: the vector width of the blocks.
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


def _is_int_tuple(t, count):
    return (isinstance(t, numba.types.UniTuple) and t.count == count
            and isinstance(t.dtype, numba.types.Integer))


_I64 = llvmir.IntType(64)


def _vector_of(context, dtype):
    """``(scalar, vector, lanes, align)``: the LLVM types of ``dtype`` and one AVX-512 register of it."""
    scalar = context.get_value_type(dtype)
    lanes = VECTOR_BYTES * 8 // dtype.bitwidth
    return scalar, llvmir.VectorType(scalar, lanes), lanes, dtype.bitwidth // 8


def _fma(builder, ty):
    """The ``llvm.fma`` intrinsic for a float or float-vector type ``ty``."""
    suffix = f"v{ty.count}" if isinstance(ty, llvmir.VectorType) else ""
    element = ty.element if isinstance(ty, llvmir.VectorType) else ty
    bits = 32 if isinstance(element, llvmir.FloatType) else 64
    return cgutils.get_or_insert_function(
        builder.module, llvmir.FunctionType(ty, [ty] * 3), f"llvm.fma.{suffix}f{bits}")


def _element(context, builder, signature, args, a, i):
    """Pointer to element ``args[i]`` (any integer type) of the 1-D array ``args[a]``."""
    tys = signature.args
    data = context.make_array(tys[a])(context, builder, args[a]).data
    return builder.gep(data, [context.cast(builder, args[i], tys[i], numba.types.int64)])


def _load_vector(builder, ptr, vector, align):
    return builder.load(builder.bitcast(ptr, vector.as_pointer()), align=align)


def _store_vector(builder, value, ptr, align):
    builder.store(value, builder.bitcast(ptr, value.type.as_pointer()), align=align)


def _counted_loop(builder, name, start, stop, init, step):
    """Emit ``for i in range(start, stop, width)`` carrying the values ``init``; their final values.

    ``step(i, values)`` emits the body and returns ``(new_values, width)``.
    With ``start >= stop`` the body is skipped and ``init`` comes out.
    """
    head = builder.block
    body = builder.append_basic_block(name)
    after = builder.append_basic_block(f"{name}.end")
    builder.cbranch(builder.icmp_signed("<", start, stop), body, after)
    builder.position_at_end(body)
    i = builder.phi(_I64)
    carried = [builder.phi(v.type) for v in init]
    new, width = step(i, carried)
    i_next = builder.add(i, _I64(width))
    i.add_incoming(start, head)
    i.add_incoming(i_next, body)
    for phi, v0, v1 in zip(carried, init, new):
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


def dot_block(na, nb):
    """An intrinsic computing the ``na`` x ``nb`` dot products of runs of two arrays.

    ``block(a, a_rows, b, b_rows, L, sums)`` writes
    ``sums[nb*r + s] = sum over i < L of a.flat[a_rows[r] + i] * b.flat[b_rows[s] + i]``
    for ``r < na``, ``s < nb``.  ``a``, ``b`` (any number of dimensions) and
    the 1-D ``sums`` (at least ``na*nb`` elements) are C-contiguous arrays of
    one float dtype; ``a_rows`` and ``b_rows`` are tuples of ``na`` and
    ``nb`` ints.  Nothing is checked: the runs must lie inside the arrays.
    Runs vector by vector (16 float32 or 8 float64 elements), then element
    by element over the last ``L % lanes``; per vector step it loads
    ``na + nb`` vectors for ``na*nb`` fused multiply-adds, and the lanes are
    summed in a fixed order, so results do not depend on the thread count.
    """
    n = na * nb

    @intrinsic
    def block(typingctx, a, a_rows, b, b_rows, L, sums):
        if not (_is_float_array(a) and _is_float_array(b, a.dtype)
                and _is_float_array(sums, a.dtype) and sums.ndim == 1
                and _is_int_tuple(a_rows, na) and _is_int_tuple(b_rows, nb)
                and isinstance(L, numba.types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            aty, arows_ty, bty, brows_ty, lty, sty = signature.args

            def offsets(tup, ty, count):
                return [context.cast(builder, builder.extract_value(tup, j), ty.dtype,
                                     numba.types.int64) for j in range(count)]

            L_ = context.cast(builder, args[4], lty, numba.types.int64)
            a_data = context.make_array(aty)(context, builder, args[0]).data
            b_data = context.make_array(bty)(context, builder, args[2]).data
            out = context.make_array(sty)(context, builder, args[5]).data
            arows = [builder.gep(a_data, [o]) for o in offsets(args[1], arows_ty, na)]
            brows = [builder.gep(b_data, [o]) for o in offsets(args[3], brows_ty, nb)]
            scalar, vector, lanes, align = _vector_of(context, aty.dtype)
            fma, fma1 = _fma(builder, vector), _fma(builder, scalar)
            full = builder.sub(L_, builder.srem(L_, _I64(lanes)))

            def vector_step(i, acc):
                av = [_load_vector(builder, builder.gep(row, [i]), vector, align) for row in arows]
                bv = [_load_vector(builder, builder.gep(row, [i]), vector, align) for row in brows]
                return [builder.call(fma, [av[r], bv[s], acc[nb * r + s]])
                        for r in range(na) for s in range(nb)], lanes

            def scalar_step(i, acc):
                av = [builder.load(builder.gep(row, [i])) for row in arows]
                bv = [builder.load(builder.gep(row, [i])) for row in brows]
                return [builder.call(fma1, [av[r], bv[s], acc[nb * r + s]])
                        for r in range(na) for s in range(nb)], 1

            vsums = _counted_loop(builder, "dot_block.vector", _I64(0), full,
                                  [llvmir.Constant(vector, None)] * n, vector_step)
            for j, v in enumerate(_lane_sums(builder, vsums, lanes)):
                if (j + 1) * lanes <= n:
                    _store_vector(builder, v, builder.gep(out, [_I64(j * lanes)]), align)
                else:  # the last, partial vector of sums: only its first lanes exist
                    for e in range(n - j * lanes):
                        builder.store(builder.extract_element(v, _I64(e)),
                                      builder.gep(out, [_I64(j * lanes + e)]))
            tails = _counted_loop(builder, "dot_block.tail", full, L_,
                                  [llvmir.Constant(scalar, 0.0)] * n, scalar_step)
            with builder.if_then(builder.icmp_signed("<", full, L_)):
                for j, t in enumerate(tails):
                    dest = builder.gep(out, [_I64(j)])
                    builder.store(builder.fadd(builder.load(dest), t), dest)
            return context.get_dummy_value()

        return numba.types.void(a, a_rows, b, b_rows, L, sums), codegen

    return block


#: 4 x 4 dot products (the packed engine, the weight gradient): 8 vector
#: loads per 16 fused multiply-adds.
dot_block_4x4 = dot_block(4, 4)


def _splat(builder, value, vector):
    """``value`` broadcast to every lane of a ``vector``-typed value."""
    i32 = llvmir.IntType(32)
    one = builder.insert_element(llvmir.Constant(vector, None), value, i32(0))
    return builder.shuffle_vector(one, llvmir.Constant(vector, None),
                                  llvmir.Constant(llvmir.VectorType(i32, vector.count),
                                                  [0] * vector.count))


def taps_block(channels, vectors, single=False):
    """An intrinsic computing ``channels`` x ``vectors`` vectors of the direct engine's sums.

    ``block(src, base, eoff, E, w1, kw, acc, a0, TA)`` writes, for ``kk <
    channels`` and ``0 <= j < vectors * lanes`` (16 float32 or 8 float64
    lanes; 1 with ``single``, for a run's last pixels where a whole vector
    would read past the end of ``src``)::

        acc[a0 + kk*TA + j] = sum over e < E of w1[kw + kk*E + e] * src[base + eoff[e] + j]

    ``src``, ``w1`` and ``acc`` are 1-D C-contiguous arrays of one float
    dtype, ``eoff`` an int64 array of ``E`` tap offsets, the rest ints.
    Per tap it loads ``vectors`` vectors of ``src`` and broadcasts
    ``channels`` weights: ``channels * vectors`` accumulators stay in
    registers over all ``E`` taps, stored once at the end.
    """

    @intrinsic
    def block(typingctx, src, base, eoff, E, w1, kw, acc, a0, TA):
        arrays = (src, w1, acc)
        if not (all(isinstance(a, numba.types.Array) and a.ndim == 1 and a.layout == "C"
                    and a.dtype == src.dtype for a in arrays)
                and isinstance(src.dtype, numba.types.Float)
                and isinstance(eoff, numba.types.Array) and eoff.dtype == numba.types.int64
                and all(isinstance(i, numba.types.Integer) for i in (base, E, kw, a0, TA))):
            return None

        def codegen(context, builder, signature, args):
            tys = signature.args

            def data(j):
                return context.make_array(tys[j])(context, builder, args[j]).data

            def int_arg(j):
                return context.cast(builder, args[j], tys[j], numba.types.int64)

            s, offs, w, out = data(0), data(2), data(4), data(6)
            base_, E_, kw_, a0_, TA_ = (int_arg(j) for j in (1, 3, 5, 7, 8))
            scalar, vector, lanes, align = _vector_of(context, tys[0].dtype)
            if single:
                vector, lanes = scalar, 1
            fma = _fma(builder, vector)
            wrows = [builder.gep(w, [builder.add(kw_, builder.mul(E_, _I64(kk)))])
                     for kk in range(channels)]
            sbase = builder.gep(s, [base_])

            def tap_step(e, acc_):
                row = builder.gep(sbase, [builder.load(builder.gep(offs, [e]))])
                xs = [_load_vector(builder, builder.gep(row, [_I64(v * lanes)]), vector, align)
                      for v in range(vectors)]
                new = []
                for kk in range(channels):
                    wk = builder.load(builder.gep(wrows[kk], [e]))
                    if not single:
                        wk = _splat(builder, wk, vector)
                    new += [builder.call(fma, [wk, x, acc_[kk * vectors + v]])
                            for v, x in enumerate(xs)]
                return new, 1

            sums = _counted_loop(builder, "taps_block.loop", _I64(0), E_,
                                 [llvmir.Constant(vector, None)] * (channels * vectors), tap_step)
            for kk in range(channels):
                for v in range(vectors):
                    at = builder.add(a0_, builder.add(builder.mul(TA_, _I64(kk)), _I64(v * lanes)))
                    _store_vector(builder, sums[kk * vectors + v], builder.gep(out, [at]), align)
            return context.get_dummy_value()

        return numba.types.void(src, base, eoff, E, w1, kw, acc, a0, TA), codegen

    return block


def _lane_mask(builder, lanes, lo, hi):
    """``<lanes x i1>``: lane ``j`` set where ``lo <= j < hi`` (``i32`` values)."""
    ivec = llvmir.VectorType(llvmir.IntType(32), lanes)
    at = llvmir.Constant(ivec, list(range(lanes)))
    return builder.and_(builder.icmp_signed(">=", at, _splat(builder, lo, ivec)),
                        builder.icmp_signed("<", at, _splat(builder, hi, ivec)))


def _masked_intrinsic(builder, vector, op):
    """The ``llvm.masked.load`` or ``llvm.masked.store`` (``op``) intrinsic for a float ``vector`` type."""
    i32 = llvmir.IntType(32)
    mask = llvmir.VectorType(llvmir.IntType(1), vector.count)
    bits = 32 if isinstance(vector.element, llvmir.FloatType) else 64
    if op == "load":
        fnty = llvmir.FunctionType(vector, [vector.as_pointer(), i32, mask, vector])
    else:
        fnty = llvmir.FunctionType(llvmir.VoidType(), [vector, vector.as_pointer(), i32, mask])
    return cgutils.get_or_insert_function(builder.module, fnty,
                                          f"llvm.masked.{op}.v{vector.count}f{bits}.p0")


def _load_input(builder, masked_load, ptr, vector, align, mask):
    """One vector from ``ptr``: all lanes, or with a ``mask``, those it sets (the others zero)."""
    ptr = builder.bitcast(ptr, vector.as_pointer())
    if mask is None:
        return builder.load(ptr, align=align)
    return builder.call(masked_load, [ptr, llvmir.IntType(32)(align), mask,
                                      llvmir.Constant(vector, None)])


def _readers(context, builder, signature, args):
    """``(data, int_arg)``: an array argument's data pointer, an integer argument as ``ty`` (int64)."""
    tys = signature.args

    def data(j):
        return context.make_array(tys[j])(context, builder, args[j]).data

    def int_arg(j, ty=numba.types.int64):
        return context.cast(builder, args[j], tys[j], ty)

    return data, int_arg


def row_taps_block(rows, masked=False):
    """An intrinsic computing one vector of pixels in each of ``rows`` output rows of a one-channel convolution.

    ``block(src, base, xstep, eoff, coff, E, w1, kw, out, a0, ostep, c0, W, n, bias, stream)``
    writes, for ``v < rows`` and ``0 <= j < n``::

        out[a0 + v*ostep + j] = sum over e < E of w1[kw + e] * src[base + v*xstep + eoff[e] + j]  + bias

    With ``masked``, the term of tap ``e`` at ``j`` is zero, and ``src`` is
    not read there, where the column ``c0 + coff[e] + j`` lies outside
    ``[0, W)`` (zero padding): masked loads, which do not touch the elements
    they leave out, so that a vector may start before its input row or end
    past it.  Without, ``coff``, ``c0`` and ``W`` are not used.  The sums
    are stored with a masked store of the first ``n`` lanes (``n`` is at
    most a vector: 16 float32 or 8 float64 lanes), so that a row may end
    inside a vector; or, where ``stream`` is nonzero, whole vectors (``n``
    is not used) with non-temporal stores, which skip the caches (see
    :func:`stream_row`): every ``out[a0 + v*ostep]`` must then lie on a
    64-byte boundary, and the caller ends with :func:`store_fence`.

    The ``rows`` vectors share each tap's weight (and mask): their sums are
    independent chains of fused multiply-adds, which hide each other's
    latency.

    ``src``, ``w1`` and ``out`` are 1-D C-contiguous arrays of one float
    dtype, ``eoff`` and ``coff`` int64 arrays of ``E`` offsets, ``bias`` a
    float, the rest ints.  Sums run over the taps in order, then add
    ``bias``, as the direct engine's write-back does.
    """

    @intrinsic
    def block(typingctx, src, base, xstep, eoff, coff, E, w1, kw, out, a0, ostep, c0, W, n, bias,
              stream):
        if not (all(_is_float_array(a, src.dtype) and a.ndim == 1 for a in (src, w1, out))
                and all(isinstance(a, numba.types.Array) and a.dtype == numba.types.int64
                        for a in (eoff, coff))
                and all(isinstance(i, numba.types.Integer)
                        for i in (base, xstep, E, kw, a0, ostep, c0, W, n, stream))
                and isinstance(bias, numba.types.Float)):
            return None

        def codegen(context, builder, signature, args):
            tys = signature.args
            data, int_arg = _readers(context, builder, signature, args)
            s, offs, cols, w, out_ = data(0), data(3), data(4), data(6), data(8)
            base_, xstep_, E_, kw_, a0_, ostep_ = (int_arg(j) for j in (1, 2, 5, 7, 9, 10))
            c0_, W_, n_ = (int_arg(j, numba.types.int32) for j in (11, 12, 13))
            _, vector, lanes, align = _vector_of(context, tys[0].dtype)
            fma = _fma(builder, vector)
            i32 = llvmir.IntType(32)
            load = _masked_intrinsic(builder, vector, "load")
            starts = [builder.gep(s, [builder.add(base_, builder.mul(xstep_, _I64(v)))])
                      for v in range(rows)]
            wrow = builder.gep(w, [kw_])

            def tap_step(e, acc_):
                off = builder.load(builder.gep(offs, [e]))
                wk = _splat(builder, builder.load(builder.gep(wrow, [e])), vector)
                if masked:
                    # columns c0 + coff[e] + j inside [0, W): j in [-col, W - col)
                    col = builder.add(c0_, builder.trunc(builder.load(builder.gep(cols, [e])), i32))
                    mask = _lane_mask(builder, lanes, builder.neg(col), builder.sub(W_, col))
                new = []
                for v in range(rows):
                    x = _load_input(builder, load, builder.gep(starts[v], [off]), vector, align,
                                    mask if masked else None)
                    new.append(builder.call(fma, [wk, x, acc_[v]]))
                return new, 1

            sums = _counted_loop(builder, "row_taps_block.loop", _I64(0), E_,
                                 [llvmir.Constant(vector, None)] * rows, tap_step)
            _store_rows(context, builder, sums, args[14], tys[14], tys[0].dtype, out_, a0_, ostep_,
                        n_, int_arg(15))
            return context.get_dummy_value()

        return (numba.types.void(src, base, xstep, eoff, coff, E, w1, kw, out, a0, ostep, c0, W, n,
                                 bias, stream), codegen)

    return block


def stencil_block(rows, R, masked=False):
    """:func:`row_taps_block` for ``rows`` consecutive output rows of an ``R``-row filter at unit row stride and dilation.

    ``block(src, base, xstep, S, dw, w1, kw, out, a0, ostep, c0, W, n, bias, stream)``
    writes, for ``v < rows`` and ``0 <= j < n``::

        out[a0 + v*ostep + j] = sum over s < S, r < R of
            w1[kw + r*S + s] * src[base + (v + r)*xstep + s*dw + j]  + bias

    Output row ``v``'s tap row ``r`` is input row ``v + r``: each vector of
    input is loaded once for all the output rows that use it, ``rows + R -
    1`` loads per ``rows * R`` fused multiply-adds instead of one per
    multiply-add (the tap list of :func:`row_taps_block` loads every tap
    again for every row).  ``masked``, ``c0``, ``W``, ``n`` and ``stream``
    as for :func:`row_taps_block`, a tap's column offset being ``s*dw``.  Sums
    run over ``s``, then ``r``, then add ``bias``.
    """

    @intrinsic
    def block(typingctx, src, base, xstep, S, dw, w1, kw, out, a0, ostep, c0, W, n, bias, stream):
        if not (all(_is_float_array(a, src.dtype) and a.ndim == 1 for a in (src, w1, out))
                and all(isinstance(i, numba.types.Integer)
                        for i in (base, xstep, S, dw, kw, a0, ostep, c0, W, n, stream))
                and isinstance(bias, numba.types.Float)):
            return None

        def codegen(context, builder, signature, args):
            tys = signature.args
            data, int_arg = _readers(context, builder, signature, args)
            s_, w, out_ = data(0), data(5), data(7)
            base_, xstep_, S_, dw_, kw_, a0_, ostep_ = (int_arg(j) for j in (1, 2, 3, 4, 6, 8, 9))
            c0_, W_, n_ = (int_arg(j, numba.types.int32) for j in (10, 11, 12))
            _, vector, lanes, align = _vector_of(context, tys[0].dtype)
            fma = _fma(builder, vector)
            i32 = llvmir.IntType(32)
            load = _masked_intrinsic(builder, vector, "load")
            starts = [builder.gep(s_, [builder.add(base_, builder.mul(xstep_, _I64(j)))])
                      for j in range(rows + R - 1)]
            wrows = [builder.gep(w, [builder.add(kw_, builder.mul(S_, _I64(r)))]) for r in range(R)]

            def column_step(si, acc_):
                off = builder.mul(si, dw_)
                wk = [_splat(builder, builder.load(builder.gep(row, [si])), vector) for row in wrows]
                if masked:
                    # columns c0 + s*dw + j inside [0, W): j in [-col, W - col)
                    col = builder.add(c0_, builder.trunc(off, i32))
                    mask = _lane_mask(builder, lanes, builder.neg(col), builder.sub(W_, col))
                new = list(acc_)
                for j in range(rows + R - 1):
                    x = _load_input(builder, load, builder.gep(starts[j], [off]), vector, align,
                                    mask if masked else None)
                    for v in range(max(0, j - R + 1), min(rows, j + 1)):
                        new[v] = builder.call(fma, [wk[j - v], x, new[v]])
                return new, 1

            sums = _counted_loop(builder, "stencil_block.loop", _I64(0), S_,
                                 [llvmir.Constant(vector, None)] * rows, column_step)
            _store_rows(context, builder, sums, args[13], tys[13], tys[0].dtype, out_, a0_, ostep_,
                        n_, int_arg(14))
            return context.get_dummy_value()

        return (numba.types.void(src, base, xstep, S, dw, w1, kw, out, a0, ostep, c0, W, n, bias,
                                 stream), codegen)

    return block


def _store_rows(context, builder, sums, bias, bias_type, dtype, out, a0, ostep, n, stream):
    """Store ``sums[v] + bias`` at ``out + a0 + v*ostep``: the first ``n`` lanes, or, where
    ``stream`` (an ``i64``) is nonzero, whole vectors non-temporally (see :func:`row_taps_block`)."""
    _, vector, lanes, align = _vector_of(context, dtype)
    i32 = llvmir.IntType(32)
    add = _splat(builder, context.cast(builder, bias, bias_type, dtype), vector)
    masked_store = _masked_intrinsic(builder, vector, "store")
    nontemporal = builder.module.add_metadata([i32(1)])
    values = [builder.fadd(total, add) for total in sums]
    ptrs = [builder.bitcast(builder.gep(out, [builder.add(a0, builder.mul(ostep, _I64(v)))]),
                            vector.as_pointer()) for v in range(len(sums))]
    with builder.if_else(builder.icmp_signed("!=", stream, _I64(0))) as (streamed, cached):
        with streamed:
            for value, ptr in zip(values, ptrs):
                builder.store(value, ptr, align=VECTOR_BYTES).set_metadata("nontemporal",
                                                                          nontemporal)
        with cached:
            first_n = _lane_mask(builder, lanes, i32(0), n)
            for value, ptr in zip(values, ptrs):
                builder.call(masked_store, [value, ptr, i32(align), first_n])


@intrinsic
def copy_stride2(typingctx, src, si, dst, di, n):
    """``dst[di + j] = src[si + 2*j]`` for ``j < n``.

    For use inside kernels: the direct engine's band gather for column
    stride 2.  A vector of the result is the even lanes of two vectors of
    ``src``; the last one (elements ``n - lanes`` to ``n``, overlapping the
    one before) takes its second half from a vector loaded one element
    earlier, so that nothing past ``src[si + 2*(n - 1)]`` is read (the end
    of the input may be there).  Runs shorter than a vector are copied
    element by element.  LLVM's vectoriser made this loop a ``vgather``,
    4.8x slower than copying element by element.  Nothing is checked.
    """
    if not (_is_float_array(src) and _is_float_array(dst, src.dtype) and src.ndim == dst.ndim == 1
            and all(isinstance(i, numba.types.Integer) for i in (si, di, n))):
        return None

    def codegen(context, builder, signature, args):
        sp, dp = (_element(context, builder, signature, args, a, i) for a, i in ((0, 1), (2, 3)))
        n_ = context.cast(builder, args[4], signature.args[4], numba.types.int64)
        _, vector, lanes, align = _vector_of(context, signature.args[0].dtype)
        i32 = llvmir.VectorType(llvmir.IntType(32), lanes)
        evens = llvmir.Constant(i32, list(range(0, 2 * lanes, 2)))
        # lo's even lanes, then the odd lanes of the vector loaded at lo + lanes - 1
        last = llvmir.Constant(i32, [*range(0, lanes, 2), *range(lanes + 1, 2 * lanes, 2)])

        def copy_vector(j, hi_shift, pattern):
            at = builder.add(j, j)
            lo = _load_vector(builder, builder.gep(sp, [at]), vector, align)
            hi = _load_vector(builder, builder.gep(sp, [builder.add(at, _I64(lanes - hi_shift))]),
                              vector, align)
            _store_vector(builder, builder.shuffle_vector(lo, hi, pattern), builder.gep(dp, [j]),
                          align)

        def vector_step(j, _):
            copy_vector(j, 0, evens)
            return [], lanes

        def scalar_step(j, _):
            builder.store(builder.load(builder.gep(sp, [builder.add(j, j)])), builder.gep(dp, [j]))
            return [], 1

        with builder.if_else(builder.icmp_signed("<", n_, _I64(lanes))) as (short, long):
            with short:
                _counted_loop(builder, "copy_stride2.scalar", _I64(0), n_, [], scalar_step)
            with long:
                final = builder.sub(n_, _I64(lanes))
                # a vector here reads up to src[si + 2*j + 2*lanes - 1]: only for j < final
                _counted_loop(builder, "copy_stride2.vector", _I64(0), final, [], vector_step)
                copy_vector(final, 1, last)
        return context.get_dummy_value()

    return numba.types.void(src, si, dst, di, n), codegen


@intrinsic
def stream_row(typingctx, src, si, add, dst, di, n):
    """``dst[di + j] = src[si + j] + add`` for ``j < n``; whole lines of ``dst`` skip the caches.

    For results too large to stay in cache (see
    :data:`.conv2d_direct.STREAM_MIN_BYTES`): a normal store first reads the
    line it writes (a read for ownership).  The 64-byte lines of ``dst``
    that the run covers whole get non-temporal stores; the partial lines at
    its ends get normal ones.  Non-temporal stores are weakly ordered: the
    caller ends with :func:`store_fence` before anything else reads ``dst``.
    """
    if not (_is_float_array(src) and _is_float_array(dst, src.dtype) and src.ndim == dst.ndim == 1
            and isinstance(add, numba.types.Float)
            and all(isinstance(i, numba.types.Integer) for i in (si, di, n))):
        return None

    def codegen(context, builder, signature, args):
        tys = signature.args
        sp, dp = (_element(context, builder, signature, args, a, i) for a, i in ((0, 1), (3, 4)))
        n_ = context.cast(builder, args[5], tys[5], numba.types.int64)
        _, vector, lanes, size = _vector_of(context, tys[0].dtype)
        add_ = context.cast(builder, args[2], tys[2], tys[0].dtype)
        misaligned = builder.and_(builder.ptrtoint(dp, _I64), _I64(VECTOR_BYTES - 1))
        head = builder.udiv(builder.and_(builder.sub(_I64(VECTOR_BYTES), misaligned),
                                         _I64(VECTOR_BYTES - 1)), _I64(size))
        odd = builder.icmp_unsigned("!=", builder.urem(misaligned, _I64(size)), _I64(0))
        head = builder.select(odd, n_, head)
        head = builder.select(builder.icmp_signed("<", head, n_), head, n_)
        body_end = builder.add(head, builder.mul(
            builder.sdiv(builder.sub(n_, head), _I64(lanes)), _I64(lanes)))
        nontemporal = builder.module.add_metadata([llvmir.IntType(32)(1)])
        splat = _splat(builder, add_, vector)

        def scalar_step(j, _):
            value = builder.fadd(builder.load(builder.gep(sp, [j])), add_)
            builder.store(value, builder.gep(dp, [j]))
            return [], 1

        def vector_step(j, _):
            value = builder.fadd(_load_vector(builder, builder.gep(sp, [j]), vector, size), splat)
            store = builder.store(value, builder.bitcast(builder.gep(dp, [j]), vector.as_pointer()),
                                  align=VECTOR_BYTES)
            store.set_metadata("nontemporal", nontemporal)
            return [], lanes

        _counted_loop(builder, "stream_row.head", _I64(0), head, [], scalar_step)
        _counted_loop(builder, "stream_row.body", head, body_end, [], vector_step)
        _counted_loop(builder, "stream_row.tail", body_end, n_, [], scalar_step)
        return context.get_dummy_value()

    return numba.types.void(src, si, add, dst, di, n), codegen


@intrinsic
def store_fence(typingctx):
    """``sfence``: non-temporal stores before it (:func:`stream_row`) complete before later ones."""
    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(
            builder.module, llvmir.FunctionType(llvmir.VoidType(), []), "llvm.x86.sse.sfence")
        builder.call(fn, [])
        return context.get_dummy_value()

    return numba.types.void(), codegen
