"""Planner of the weight gradient: layout, bands, chunks and channel blocks (see :mod:`.conv2d_grad_weight`).

:func:`_plan` turns the problem's shapes into the arguments of
:func:`.conv2d_grad_weight.grad_weight_chunk`, using the constants and the
packing cost model below.  It depends on shapes only, never on the thread count.
"""

import functools

import numpy as np

from ._tiling import VECTOR_PAD

#: Pixels of a band (for 4 or more output channels per group): long enough
#: that the micro-kernel's horizontal sums at the end of each call are rare
#: (measured 5% faster than 1024), short enough to give every chunk bands.
BAND_PIXELS = 4096

#: Pixels of a band when the output gradient is read in place (bands then
#: stay inside an image).  Even one-image bands of 256 pixels beat packing
#: ``dy`` into longer ones on the suite's 1 x 1 shapes (memory bound).
IN_PLACE_PIXELS = 2048

#: Bytes of packed input per channel block: it stays in L2 (1 MiB) while the
#: micro-kernel sweeps every group of 4 output-gradient rows over it.
BLOCK_BYTES = 256 * 1024

#: Most chunks (partial sums) a problem is cut into.  Chunking depends on the
#: problem shape only, never on the thread count, so results are identical at
#: any thread count.
N_CHUNKS = 8

#: Fewest bands (chunks) a problem that runs in parallel is cut into.
MIN_BANDS = 4

#: Bands shorter than this spend too long in the micro-kernel's horizontal
#: sums; problems that would need them split the output channels instead.
SHORT_BAND_PIXELS = 1024

#: Input layouts (see :mod:`.conv2d_grad_weight`'s docstring), and the
#: depthwise layout of :mod:`._grad_weight_depthwise`, planned there.
DIRECT = 0
PANEL = 1
DEPTHWISE = 2

#: Arrays read in place instead of packed (see :func:`grad_weight_chunk`).
DY_IN_PLACE = 1
X_IN_PLACE = 2

#: Problems below this many multiply-adds run on the calling thread.
SERIAL_FMAS = 1 << 22


