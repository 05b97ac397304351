"""2-D max-pooling, forward with argmax and backward routed to the argmax.

How the forward is made fast (one thread, the suite's three shapes: 4-16x
the scalar loop over windows it replaced):

* Per output row, the windows whose columns are all in bounds (the interior)
  run in one loop over the output column ``t`` that LLVM vectorises; only the
  few windows clipped by padding or ``ceil_mode`` run the scalar
  :func:`_window`.  Stride-2 windows of 2 or 3 columns (2x2 and 3x3 CNN
  pooling) have straight-line specialisations (:func:`_run_s2`); stride 1
  keeps a running max in the output row (:func:`_running_max`); other
  strides run :func:`_window` per window.
* The update is branch-free: ``take = (v > best) | (v != v)`` then two
  selects (``v != v`` is ``isnan(v)``; ``|`` rather than ``or`` avoids a
  branch).  This is exactly PyTorch's ``v > best or isnan(v)``.
* Arrays are indexed flat with ``np.uint64`` positions, so Numba emits no
  negative-index wraparound (with it, every load became a gather), and the
  loop body creates no array views and no short-circuit ``and``/``or``: Numba
  then marks the kernel's arrays ``noalias`` and, with the helpers inlined
  into the ``prange`` body (:func:`~fastconv.kernels._jit.inline_pool_helper`),
  LLVM vectorises without runtime alias checks.
* Inputs larger than half the L3 cache are read from DRAM, where the
  hardware prefetcher alone left the f64 3x3 s2 forward at 11-18 GB/s: for
  windows of several rows of at most 2 KiB, each output row first
  prefetches the input rows of the row ``_PREFETCH_ROWS`` ahead.
* After the vector loop, the last ``block`` windows of a row are computed
  once more instead of a scalar remainder (rewriting a window is idempotent).
  ``block`` is passed in at run time: as a literal, LLVM would fully unroll
  that short loop into scalar code instead of vectorising it.
"""

import numpy as np
from numba import prange

from ._jit import inline_pool_helper, parallel_pool_kernel, prefetch, serial_pool_helper

#: Windows recomputed at the end of a row instead of a scalar remainder: the
#: vector width for float64 (and for float32 with its int64 indices) on AVX-512.
_BLOCK = 8

#: The forward prefetches the input rows of the output row this many rows
#: ahead: float64 inputs read from DRAM then ran 1.3-2x faster (float32
#: ones 0.97-1.5x; 1 to 4 rows ahead all measured alike) ...
_PREFETCH_ROWS = 2

#: ... but inputs that stay in cache gain nothing (0.95-1.03x), so inputs of
#: at most this size (half the 32 MiB L3 here) are not prefetched ...
_PREFETCH_MIN_BYTES = 16 << 20

#: ... and neither are rows longer than this, nor windows of one row (1-D
#: pooling): the hardware prefetcher follows long runs of one row, and
#: prefetching them too ran 0.85-0.92x (1.01x at 3.5 KiB rows).
_PREFETCH_MAX_ROW_BYTES = 2048


@serial_pool_helper
def _u(i):
    """``i`` (>= 0) as an unsigned index: Numba then skips negative-index wraparound."""
    return np.uint64(i)


@serial_pool_helper
def _step(v, v_index, best, best_index):
    """One scan step of PyTorch's rule: ``v`` wins if larger than ``best`` or NaN.

    Returns the new ``(best, best_index)``.
    """
    take = (v > best) | (v != v)
    return (v if take else best), (v_index if take else best_index)


@serial_pool_helper
def _window_rows(p, sh, ph, kh, dh, H):
    """In-bounds rows ``range(h_first, h_end, dh)`` of the windows of output row ``p``."""
    h0 = p * sh - ph
    h_first = h0
    while h_first < 0:
        h_first += dh
    return h_first, min(h0 + (kh - 1) * dh + 1, H)


@serial_pool_helper
def _window(x1, plane, W, h_first, h_end, dh, w_first, w_end, dw, neg_inf):
    """Max and argmax of one (possibly clipped) window: the scalar definition.

    Parameters
    ----------
    x1 : ndarray, shape (N*C*H*W,), the flattened input
    plane : int
        Offset of the window's (n, c) plane in ``x1``.
    W : int
        Input width.
    h_first, w_first : int
        First in-bounds row and column of the window (on its dilation grid).
    h_end, w_end : int
        One past the last row and column of the window, clipped to H and W.
    dh, dw : int
        Dilation.
    neg_inf : x1's dtype
        ``-inf``.

    Returns
    -------
    best : x1's dtype
    best_index : int
        ``h*W + w`` of the winner; the first in-bounds element when every
        element is -inf.
    """
    best = neg_inf
    best_index = h_first * W + w_first
    h = h_first
    while h < h_end:  # while, not range(..., step): no division per window
        w = w_first
        while w < w_end:
            best, best_index = _step(x1[_u(plane + h * W + w)], h * W + w, best, best_index)
            w += dw
        h += dh
    return best, best_index


