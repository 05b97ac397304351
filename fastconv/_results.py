"""Memory for large results, recycled: no page faults for them in a training loop.

A NumPy array of more than about 32 MiB is fresh memory from the operating
system every time (glibc maps blocks that large on allocation and unmaps them
when they are freed): the first write to each page faults, and the kernel
zeroes the page first.  A max-pool backward of 8x64x224x224 float32 (a
103 MB result) took 11.8 ms with a fresh result and 8.3 ms writing into an
array it had written before; zero-filling a fresh array of that size alone
took 10.7 ms on one thread.

:func:`empty` hands out results of at least :data:`MIN_BYTES` from blocks
that earlier results gave back when the last view of them was garbage
collected, so a loop that drops each step's results reuses their memory.
Up to :data:`MAX_KEPT_BYTES` of unused blocks are kept, the most recently
given back; :func:`fastconv.release_memory` frees them.  Smaller results are
plain ``np.empty`` arrays: glibc already reuses their memory.
"""

import math
import threading
import weakref

import numpy as np

#: Results at least this large come from recycled blocks.
MIN_BYTES = 32 << 20

#: Most bytes of unused blocks kept for reuse: past it, the blocks given
#: back longest ago are freed first.
MAX_KEPT_BYTES = 1 << 30

#: Alignment of a result's first element (one cache line, one AVX-512 vector).
ALIGN = 64

#: Results at least this large (and below :data:`MIN_BYTES`) are plain
#: arrays, but aligned to :data:`ALIGN` too: the kernels write results this
#: large with non-temporal stores, whole cache lines only (see
#: ``fastconv.kernels.conv2d_direct.STREAM_MIN_BYTES``), and rows that
#: start on a line boundary are whole lines.
ALIGN_MIN_BYTES = 8 << 20

_lock = threading.RLock()  # reentrant: a give-back can run from the GC inside a locked region
_kept = []  # (size in bytes, block: uint8 array of size + ALIGN bytes), oldest first
_kept_bytes = 0


class _Lease:
    """The base object of one recycled result: its block goes back when the last view dies."""

    __slots__ = ("__array_interface__", "__weakref__", "_block")

    def __init__(self, block, shape, dtype):
        self._block = block
        start = block.ctypes.data
        self.__array_interface__ = {"data": (start + (-start) % ALIGN, False), "shape": shape,
                                    "typestr": dtype.str, "version": 3}


def empty(shape, dtype):
    """An uninitialised C-contiguous array, as ``np.empty``, in recycled memory if large.

    Parameters
    ----------
    shape : tuple of int
    dtype : numpy.dtype
        A dtype object (not a type such as ``np.float32``): every call of
        the public API comes here, and converting costs 0.1 us.

    Returns
    -------
    ndarray
        Writable and C-contiguous.  From :data:`ALIGN_MIN_BYTES` up, aligned
        to :data:`ALIGN` bytes.  From :data:`MIN_BYTES` up, its base is a
        private object holding a recycled block; the block is reused once no
        view of the array is left.
    """
    global _kept_bytes
    size = dtype.itemsize * math.prod(shape)
    if size < MIN_BYTES:
        if size < ALIGN_MIN_BYTES:
            return np.empty(shape, dtype)
        raw = np.empty(size + ALIGN, np.uint8)
        start = -raw.ctypes.data % ALIGN
        return raw[start:start + size].view(dtype).reshape(shape)
    shape = tuple(int(n) for n in shape)
    block = None
    with _lock:
        for i in range(len(_kept) - 1, -1, -1):  # the newest block of this size
            if _kept[i][0] == size:
                block = _kept.pop(i)[1]
                _kept_bytes -= size
                break
    if block is None:
        block = np.empty(size + ALIGN, np.uint8)
    lease = _Lease(block, shape, dtype)
    weakref.finalize(lease, _give_back, block, size).atexit = False
    return np.asarray(lease)


def _give_back(block, size):
    global _kept_bytes
    with _lock:
        _kept.append((size, block))
        _kept_bytes += size
        while _kept_bytes > MAX_KEPT_BYTES:
            _kept_bytes -= _kept.pop(0)[0]


def kept_bytes():
    """Bytes of unused blocks currently kept for reuse."""
    return _kept_bytes


def release_memory():
    """Free the memory fastconv keeps for reuse by large results (see :mod:`fastconv._results`).

    Results of at least 32 MiB come from blocks that earlier results gave
    back once they were garbage collected, up to 1 GiB of them; this frees
    those blocks.  Arrays still in use are not affected.

    Returns
    -------
    int
        Bytes freed.
    """
    global _kept_bytes
    with _lock:
        freed = _kept_bytes
        _kept.clear()
        _kept_bytes = 0
    return freed
