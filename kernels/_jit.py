"""The one place where fastconv's Numba compilation options are defined.

Every kernel in ``fastconv.kernels`` is decorated with one of the decorators
below; no other module passes options to ``numba.njit``.

Why these options:

* ``fastmath``: ``contract`` lets LLVM emit fused multiply-adds and
  ``reassoc`` lets it vectorise reductions (measured 11 -> 103 GFLOP/s on one
  kernel).  ``nnan``/``ninf`` stay off everywhere: a NaN or inf in the input
  must propagate to the output exactly as in NumPy and PyTorch, and max-pool
  compares against NaN explicitly.  Pooling kernels use no fast-math at all.
* ``cache=True``: compiling one parallel signature costs about 1.5 s; the
  on-disk cache makes later processes load it instead.
* ``error_model="numpy"``: no Python-style ZeroDivisionError checks inside
  hot loops (division only appears in index arithmetic on validated sizes).
* ``boundscheck=False``: kernels receive validated, contiguous arrays.
"""

import types

import numba
import numba.core.compiler

#: Fast-math flags for arithmetic kernels (convolutions and their gradients).
ARITH_FASTMATH = frozenset({"contract", "reassoc", "arcp", "nsz", "afn"})

#: Pooling compares values, and ``x > maxval or isnan(x)`` must see NaN.
POOL_FASTMATH = False

_COMMON = dict(cache=True, error_model="numpy", boundscheck=False, nogil=True)


def parallel_kernel(fn):
    """Compile ``fn`` as a parallel arithmetic kernel (uses ``prange``)."""
    return numba.njit(parallel=True, fastmath=set(ARITH_FASTMATH), **_COMMON)(fn)


def serial_variant(kernel, name):
    """A serial build of the parallel ``kernel`` (its ``prange`` runs as ``range``).

    For problems so small that starting the thread pool (about 2.6 us on
    this machine) costs more than the work.  ``kernel``'s Python function
    is copied under ``name`` first: Numba's on-disk cache is keyed by the
    function's name and source line, and two builds of one function would
    share (and overwrite) one cache entry.  It compiles on its first call.
    """
    fn = kernel.py_func
    code = fn.__code__.replace(co_name=name, co_qualname=name)
    copy = types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    copy.__doc__ = fn.__doc__
    copy.__module__ = fn.__module__
    return numba.njit(parallel=False, fastmath=set(ARITH_FASTMATH), **_COMMON)(copy)


def serial_helper(fn):
    """Compile ``fn`` as a serial arithmetic helper called from kernels."""
    return numba.njit(
        parallel=False, fastmath=set(ARITH_FASTMATH), **_COMMON
    )(fn)


def inline_helper(fn):
    """Compile ``fn`` as an arithmetic helper inlined into its caller at Numba-IR level.

    Used for helpers whose loops must stay inside a ``prange`` body, where the
    kernel's arrays are ``noalias`` (see :func:`inline_pool_helper`).
    """
    return numba.njit(inline="always", parallel=False, fastmath=set(ARITH_FASTMATH), **_COMMON)(fn)


def parallel_pool_kernel(fn):
    """Compile ``fn`` as a parallel pooling kernel (no fast-math)."""
    return numba.njit(parallel=True, fastmath=POOL_FASTMATH, **_COMMON)(fn)


def serial_pool_helper(fn):
    """Compile ``fn`` as a small serial pooling helper (no fast-math); LLVM inlines it."""
    return numba.njit(parallel=False, fastmath=POOL_FASTMATH, **_COMMON)(fn)


def inline_pool_helper(fn):
    """Compile ``fn`` as a pooling helper inlined into its caller (no fast-math).

    ``inline="always"`` inlines at Numba-IR level, so a helper called inside a
    ``prange`` body becomes part of the parallel loop body: LLVM then sees the
    kernel's array arguments, which Numba marks ``noalias`` when the loop body
    creates no views, and vectorises without runtime alias checks (which made
    loops shorter than 32 iterations run scalar).  Numba-IR inlining is slow
    to compile: keep it for helpers that hold loops, and use
    :func:`serial_pool_helper` for small leaf functions.
    """
    return numba.njit(inline="always", parallel=False, fastmath=POOL_FASTMATH, **_COMMON)(fn)


class _NoAliasCompiler(numba.core.compiler.Compiler):
    """Numba's default pipeline, with the compiled function's pointer arguments ``noalias``.

    Numba sets this flag itself on the body of a ``prange`` loop that takes
    no views; ``pipeline_class`` is Numba's documented hook for a custom
    pipeline, and ``Flags.noalias`` the flag that parfor lowering uses.
    """

    def define_pipelines(self):
        self.state.flags.noalias = True
        return super().define_pipelines()


def noalias_helper(fn):
    """Compile ``fn`` as a serial arithmetic helper whose array arguments are ``noalias``.

    The data pointer of every array argument is marked ``noalias`` (as in a
    ``prange`` body), so LLVM vectorises loops over them without runtime
    alias checks: the caller must never pass an array that overlaps another
    argument it writes to.  A parallel kernel whose ``prange`` body only
    calls such a helper compiles faster than one whose body holds the loops
    inlined (see :mod:`.conv2d_direct`).
    """
    return numba.njit(parallel=False, fastmath=set(ARITH_FASTMATH),
                      pipeline_class=_NoAliasCompiler, **_COMMON)(fn)