@inline_pool_helper
def _edge_windows(x1, plane, W, h_first, h_end, dh, kw, sw, pw, dw, neg_inf, o1, i1, ob,
                  q_start, q_stop):
    """Windows ``q_start <= q < q_stop`` of a row, one :func:`_window` each.

    ``o1``, ``i1`` are the flattened outputs and ``ob`` the offset of the
    row's window 0 in them; ``kw``, ``sw``, ``pw`` are the kernel width,
    column stride and padding; the other arguments are as for :func:`_window`.
    """
    for q in range(q_start, q_stop):
        w0 = q * sw - pw
        w_first = w0
        while w_first < 0:
            w_first += dw
        best, best_index = _window(x1, plane, W, h_first, h_end, dh, w_first,
                                   min(w0 + (kw - 1) * dw + 1, W), dw, neg_inf)
        o1[_u(ob + q)] = best
        i1[_u(ob + q)] = best_index


@inline_pool_helper
def _run_s2(x1, a, rs, o1, i1, ob, base, t0, t1, rows, cols):
    """Windows ``t0 <= t < t1`` of a row: column stride 2, column dilation 1.

    Specialised for speed: ``rows`` (1 to 3) and ``cols`` (2 or 3) are
    literals at every call site, so after inlining the window is unrolled
    straight-line code and LLVM vectorises over ``t`` (stride-2 loads become
    de-interleaving shuffles).

    Parameters
    ----------
    x1 : ndarray, shape (N*C*H*W,), the flattened input
    a : int
        Offset in ``x1`` of window 0's first in-bounds element.
    rs : int
        Offset between consecutive window rows (``dh * W``), in ``x1`` and
        in the plane alike.
    o1, i1 : ndarray, shape (N*C*P*Q,), flattened output values and int64 indices
    ob : int
        Offset in ``o1``/``i1`` of window 0.
    base : int
        ``h*W + w`` of window 0's first element in its plane.
    t0, t1 : int
        Windows to compute.
    rows, cols : int
        In-bounds window rows and window columns.

    With 3 columns, column ``2t + 2`` of window ``t`` is column ``2(t+1)`` of
    window ``t + 1``: it is loaded once and carried to the next iteration in
    ``c0``/``c1``/``c2``.  LLVM vectorises that recurrence with a lane shift,
    where a third load per row would become a gather.
    """
    c0 = x1[_u(a + 2 * t0)]
    c1 = x1[_u(a + rs + 2 * t0)] if rows > 1 else c0
    c2 = x1[_u(a + 2 * rs + 2 * t0)] if rows > 2 else c0
    for t in range(t0, t1):
        w = a + 2 * t
        i = base + 2 * t
        # row 0
        best, best_index = (c0 if cols == 3 else x1[_u(w)]), i
        best, best_index = _step(x1[_u(w + 1)], i + 1, best, best_index)
        if cols == 3:
            c0 = x1[_u(w + 2)]
            best, best_index = _step(c0, i + 2, best, best_index)
        if rows > 1:
            w += rs
            i += rs
            best, best_index = _step(c1 if cols == 3 else x1[_u(w)], i, best, best_index)
            best, best_index = _step(x1[_u(w + 1)], i + 1, best, best_index)
            if cols == 3:
                c1 = x1[_u(w + 2)]
                best, best_index = _step(c1, i + 2, best, best_index)
        if rows > 2:
            w += rs
            i += rs
            best, best_index = _step(c2 if cols == 3 else x1[_u(w)], i, best, best_index)
            best, best_index = _step(x1[_u(w + 1)], i + 1, best, best_index)
            if cols == 3:
                c2 = x1[_u(w + 2)]
                best, best_index = _step(c2, i + 2, best, best_index)
        o1[_u(ob + t)] = best
        i1[_u(ob + t)] = best_index


@inline_pool_helper
def _interior_s2(x1, a, rs, o1, i1, ob, base, n, block, rows, cols):
    """Windows ``0 <= t < n`` of a row with :func:`_run_s2` (same arguments).

    The remainder of the vector loop is done by computing the last
    ``block`` windows again (idempotent) rather than one by one in scalar code.
    Both passes go through one call site: each copy of :func:`_run_s2`
    inlined at Numba-IR level cost about 0.5 s of the first forward's
    compile (7.6 s with two call sites, 6.1 s with one).
    """
    m = n - n % block
    t0, t1 = 0, m
    for _ in range(2):
        _run_s2(x1, a, rs, o1, i1, ob, base, t0, t1, rows, cols)
        t0, t1 = max(n - block, 0), (n if m < n else 0)


