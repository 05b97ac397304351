"""Weight gradient of depthwise convolutions at unit stride, one channel plane at a time.

A depthwise convolution (one input and one output channel per group) has
only ``R*S`` weights per channel, so the general layouts of
:mod:`.conv2d_grad_weight` spend most of their time packing bands of the
input and output gradient, and their micro-kernel loads one vector per
multiply-add.  Here each channel's planes are read once per image and
reused from cache:

* the image's input plane is copied into a zero-padded plane ``xb`` of
  ``Hp x Wp`` (``Hp = P + (R-1)*dh``, ``Wp = Q + (S-1)*dw``), and its output
  gradient into ``db``, with the same row length ``Wp`` (the ``Wp - Q``
  columns past each row are zero, as are ``M = (R-1)*dh*Wp`` elements
  before the plane and the elements after it);
* then ``dW[r, s] = sum_u db[M - r*dh*Wp + u] * xb[s*dw + u]`` over one
  flat range of ``u``: tap ``(r, s)`` of output pixel ``t = p*Wp + q`` reads
  ``xb[t + r*dh*Wp + s*dw]``, and shifting ``u = t + r*dh*Wp`` moves the
  row offset onto ``db``.  So a block of 3 kernel rows x 3 kernel columns
  (:func:`._blocks.dot_block`) loads 3 vectors of each plane for 9
  multiply-adds, where one tap at a time loads one vector per multiply-add.

On the benchmark suite's depthwise layer (32x64x56x56, 3 x 3, 2 threads)
this took the float64 gradient from 7.7 to 5.1 ms and the float32 one from
4.6 to 2.5 ms; copying the planes (reading both arrays from memory) is
most of what is left.

Like the direct layout of :mod:`.conv2d_grad_weight`, the zero columns and
margins multiply input values by zero: with an infinite or NaN input that
gives NaN where the definition reads nothing, and the caller then reruns the
panel layout.

A run is one channel over a fixed share of the images (:func:`depthwise_slots`
picks the shares from the shapes only), summing image by image in order into
its own partial; :func:`.conv2d_grad_weight.sum_partials` adds the partials
in order, so any thread count gives the same bits.
"""

import numpy as np

from ._blocks import dot_block
from ._grad_weight_packing import _copy_rows
from ._jit import serial_helper
from ._tasks import PLAN_HEAD, declare_runs
from ._tiling import VECTOR_PAD

#: Kernel rows x columns of one register block (:func:`._blocks.dot_block`):
#: 6 vector loads for 9 multiply-adds.  Larger kernels take several blocks;
#: a block's rows or columns past the kernel compute sums that are dropped.
BLOCK = 3

_DOT_3X3 = dot_block(BLOCK, BLOCK)

#: Fewest runs (channels x image shares) a parallel call is cut into.
MIN_RUNS = 8


def applies(x_shape, w_shape, stride, groups):
    """Whether this layout computes the weight gradient of these shapes.

    Depthwise (``groups`` equal to the input and output channels), unit
    stride, and a kernel of at least 2 x 2 (smaller kernels would waste
    most of a 3 x 3 block).
    """
    K, Cg, R, S = w_shape
    return (groups > 1 and Cg == 1 and K == groups and x_shape[1] == groups
            and stride == (1, 1) and R >= 2 and S >= 2)