def _axis_plan(size, out, kernel, stride, dilation, pad):
    """Stride phases and shifts of one spatial axis for the direct layout.

    Tap ``r`` reads input position ``p*stride + r*dilation - pad``
    ``= stride*(p + e[r]) + a[r]``: phase ``a[r]``, phase position ``p + e[r]``.

    Returns
    -------
    phases : list of int
        Distinct ``a[r]``, sorted.
    phase_index, shift : list of int
        Per tap: index into ``phases`` and ``e[r] - min(e)`` (>= 0).
    period : int
        Positions per image along this axis (``>= out``), such that every
        phase position a real output reads outside ``[0, count)`` lands on a
        zero of this image's period or the previous one's.
    emin : int
        ``min(e)`` (<= 0).
    """
    a = [(r * dilation - pad) % stride for r in range(kernel)]
    e = [(r * dilation - pad) // stride for r in range(kernel)]
    phases = sorted(set(a))
    emin, emax = min(e), max(e)
    count = max((size - ph + stride - 1) // stride for ph in phases)
    period = max(out, out + emax, count - emin)
    return phases, [phases.index(v) for v in a], [v - emin for v in e], period, emin


#: Time to pack one input element, in multiply-adds, by item size (fitted to
#: which layout measured faster on the suite).
PACK_COST = {4: 24, 8: 16}

#: Planes per kernel row: None to choose by cost, or True/False to force
#: either layout (tests; clear ``_plan``'s cache after changing it).
ROW_TAPS = None


def _row_taps_pay(Hs, Ws, P, n_phases, R, n_col_phases, fmas_per_pixel, Cg, pack_cost):
    """Whether one plane per kernel row is cheaper than one per row stride phase.

    Planes per kernel row (input row ``p*sh + r*dh - pt`` at global row
    ``n*P + p``) pack ``R`` rows per channel instead of one per row phase,
    but need no fake rows: they pay off for small images and tall kernels.
    """
    per_phase = Hs * Ws * (fmas_per_pixel + n_phases * n_col_phases * Cg * pack_cost)
    per_row = P * Ws * (fmas_per_pixel + R * n_col_phases * Cg * pack_cost)
    return per_row < per_phase


def _channel_block(Cg, rows_per_channel, row_bytes):
    """Channels packed at a time: all, or a multiple of 4 whose buffer fits :data:`BLOCK_BYTES`."""
    fit = BLOCK_BYTES // max(1, rows_per_channel * row_bytes)
    if fit >= Cg:
        return Cg
    nblocks = -(-Cg // max(4, fit // 4 * 4))
    per_block = -(-Cg // nblocks)
    return (per_block + 3) // 4 * 4


@functools.lru_cache(maxsize=256)
def _plan(mode, x_shape, dy_shape, w_shape, itemsize, stride, padding, dilation, groups):
    """Everything :func:`grad_weight_chunk` needs besides the arrays (depends on shapes only).

    Returns
    -------
    nchunks, NTp : int
        Chunks, and taps rounded up to a multiple of 4: the partial sums have
        shape ``(nchunks, G, Kg, NTp)`` (``(1, G, Kg, NTp)`` with ``ksplit``).
    args : tuple
        ``mode, in_place, ksplit, G, cblock, xrow, off, ..., B, n_rows``; the
        arrays in it are shared between calls and never written.
    serial : bool
        Run on the calling thread (:data:`SERIAL_FMAS`).
    """
    K, Cg, R, S = w_shape
    N, _, H, W = x_shape
    P, Q = dy_shape[2], dy_shape[3]
    G = groups
    Kg = K // G
    ph_h, idx_h, shift_h, Hs, emin = _axis_plan(H, P, R, stride[0], dilation[0], padding[0])
    ph_w, idx_w, shift_w, Ws, fmin = _axis_plan(W, Q, S, stride[1], dilation[1], padding[1])
    row_taps = ROW_TAPS
    if row_taps is None:
        row_taps = _row_taps_pay(Hs, Ws, P, len(ph_h), R, len(ph_w), Kg * Cg * R * S, Cg,
                                 PACK_COST[itemsize])
    if mode == DIRECT and row_taps:
        # one plane per kernel row instead of per row phase: no fake rows
        ph_h = [r * dilation[0] - padding[0] for r in range(R)]
        idx_h, shift_h, Hs, emin = list(range(R)), [0] * R, P, 0
    serial = N * P * Q * K * Cg * R * S < SERIAL_FMAS
    in_place = 0
    if mode == PANEL:
        Hs, Ws = P, Q
    elif Hs == P and Ws == Q:
        in_place = DY_IN_PLACE
        if R == S == 1 and stride == (1, 1) and padding == (0, 0):
            in_place = X_IN_PLACE
    n_rows = (N - 1) * Hs + P
    # fewer than 4 output channels: longer bands, the micro-kernel rows are lighter
    B = max(1, min(n_rows, BAND_PIXELS * 4 // min(Kg, 4) // Ws))
    # too few pixels for MIN_BANDS long bands: split the output channels instead
    ksplit = not serial and Kg >= 8 and n_rows * Ws < MIN_BANDS * SHORT_BAND_PIXELS
    if ksplit:
        in_place = 0  # packed bands may span images: one long band
        nb = -(-n_rows // B)
    elif in_place:
        # dy (and x) are read straight from memory: shorter bands stay in L2
        B = min(B, max(1, IN_PLACE_PIXELS // Ws), P)
        nbi = -(-P // B)
        B = -(-P // nbi)  # equal bands inside an image
        nb = N * nbi
    else:
        if B >= Hs:
            B = B // Hs * Hs  # whole images: contiguous reads of each channel plane
        nb = -(-n_rows // B)
        if G == 1 and not serial:
            # at least MIN_BANDS bands, and a multiple of N_CHUNKS (or an even
            # number of chunks of one band each): every chunk gets the same work
            nb = max(nb, min(MIN_BANDS, n_rows))
            step = N_CHUNKS if nb > N_CHUNKS else 2
            B = -(-n_rows // (-(-nb // step) * step))
            nb = -(-n_rows // B)
    row_bytes = (B * Ws + VECTOR_PAD) * itemsize
    if mode == DIRECT:
        rows_per_channel = len(ph_h) * len(ph_w)
        row_bytes += (max(shift_h) * Ws + max(shift_w)) * itemsize
    else:
        rows_per_channel = R * S
    cblock = _channel_block(Cg, rows_per_channel, row_bytes)
    NTp = (Cg * R * S + 3) // 4 * 4
    c, r, s = np.meshgrid(np.arange(Cg), np.arange(R), np.arange(S), indexing="ij")
    c, r, s = c.ravel(), r.ravel(), s.ravel()
    xrow = np.zeros(NTp, np.int64)
    off = np.zeros(NTp, np.int64)
    if mode == DIRECT:
        xrow[:c.size] = ((np.array(idx_h)[r] * len(ph_w) + np.array(idx_w)[s]) * cblock
                         + c % cblock)
        off[:c.size] = np.array(shift_h)[r] * Ws + np.array(shift_w)[s]
    else:
        xrow[:c.size] = ((c % cblock) * R + r) * S + s
    if ksplit:
        nchunks = min(N_CHUNKS, -(-Kg // 4))
    else:
        nchunks = max(1, min(N_CHUNKS, nb * G))
    args = (mode, in_place, ksplit, G, cblock, xrow, off,
            np.array(ph_h, np.int64), np.array(ph_w, np.int64),
            R, S, stride[0], stride[1], dilation[0], dilation[1], padding[0], padding[1],
            Hs, Ws, emin, -fmin, int(off.max()), B, n_rows)
    return nchunks, NTp, args, serial