@inline_pool_helper
def _running_max(x1, plane, W, h_first, h_end, dh, kw, sw, dw, w_first, o1, i1, ob, n):
    """Windows ``0 <= t < n`` of a row, any geometry, rows possibly clipped.

    The output row holds the running max and argmax: every window element,
    in row-major window order, updates all ``n`` windows in an inner loop
    over ``t``, so each window still sees its elements in scan order.  Called
    with a literal ``sw == 1``, the inner loop is contiguous and vectorised.

    Parameters
    ----------
    x1 : ndarray, shape (N*C*H*W,), the flattened input
    plane : int
        Offset of the (n, c) plane in ``x1``.
    W : int
        Input width.
    h_first, h_end, dh : int
        In-bounds window rows: ``range(h_first, h_end, dh)``.
    kw, sw, dw : int
        Kernel width, column stride, column dilation.
    w_first : int
        First column of window 0; all columns of windows ``0 <= t < n`` are
        in bounds.
    o1, i1 : ndarray, shape (N*C*P*Q,), flattened output values and int64 indices
    ob : int
        Offset in ``o1``/``i1`` of window 0.
    n : int
        Number of windows.
    """
    first = h_first * W + w_first
    for t in range(n):
        o1[_u(ob + t)] = x1[_u(plane + first + t * sw)]
        i1[_u(ob + t)] = first + t * sw
    h = h_first
    while h < h_end:
        for j in range(1 if h == h_first else 0, kw):
            e = h * W + w_first + j * dw  # this element of window 0
            for t in range(n):
                best, best_index = _step(x1[_u(plane + e + t * sw)], e + t * sw,
                                         o1[_u(ob + t)], i1[_u(ob + t)])
                o1[_u(ob + t)] = best
                i1[_u(ob + t)] = best_index
        h += dh


@parallel_pool_kernel
def _forward(x, out, indices, kh, kw, sh, sw, ph, pw, dh, dw, q_lo, q_hi, special, block,
             pf_step, pf_off, pf_len):
    """Parallel body of :func:`max_pool2d_forward`; arguments as there, plus:

    Parameters
    ----------
    q_lo, q_hi : int
        Windows ``q_lo <= q < q_hi`` of every row have all columns in bounds.
    special : bool
        2x2 or 3x3 windows, column stride 2, column dilation 1: interior
        windows with all rows in bounds (and 3x3 windows with 2) run
        :func:`_run_s2`.
    block : int
        ``_BLOCK``.
    pf_step, pf_off, pf_len : int
        Before pooling output row ``p`` of a plane, prefetch ``pf_len``
        cache lines from the plane's element ``p * pf_step + pf_off``
        (``pf_len = 0``: none).

    Each prange iteration owns one (n, c) plane of ``out`` and ``indices``.
    """
    N, C, H, W = x.shape
    P = out.shape[2]
    Q = out.shape[3]
    x1 = x.reshape(N * C * H * W)
    o1 = out.reshape(N * C * P * Q)
    i1 = indices.reshape(N * C * P * Q)
    neg_inf = x.dtype.type(-np.inf)
    n = q_hi - q_lo
    line = 64 // x.itemsize
    for nc in prange(N * C):
        plane = nc * H * W
        for p in range(P):
            # prefetch (when pf_len > 0) the last sh rows of the windows of
            # output row p + _PREFETCH_ROWS; past the plane's end they are the
            # next plane's first rows, which this thread usually pools next
            e = plane + p * pf_step + pf_off
            for k in range(pf_len):
                prefetch(x1, e + k * line)
            h_first, h_end = _window_rows(p, sh, ph, kh, dh, H)
            ob = (nc * P + p) * Q
            # edge windows, clipped by padding or ceil_mode: scalar
            _edge_windows(x1, plane, W, h_first, h_end, dh, kw, sw, pw, dw, neg_inf,
                          o1, i1, ob, 0, q_lo)
            _edge_windows(x1, plane, W, h_first, h_end, dh, kw, sw, pw, dw, neg_inf,
                          o1, i1, ob, q_hi, Q)
            if n <= 0:
                continue
            w_first = q_lo * sw - pw
            a = plane + h_first * W + w_first  # window 0's first element in x1
            base = h_first * W + w_first  # ... and in its plane
            o = ob + q_lo
            rs = dh * W
            rows = (h_end - h_first + dh - 1) // dh
            if special & (rows == kh):
                # one call per literal (rows, cols): each becomes straight-line code
                if kw == 2:
                    _interior_s2(x1, a, rs, o1, i1, o, base, n, block, 2, 2)
                else:
                    _interior_s2(x1, a, rs, o1, i1, o, base, n, block, 3, 3)
            elif special & (rows == 2) & (kw == 3):  # 3x3 windows clipped by padding
                _interior_s2(x1, a, rs, o1, i1, o, base, n, block, 2, 3)
            elif sw == 1:
                _running_max(x1, plane, W, h_first, h_end, dh, kw, 1, dw, w_first,
                             o1, i1, o, n)
            else:
                # other strides: the running max would gather; one window at a time
                for t in range(n):
                    w = w_first + t * sw
                    best, best_index = _window(x1, plane, W, h_first, h_end, dh, w,
                                               w + (kw - 1) * dw + 1, dw, neg_inf)
                    o1[_u(o + t)] = best
                    i1[_u(o + t)] = best_index


