"""Packing of input patches into per-task buffers (a band of im2col, never all of it).

A task covers output rows ``p0 <= p < p1`` of one image and one group.  Output
pixel ``(p, q)`` at tap ``(r, s)`` and channel ``c`` reads the source element
at row ``j = p*sh + r*dh - pt`` and column ``i = q*sw + s*dw - pl``.
Positions outside the source read zero: that is the zero padding.
"""

from ._jit import CalledByAddress, noalias_helper


@noalias_helper
def gather_band(src, n, c0, Cg, j0, i0, band):
    """Copy a zero-padded, channels-last window of ``src`` into ``band``.

    ``band[a, b, c] = src[n, c0 + c, j0 + a, i0 + b]`` (zero outside the
    source), for the whole of ``band``'s shape ``(rows, cols, >= Cg)``.
    Channels-last makes every tap of the panel a contiguous run of ``Cg``.
    """
    Hs = src.shape[2]
    Ws = src.shape[3]
    rows = band.shape[0]
    cols = band.shape[1]
    zero = band.dtype.type(0)
    lo = min(max(0, -i0), cols)
    hi = max(min(cols, Ws - i0), lo)
    if Cg >= 32:
        # many channels: write each pixel's channel run contiguously (reads are
        # strided but hit the same few source lines for a whole row): 1.6x faster
        for a in range(rows):
            j = j0 + a
            if j < 0 or j >= Hs:
                for b in range(cols):
                    for c in range(Cg):
                        band[a, b, c] = zero
                continue
            for b in range(lo):
                for c in range(Cg):
                    band[a, b, c] = zero
            for b in range(lo, hi):
                for c in range(Cg):
                    band[a, b, c] = src[n, c0 + c, j, i0 + b]
            for b in range(hi, cols):
                for c in range(Cg):
                    band[a, b, c] = zero
        return
    for c in range(Cg):
        for a in range(rows):
            j = j0 + a
            if j < 0 or j >= Hs:
                for b in range(cols):
                    band[a, b, c] = zero
            else:
                for b in range(lo):
                    band[a, b, c] = zero
                for b in range(lo, hi):
                    band[a, b, c] = src[n, c0 + c, j, i0 + b]
                for b in range(hi, cols):
                    band[a, b, c] = zero


@noalias_helper
def pack_rows_from_band(band, a0, rows, Q, R, S, Cg, sh, sw, dh, dw, panel):
    """``panel[t, (r*S + s)*Cg + c] = band[(a0 + a)*sh + r*dh, q*sw + s*dw, c]``, t = a*Q + q.

    Parameters
    ----------
    band : ndarray, shape (rows_in, cols_in, Cg)
        From :func:`gather_band`, whose origin is the band's first output row.
    a0, rows, Q : int
        First output row within the band, rows to pack, output width.
    panel : ndarray, shape (>= rows*Q, R*S*Cg)
        Pixel-major im2row panel; the column order matches a ``(K, R, S, C)``
        weight reshaped to ``(K, R*S*C)``.
    """
    if dw == 1:
        # band[y, x + s, c] for s < S, c < Cg is one contiguous run of S*Cg
        # elements, in panel column order: copy a kernel row at a time.
        flat = band.reshape((band.shape[0], band.shape[1] * Cg))
        run = S * Cg
        for a in range(rows):
            for q in range(Q):
                t = a * Q + q
                x0 = q * sw * Cg
                for r in range(R):
                    y = (a0 + a) * sh + r * dh
                    if run < 16:  # short runs: plain indexing beats making views
                        for j in range(run):
                            panel[t, r * run + j] = flat[y, x0 + j]
                    else:
                        src = flat[y, x0:x0 + run]
                        dst = panel[t, r * run:(r + 1) * run]
                        for j in range(run):  # range() indices: no wraparound test, vectorised
                            dst[j] = src[j]
        return
    for a in range(rows):
        for q in range(Q):
            t = a * Q + q
            for r in range(R):
                for s in range(S):
                    base = (r * S + s) * Cg
                    y = (a0 + a) * sh + r * dh
                    x = q * sw + s * dw
                    for c in range(Cg):
                        panel[t, base + c] = band[y, x, c]


#: How the packed engine's tasks call the packers (by address, see :mod:`._jit`).
GATHER_BAND = CalledByAddress(gather_band, arrays=dict(src=(4, False), band=(3, True)))
PACK_ROWS_FROM_BAND = CalledByAddress(pack_rows_from_band,
                                      arrays=dict(band=(3, False), panel=(2, True)))
