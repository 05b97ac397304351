"""Register-blocked dot-product micro-kernel of the packed convolution engine.

It computes a small matrix product whose reduction runs innermost over a
contiguous axis, so LLVM's loop vectoriser turns each reduction into vector
FMAs.  A 4 x 4 block keeps 16 accumulators live, loads 8 values per step and
reuses each of them 4 times.
"""


from ._jit import serial_helper


@serial_helper
def _put(out, n, k, t, p0, Q, oh0, ow0, osh, osw, value):
    """Store the result for tile pixel ``t`` (output pixel ``(p0 + t // Q, t % Q)``)."""
    a = t // Q
    q = t - a * Q
    out[n, k, oh0 + (p0 + a) * osh, ow0 + q * osw] = value


@serial_helper
def weights_times_panel(wmat, k0, Kg, panel, T, L, bias, out, n, p0, Q, oh0, ow0, osh, osw):
    """``out[n, k0+k, pixel t] = bias[k0+k] + sum_i wmat[k0+k, i] * panel[t, i]``.

    Tile pixel ``t`` is output pixel ``(p0 + t // Q, t % Q)``, stored at
    ``out[n, k, oh0 + (p0 + t // Q)*osh, ow0 + (t % Q)*osw]`` (the input
    gradient of a strided convolution writes one stride phase at a time).

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
    out : ndarray, shape (N, Kout, Ho, Wo)
    n, p0, Q, oh0, ow0, osh, osw : int
        Image, first output row of the tile, output width, output placement.

    Blocks of 4 channels x 4 pixels keep 16 accumulators; leftover channels
    use 1 x 8 blocks so that 1-3 channels (depthwise-like or small outputs)
    still keep 8 independent accumulators in flight.
    """
    zero = panel.dtype.type(0)
    t4 = T - T % 4
    t8 = T - T % 8
    k_main = Kg - Kg % 4
    for kb in range(0, k_main, 4):
        k = k0 + kb
        for t in range(0, t4, 4):
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
            for i in range(L):
                w0 = wmat[k, i]
                w1 = wmat[k + 1, i]
                w2 = wmat[k + 2, i]
                w3 = wmat[k + 3, i]
                x0 = panel[t, i]
                x1 = panel[t + 1, i]
                x2 = panel[t + 2, i]
                x3 = panel[t + 3, i]
                a00 += w0 * x0
                a01 += w0 * x1
                a02 += w0 * x2
                a03 += w0 * x3
                a10 += w1 * x0
                a11 += w1 * x1
                a12 += w1 * x2
                a13 += w1 * x3
                a20 += w2 * x0
                a21 += w2 * x1
                a22 += w2 * x2
                a23 += w2 * x3
                a30 += w3 * x0
                a31 += w3 * x1
                a32 += w3 * x2
                a33 += w3 * x3
            _put(out, n, k, t, p0, Q, oh0, ow0, osh, osw, a00 + bias[k])
            _put(out, n, k, t + 1, p0, Q, oh0, ow0, osh, osw, a01 + bias[k])
            _put(out, n, k, t + 2, p0, Q, oh0, ow0, osh, osw, a02 + bias[k])
            _put(out, n, k, t + 3, p0, Q, oh0, ow0, osh, osw, a03 + bias[k])
            _put(out, n, k + 1, t, p0, Q, oh0, ow0, osh, osw, a10 + bias[k + 1])
            _put(out, n, k + 1, t + 1, p0, Q, oh0, ow0, osh, osw, a11 + bias[k + 1])
            _put(out, n, k + 1, t + 2, p0, Q, oh0, ow0, osh, osw, a12 + bias[k + 1])
            _put(out, n, k + 1, t + 3, p0, Q, oh0, ow0, osh, osw, a13 + bias[k + 1])
            _put(out, n, k + 2, t, p0, Q, oh0, ow0, osh, osw, a20 + bias[k + 2])
            _put(out, n, k + 2, t + 1, p0, Q, oh0, ow0, osh, osw, a21 + bias[k + 2])
            _put(out, n, k + 2, t + 2, p0, Q, oh0, ow0, osh, osw, a22 + bias[k + 2])
            _put(out, n, k + 2, t + 3, p0, Q, oh0, ow0, osh, osw, a23 + bias[k + 2])
            _put(out, n, k + 3, t, p0, Q, oh0, ow0, osh, osw, a30 + bias[k + 3])
            _put(out, n, k + 3, t + 1, p0, Q, oh0, ow0, osh, osw, a31 + bias[k + 3])
            _put(out, n, k + 3, t + 2, p0, Q, oh0, ow0, osh, osw, a32 + bias[k + 3])
            _put(out, n, k + 3, t + 3, p0, Q, oh0, ow0, osh, osw, a33 + bias[k + 3])
        for t in range(t4, T):
            for k in range(k0 + kb, k0 + kb + 4):
                a = zero
                for i in range(L):
                    a += wmat[k, i] * panel[t, i]
                _put(out, n, k, t, p0, Q, oh0, ow0, osh, osw, a + bias[k])
    for k in range(k0 + k_main, k0 + Kg):
        for t in range(0, t8, 8):
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
                b0 += w0 * panel[t, i]
                b1 += w0 * panel[t + 1, i]
                b2 += w0 * panel[t + 2, i]
                b3 += w0 * panel[t + 3, i]
                b4 += w0 * panel[t + 4, i]
                b5 += w0 * panel[t + 5, i]
                b6 += w0 * panel[t + 6, i]
                b7 += w0 * panel[t + 7, i]
            _put(out, n, k, t, p0, Q, oh0, ow0, osh, osw, b0 + bias[k])
            _put(out, n, k, t + 1, p0, Q, oh0, ow0, osh, osw, b1 + bias[k])
            _put(out, n, k, t + 2, p0, Q, oh0, ow0, osh, osw, b2 + bias[k])
            _put(out, n, k, t + 3, p0, Q, oh0, ow0, osh, osw, b3 + bias[k])
            _put(out, n, k, t + 4, p0, Q, oh0, ow0, osh, osw, b4 + bias[k])
            _put(out, n, k, t + 5, p0, Q, oh0, ow0, osh, osw, b5 + bias[k])
            _put(out, n, k, t + 6, p0, Q, oh0, ow0, osh, osw, b6 + bias[k])
            _put(out, n, k, t + 7, p0, Q, oh0, ow0, osh, osw, b7 + bias[k])
        for t in range(t8, T):
            a = zero
            for i in range(L):
                a += wmat[k, i] * panel[t, i]
            _put(out, n, k, t, p0, Q, oh0, ow0, osh, osw, a + bias[k])
