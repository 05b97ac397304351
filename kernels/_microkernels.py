"""Register-blocked dot-product micro-kernel of the packed convolution engine.

It computes a small matrix product whose reduction runs innermost over a
contiguous axis, so LLVM's loop vectoriser turns each reduction into vector
FMAs.  A 4 x 4 block keeps 16 accumulators live, loads 8 values per step and
reuses each of them 4 times.
"""


from ._jit import serial_helper


@serial_helper
def weights_times_panel(wmat, k0, Kg, panel, T, L, bias, out3, n, dest):
    """``out[n, k0+k, pixel t] = bias[k0+k] + sum_i wmat[k0+k, i] * panel[t, i]``.

    Tile pixel ``t`` is stored at ``out3[n, k, dest[t]]``: the caller maps
    tile pixels to flat positions in the output plane (the input gradient of
    a strided convolution writes one stride phase at a time).

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
        Flat output position of each tile pixel.

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
            out3[n, k, dest[t]] = a00 + bias[k]
            out3[n, k, dest[t + 1]] = a01 + bias[k]
            out3[n, k, dest[t + 2]] = a02 + bias[k]
            out3[n, k, dest[t + 3]] = a03 + bias[k]
            out3[n, k + 1, dest[t]] = a10 + bias[k + 1]
            out3[n, k + 1, dest[t + 1]] = a11 + bias[k + 1]
            out3[n, k + 1, dest[t + 2]] = a12 + bias[k + 1]
            out3[n, k + 1, dest[t + 3]] = a13 + bias[k + 1]
            out3[n, k + 2, dest[t]] = a20 + bias[k + 2]
            out3[n, k + 2, dest[t + 1]] = a21 + bias[k + 2]
            out3[n, k + 2, dest[t + 2]] = a22 + bias[k + 2]
            out3[n, k + 2, dest[t + 3]] = a23 + bias[k + 2]
            out3[n, k + 3, dest[t]] = a30 + bias[k + 3]
            out3[n, k + 3, dest[t + 1]] = a31 + bias[k + 3]
            out3[n, k + 3, dest[t + 2]] = a32 + bias[k + 3]
            out3[n, k + 3, dest[t + 3]] = a33 + bias[k + 3]
        for t in range(t4, T):
            for k in range(k0 + kb, k0 + kb + 4):
                a = zero
                for i in range(L):
                    a += wmat[k, i] * panel[t, i]
                out3[n, k, dest[t]] = a + bias[k]
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
            out3[n, k, dest[t]] = b0 + bias[k]
            out3[n, k, dest[t + 1]] = b1 + bias[k]
            out3[n, k, dest[t + 2]] = b2 + bias[k]
            out3[n, k, dest[t + 3]] = b3 + bias[k]
            out3[n, k, dest[t + 4]] = b4 + bias[k]
            out3[n, k, dest[t + 5]] = b5 + bias[k]
            out3[n, k, dest[t + 6]] = b6 + bias[k]
            out3[n, k, dest[t + 7]] = b7 + bias[k]
        for t in range(t8, T):
            a = zero
            for i in range(L):
                a += wmat[k, i] * panel[t, i]
            out3[n, k, dest[t]] = a + bias[k]
