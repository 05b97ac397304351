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

import inspect
import types

import numba
import numba.core.compiler
import numpy as np
from llvmlite import ir as llvmir
from numba.core import cgutils
from numba.extending import intrinsic

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


# --------------------------------------------------------------------------- call by address
#
# When a kernel calls a jitted helper, Numba links the helper's code into the
# kernel and LLVM optimises and compiles all of it again: once for the
# ``prange`` body (a function of its own) and once more for the kernel.  For
# the large helpers that hold the engines' loops, that was 5.8 s of a 9.4 s
# compile.  A kernel instead receives the address of the helper's compiled
# code as an argument and calls it with :func:`call_compiled`: the helper is
# compiled once, on its own, and the kernel compiles in about 1.5 s.  The
# address is an argument (not a constant in the code) so that the on-disk
# cache stays valid across processes.


#: Declared helpers, by dispatcher (see :class:`CalledByAddress`).
_DECLARED = {}

#: The dtypes kernels run in: each declared helper has one signature per dtype.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _accepts(arg, param):
    """Whether a value of Numba type ``arg`` may be passed for a parameter of type ``param``."""
    return arg == param or (isinstance(arg, numba.types.Array) and arg.copy(readonly=True) == param)


@intrinsic
def call_compiled(typingctx, address, function, args):
    """``function(*args)``, run by calling the native code at ``address``.

    For use inside kernels.  ``address`` must come from
    :meth:`CalledByAddress.address` for ``function`` and these argument
    types; ``function`` only names the helper (its code is not linked in).
    ``args`` is a tuple whose types must match exactly one declared
    signature of ``function`` (:class:`CalledByAddress`), except that a
    mutable array may be passed for a read-only array parameter: anything
    else fails to compile (a ``TypingError``), so a kernel can never call
    the code with the wrong types.  Typing needs only the declaration: the
    helper itself compiles when its address is first asked for, so a
    kernel may hold calls of helpers that a given call never runs (and
    whose address it may then pass as 0).
    """
    if not isinstance(function, numba.types.Dispatcher) or not isinstance(args, numba.types.BaseTuple):
        return None
    declared = _DECLARED.get(function.dispatcher)
    if declared is None:
        return None
    argtys = tuple(args.types)
    matches = [s for s in map(declared.signature, DTYPES)
               if len(s.args) == len(argtys) and all(map(_accepts, argtys, s.args))]
    if len(matches) != 1:
        return None  # Numba reports "No implementation ... found for signature" with the types
    target = matches[0]

    def codegen(context, builder, signature, llargs):
        addr, _, tup = llargs
        values = [context.cast(builder, builder.extract_value(tup, i), a, p)
                  for i, (a, p) in enumerate(zip(argtys, target.args))]
        fnty = context.call_conv.get_function_type(target.return_type, target.args)
        fn = builder.inttoptr(addr, fnty.as_pointer())
        status, result = context.call_conv.call_function(
            builder, fn, target.return_type, target.args, values)
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return result

    return target.return_type(address, function, args), codegen