def max_pool2d_forward(x, out, indices, kh, kw, sh, sw, ph, pw, dh, dw):
    """Max over each window; ``indices`` gets ``h*W + w`` of the winner.

    Follows PyTorch's CPU rule exactly: scan the window's in-bounds elements
    in row-major order, take a value when ``v > best or isnan(v)`` (so the
    first maximum wins ties and the last NaN wins), starting from
    ``best = -inf`` at the first in-bounds element (so an all -inf window
    reports its first in-bounds element).  Padding is never a candidate.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), C-contiguous, float32 or float64
    out : ndarray, shape (N, C, P, Q), C-contiguous, x's dtype; overwritten
    indices : ndarray, shape (N, C, P, Q), C-contiguous, int64; overwritten
    kh, kw, sh, sw, ph, pw, dh, dw : int
        Kernel size, stride, padding, dilation.  Every window holds at least
        one in-bounds element.

    Each prange iteration owns one (n, c) plane of ``out`` and ``indices``.
    """
    W = x.shape[3]
    Q = out.shape[3]
    # interior windows q_lo <= q < q_hi: first column >= 0 and last column < W
    q_lo = min(-(-pw // sw), Q)
    last = W - 1 - (kw - 1) * dw + pw  # q*sw <= last
    q_hi = max(min(last // sw + 1, Q) if last >= 0 else 0, q_lo)
    special = sw == 2 and dw == 1 and kh == kw and kw in (2, 3)
    H = x.shape[2]
    pf_off = ((_PREFETCH_ROWS - 1) * sh - ph + (kh - 1) * dh + 1) * W  # row p + ahead's last sh rows
    prefetching = (x.nbytes > _PREFETCH_MIN_BYTES and kh > 1
                   and W * x.itemsize <= _PREFETCH_MAX_ROW_BYTES)
    pf_len = -(-min(sh, H) * W * x.itemsize // 64) if prefetching else 0
    _forward(x, out, indices, kh, kw, sh, sw, ph, pw, dh, dw, q_lo, q_hi, special, _BLOCK,
             sh * W, pf_off, pf_len)


@parallel_pool_kernel
def max_pool2d_backward(grad_output, indices, grad_input):
    """``grad_input[n, c].flat[indices[n, c, p, q]] += grad_output[n, c, p, q]``.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, P, Q), C-contiguous, float32 or float64
    indices : ndarray, shape (N, C, P, Q), C-contiguous, int64
        Those outside ``[0, H*W)`` are skipped and counted.
    grad_input : ndarray, shape (N, C, H, W), C-contiguous, grad_output's dtype
        Overwritten entirely (its content on entry is ignored, so the caller
        may allocate it with ``np.empty``).

    Returns
    -------
    int
        How many indices were outside ``[0, H*W)``.  Counting them here
        spares the caller a pass over the indices before the call (1.4 ms of
        a 9 ms float32 backward on 8x64x224x224); the kernel reads them anyway.

    Each prange iteration owns one (n, c) plane of ``grad_input``: it zeroes
    the plane, then adds in row-major output order while the plane is in
    cache, so overlapping windows accumulate deterministically.
    """
    N, C, H, W = grad_input.shape
    HW = H * W
    PQ = grad_output.shape[2] * grad_output.shape[3]
    g1 = grad_output.reshape(N * C * PQ)
    i1 = indices.reshape(N * C * PQ)
    d1 = grad_input.reshape(N * C * HW)
    zero = grad_input.dtype.type(0)
    skipped = 0
    for nc in prange(N * C):
        plane = nc * HW
        for k in range(HW):
            d1[_u(plane + k)] = zero
        for j in range(nc * PQ, (nc + 1) * PQ):
            i = i1[_u(j)]
            if _u(i) < _u(HW):  # a negative index is huge unsigned
                d1[_u(plane + i)] += g1[_u(j)]
            else:
                skipped += 1
    return skipped