def depthwise_slots(x_shape, dy_shape, w_shape, padding, dilation):
    """``(nparts, slots)``: image shares, and the plan slots of :func:`depthwise_chunk`.

    ``slots`` is ``[R, S, dh, dw, pt, pl, Wp, M, Lu, nparts]`` (see
    :func:`depthwise_chunk`); ``Lu`` is ``Hp*Wp`` rounded up to
    :data:`._tiling.VECTOR_PAD`.
    """
    N, G = x_shape[0], x_shape[1]
    P, Q = dy_shape[2], dy_shape[3]
    _, _, R, S = w_shape
    dh, dw = dilation
    Wp = Q + (S - 1) * dw
    Hp = P + (R - 1) * dh
    M = (R - 1) * dh * Wp
    Lu = -(-Hp * Wp // VECTOR_PAD) * VECTOR_PAD
    nparts = min(N, -(-MIN_RUNS // G))
    return nparts, [R, S, dh, dw, padding[0], padding[1], Wp, M, Lu, nparts]


@serial_helper
def depthwise_chunk(run, plan, x, w, b, out, out2):
    """Weight gradient of channel ``g`` over image share ``part`` (``run = part*G + g``).

    The :func:`._tasks.engine_runs` interface (``b`` and ``out2`` are not
    used; :func:`.conv2d_grad_weight.sum_partials` is the finishing step).

    Parameters
    ----------
    run : int
    plan : ndarray of int64
        The :mod:`._tasks` head, then :func:`depthwise_slots`'s slots.
    x : ndarray, shape (N, G, H, W), C-contiguous
    w : ndarray, shape (N, G, P, Q), C-contiguous
        The output gradient.
    out : ndarray, shape (nparts, G, 1, >= R*S)
        Partial sums: ``out[part, g, 0, r*S + s]`` is overwritten with the
        sum over the share's images.
    R, S, dh, dw, pt, pl, Wp, M, Lu, nparts : int (plan slots)
        Kernel size, dilation, top/left padding, the padded row length, the
        zero margin of ``db`` and the flat length of a padded plane (see
        the module docstring); images ``part*N//nparts`` to
        ``(part+1)*N//nparts`` are this share.
    """
    hd = PLAN_HEAD
    R, S, dh, dw = plan[hd], plan[hd + 1], plan[hd + 2], plan[hd + 3]
    pt, pl, Wp, M, Lu, nparts = (plan[hd + 4], plan[hd + 5], plan[hd + 6], plan[hd + 7],
                                 plan[hd + 8], plan[hd + 9])
    N, G, H, W = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    P, Q = w.shape[2], w.shape[3]
    part = run // G
    g = run - part * G
    n0 = part * N // nparts
    n1 = (part + 1) * N // nparts
    acc = out[part, g, 0]
    zero = x.dtype.type(0)
    for i in range(acc.size):
        acc[i] = zero
    # zeroed once: only the rows and columns that hold data are written per image
    xb = np.zeros(Lu + (S - 1) * dw, dtype=x.dtype)
    db = np.zeros(M + Lu, dtype=x.dtype)
    sums = np.empty(BLOCK * BLOCK, dtype=x.dtype)
    x1 = x.reshape(x.size)
    dy1 = w.reshape(w.size)
    Hp = P + (R - 1) * dh
    # input rows h and columns c that land inside the padded plane
    h_lo = max(0, -pt)
    h_hi = min(H, Hp - pt)
    c_lo = max(0, -pl)
    c_hi = min(W, Wp - pl)
    for n in range(n0, n1):
        # the two planes row by row, alternating: two streams from memory at
        # once (measured 1.07x faster than one plane after the other)
        xs = (n * G + g) * H * W + h_lo * W
        ys = (n * G + g) * P * Q
        nx = h_hi - h_lo
        for k in range(max(nx, P)):
            if k < nx:
                _copy_rows(xb, (h_lo + k + pt) * Wp + pl + c_lo, 0, x1, xs + k * W + c_lo, 0, 1,
                           c_hi - c_lo, 1)
            if k < P:
                _copy_rows(db, M + k * Wp, 0, dy1, ys + k * Q, 0, 1, Q, 1)
        for rb in range(0, R, BLOCK):
            # rows and columns of the block past the kernel repeat its last one
            ar = (M - rb * dh * Wp, M - min(rb + 1, R - 1) * dh * Wp,
                  M - min(rb + 2, R - 1) * dh * Wp)
            for sb in range(0, S, BLOCK):
                br = (sb * dw, min(sb + 1, S - 1) * dw, min(sb + 2, S - 1) * dw)
                _DOT_3X3(db, ar, xb, br, Lu, sums)
                for i in range(min(BLOCK, R - rb)):
                    for j in range(min(BLOCK, S - sb)):
                        acc[(rb + i) * S + sb + j] += sums[BLOCK * i + j]


#: How :func:`._tasks.run_tasks` calls :func:`depthwise_chunk` (by address, see :mod:`._jit`).
DEPTHWISE_CHUNK = declare_runs(depthwise_chunk)
