"""Peak extra memory of one call: ``python -m fastconv bench --memory``.

The figure is how far the process's peak resident memory rose during the
call, minus the bytes of the arrays the call returned: the work buffers of
the kernel (Numba allocations included, which :mod:`tracemalloc` does not
see) and of the public layer's coercions.  Linux only, since it reads
``VmHWM``/``VmRSS`` from ``/proc/self/status`` and resets the peak through
``/proc/self/clear_refs``.

Before the call, freed heap memory is handed back to the operating system
(glibc's ``malloc_trim``), so that a work buffer cannot hide in pages an
earlier call left resident, and NumPy's transparent-huge-page advice is off,
so that an array's pages are counted at their size rather than rounded to
2 MiB.  What remains is page granularity: a few KiB per thread.  The
report takes the least of three calls, dropping one-off growth.  Even so,
figures under about 1 MB move with the allocator's state (the same call has
read 0.2 MB alone and 0.9 MB within the full report): below that, they are
not evidence of a work buffer.
"""

import ctypes
import gc

import numpy as np

try:  # NumPy 2 (NumPy 1.26 has numpy._core, but without this attribute loaded)
    from numpy._core import multiarray as _multiarray
except ImportError:  # NumPy 1.24-1.25
    from numpy.core import multiarray as _multiarray

from ._results import release_memory

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def supported():
    """True where the peak can be reset and read (Linux with glibc)."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return hasattr(ctypes.CDLL(None), "malloc_trim")
    except OSError:
        return False


def _status_kib(field):
    with open(_STATUS) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in {_STATUS}")


def _nbytes(result):
    if isinstance(result, np.ndarray):
        return result.nbytes
    if isinstance(result, (tuple, list)):
        return sum(_nbytes(r) for r in result)
    return 0


def peak_extra_bytes(fn):
    """Bytes by which the resident peak rose during ``fn()``, beyond what it returned.

    Call ``fn`` once beforehand so that JIT compilation is not measured.

    Parameters
    ----------
    fn : callable
        Called with no arguments; may return an ndarray or a tuple of them.

    Returns
    -------
    int
        Peak resident growth minus the returned arrays' ``nbytes``; may be
        slightly negative when an output reuses pages that were resident.
    """
    libc = ctypes.CDLL(None)
    hugepages = _multiarray._set_madvise_hugepage(False)
    try:
        gc.collect()
        release_memory()  # a recycled result would not raise the peak (see _results)
        libc.malloc_trim(0)
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")  # VmHWM := VmRSS
        before = _status_kib("VmRSS")
        result = fn()
        peak = _status_kib("VmHWM")
        return (peak - before) * 1024 - _nbytes(result)
    finally:
        _multiarray._set_madvise_hugepage(hugepages)


def input_bytes(case, pass_, dtype):
    """Bytes of the arrays ``pass_`` of ``case`` takes as input."""
    item = np.dtype(dtype).itemsize
    x, y = int(np.prod(case.input_shape)), int(np.prod(case.output_shape))
    if pass_ == "pool_forward":
        return x * item
    if pass_ == "pool_backward":
        return y * (item + 8)  # grad_output and int64 indices
    w = int(np.prod(case.weight_shape))
    return item * {"forward": x + w, "grad_input": y + w, "grad_weight": x + y}[pass_]


def report(jobs, impls):
    """Lines of the ``--memory`` table: one row per job, one column pair per impl.

    Parameters
    ----------
    jobs : list of (kind, case, dtype, pass)
        As built by ``fastconv._bench``.
    impls : sequence of str
        ``"fastconv"`` and/or ``"im2col"`` (convolutions only).
    """
    from . import _bench

    head = f"{'shape':<20}{'pass':<14}{'dtype':<9}{'inputs':>10}"
    head += "".join(f"{impl + ' extra':>17}{'/ inputs':>10}" for impl in impls)
    lines = ["== peak extra memory per call: resident peak growth minus the returned arrays ==",
             head]
    for kind, case, dtype, pass_ in jobs:
        if kind == "example":
            continue
        inputs = input_bytes(case, pass_, dtype)
        row = f"{case.id:<20}{pass_:<14}{dtype:<9}{inputs / 1e6:>7.2f} MB"
        for impl in impls:
            if impl == "im2col" and kind == "pool":
                row += f"{'-':>17}{'-':>10}"
                continue
            fn = _bench._numpy_call(_bench._implementation(impl), case, pass_, dtype)
            fn()  # compile, and let the allocator settle
            # a work buffer shows in every call; the least of three drops one-off
            # growth (a thread's first malloc arena, an interpreter cache)
            extra = min(peak_extra_bytes(fn) for _ in range(3))
            row += f"{extra / 1e6:>14.2f} MB{100 * extra / inputs:>9.1f}%"
        lines.append(row)
    return lines