def _prefetch_intrinsic(name, locality, doc):
    """An intrinsic ``name(array, index)`` that prefetches ``array.flat[index]`` with ``locality``.

    ``locality`` is LLVM's: 3 keeps the line in every cache level
    (``prefetcht0``), 2 in L2 and below (``prefetcht1``).
    """
    def prefetch_line(typingctx, array, index):
        if not isinstance(array, numba.types.Array) or not isinstance(index, numba.types.Integer):
            return None

        def codegen(context, builder, signature, llargs):
            arrty, indty = signature.args
            data = context.make_array(arrty)(context, builder, llargs[0]).data
            ptr = builder.gep(data, [context.cast(builder, llargs[1], indty, numba.types.intp)])
            i32 = llvmir.IntType(32)
            fnty = llvmir.FunctionType(llvmir.VoidType(), [ptr.type, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            builder.call(fn, [ptr, i32(0), i32(locality), i32(1)])  # read, data
            return context.get_dummy_value()

        return numba.types.void(array, index), codegen

    prefetch_line.__name__ = prefetch_line.__qualname__ = name
    prefetch_line.__doc__ = doc
    return intrinsic(prefetch_line)


prefetch = _prefetch_intrinsic("prefetch", 3, """Hint the CPU to load the cache line holding ``array.flat[index]`` (no effect on results).

    For use inside kernels whose access pattern the hardware prefetcher
    does not follow.  ``array`` is C-contiguous; ``index`` needs no bounds
    (a prefetch never faults).  The line is kept in every cache level.
    """)

prefetch_l2 = _prefetch_intrinsic("prefetch_l2", 2, """:func:`prefetch` into L2, not L1 (``prefetcht1``).

    For data needed after the current working set, which a prefetch into
    L1 would evict (the direct engine's next band, :mod:`.conv2d_direct`).
    """)


class CalledByAddress:
    """A helper that kernels call through :func:`call_compiled`, with its signature per dtype.

    Parameters
    ----------
    function : numba dispatcher
        The helper (for example a :func:`noalias_helper`).  It returns nothing.
    arrays : dict of str to tuple
        ``{parameter: (ndim, writes)}`` for each array parameter, C-contiguous,
        of the kernel's dtype, or ``(ndim, writes, dtype)`` for another dtype.
        Arrays the helper does not write are declared read-only, so that
        read-only inputs need no second build.
    flags : tuple of str
        Boolean parameters.
    scalars : tuple of str
        Parameters that are scalars of the kernel's dtype.
    interface : bool
        ``function`` only names a signature that several helpers share (see
        :mod:`._tasks`): calls are typed against it, but it has no
        address and :func:`compile_declared` skips it.

    Every other parameter is an int64.
    """

    def __init__(self, function, arrays, flags=(), scalars=(), interface=False):
        self.function = function
        self._arrays = arrays
        self._flags = flags
        self._scalars = scalars
        self.interface = interface
        self._params = list(inspect.signature(function.py_func).parameters)
        self._addresses = {}
        _DECLARED[function] = self

    def signature(self, dtype):
        """The helper's Numba signature for arrays of ``dtype`` (returns ``none``)."""
        t = numba.from_dtype(dtype)
        argtypes = []
        for name in self._params:
            if name in self._arrays:
                ndim, writes, *other = self._arrays[name]
                item = numba.from_dtype(other[0]) if other else t
                argtypes.append(numba.types.Array(item, ndim, "C", readonly=not writes))
            elif name in self._flags:
                argtypes.append(numba.types.boolean)
            elif name in self._scalars:
                argtypes.append(t)
            else:
                argtypes.append(numba.types.int64)
        return numba.types.none(*argtypes)

    def address(self, dtype):
        """Compile (or load from the on-disk cache) the helper for ``dtype``; its code's address."""
        addr = self._addresses.get(dtype)
        if addr is None:
            sig = self.signature(dtype)
            self.function.compile(sig)
            cres = self.function.overloads[sig.args]
            addr = cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
            self._addresses[dtype] = addr
        return addr


_TABLES = {}


def address_table(dtype, helpers):
    """The addresses of ``helpers`` for ``dtype``, as a read-only int64 array (kept per call).

    ``helpers`` is a tuple of :class:`CalledByAddress` or None; None gives
    address 0, for a helper the kernel's call will not reach (and that
    therefore need not be compiled).
    """
    key = (dtype, helpers)
    table = _TABLES.get(key)
    if table is None:
        table = np.array([0 if h is None else h.address(dtype) for h in helpers], np.int64)
        table.flags.writeable = False
        _TABLES[key] = table
    return table


def compile_declared(dtype):
    """Compile (or load) every helper declared with :class:`CalledByAddress` for ``dtype``.

    Kernels compile a helper only when a call needs it (see
    :func:`call_compiled`); ``python -m fastconv compile`` uses this to reach
    the helpers its sample calls did not.
    """
    for helper in list(_DECLARED.values()):
        if not helper.interface:
            helper.address(np.dtype(dtype))
