"""Argument validation and coercion for the public API: the only place it happens.

Every public function passes its arguments through these helpers before any
kernel runs.  Errors name the argument, what it got and what is allowed.
"""

import functools
import numbers
import operator
from dataclasses import dataclass

import numpy as np

ACCEPTED_DTYPES = "float32 or float64 (integer and bool inputs are promoted to float64)"
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


# --------------------------------------------------------------------------- arrays


def as_array(name, value):
    """Return ``value`` as an ndarray of a numeric kind fastconv accepts.

    Raises TypeError for float16, complex, object, string and other dtypes.
    Integer and bool arrays are returned unchanged here and promoted by
    :func:`result_dtype`.
    """
    arr = value if value.__class__ is np.ndarray else np.asarray(value)
    dt = arr.dtype
    if dt == _F32 or dt == _F64 or dt.kind in "biu":
        return arr
    raise TypeError(
        f"{name} has dtype {arr.dtype}; fastconv accepts {ACCEPTED_DTYPES}. "
        f"Convert it with {name}.astype(np.float32) or .astype(np.float64)."
    )


def result_dtype(*arrays):
    """The dtype a computation on ``arrays`` runs in: float32 or float64.

    NumPy promotion among the float arrays; integer and bool arrays count as
    float64.  So float32 with float32 stays float32, any float64 or integer
    operand makes it float64.
    """
    for a in arrays:
        if a.dtype != _F32:
            return _F64
    return _F32


def as_kernel_array(arr, dtype):
    """C-contiguous array of ``dtype`` for a kernel; copies only when needed.

    The caller's array is never modified: kernels only read their inputs.
    """
    if arr.dtype == dtype and arr.flags.c_contiguous:
        return arr
    return np.ascontiguousarray(arr, dtype=dtype)


def check_out(name, out, shape, dtype, inputs):
    """Validate a caller-supplied output array, which a kernel will overwrite.

    Parameters
    ----------
    name : str
        The argument's name in error messages (``"out"``, ``"out[1]"``).
    out : object
        Must be an ndarray of exactly ``shape`` and ``dtype`` (fastconv never
        casts into it), C-contiguous and writeable.
    shape : tuple of int
    dtype : numpy dtype
    inputs : dict of str to ndarray
        The arrays the kernel reads (and any other output it writes): ``out``
        may not share memory with any of them, since the kernel would read
        what it has already overwritten.

    Returns
    -------
    ndarray
        ``out`` itself.
    """
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a NumPy ndarray; got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {out.dtype}; this call writes {np.dtype(dtype)} and "
            "fastconv never casts into an output array"
        )
    if out.shape != tuple(shape):
        raise ValueError(f"{name} has shape {out.shape}; the result has shape {tuple(shape)}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (np.empty(shape, dtype) is)")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    for other, arr in inputs.items():
        if np.may_share_memory(out, arr):
            raise ValueError(f"{name} may share memory with {other}; pass a separate array")
    return out


def check_ndim(name, arr, ndim, layout):
    if arr.ndim != ndim:
        raise ValueError(
            f"{name} must be a {ndim}-D array of shape {layout}; got {arr.ndim}-D "
            f"array of shape {arr.shape}"
        )


def check_nonempty(name, arr, layout):
    if arr.size == 0:
        raise ValueError(
            f"{name} must have every dimension >= 1 ({layout}); got shape {arr.shape}"
        )


# --------------------------------------------------------------------------- integers


def as_int(name, value):
    """A Python int from an integer scalar; bool, float and other types raise TypeError."""
    if type(value) is int:  # the usual case, without the ABC check below (~0.5 us a call)
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {value!r} of type {type(value).__name__}")
    return operator.index(value)


def thread_count(n, limit):
    """``n`` as an int from 1 to ``limit`` (the size of Numba's thread pool)."""
    n = as_int("n", n)
    if not 1 <= n <= limit:
        raise ValueError(f"n must be between 1 and {limit} (NUMBA_NUM_THREADS); got {n}")
    return n


def as_tuple(name, value, n, minimum):
    """Normalise an int or a length-``n`` sequence of ints to a tuple of ``n`` ints >= minimum."""
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(
                f"{name} must be an int or a sequence of {n} ints; got {value!r}"
            )
        items = tuple(as_int(name, v) for v in value)
    else:
        items = (as_int(name, value),) * n
    if any(v < minimum for v in items):
        bound = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {bound} (>= {minimum}); got {value!r}")
    return items


_INT_TYPE = frozenset({int})


def as_shape(name, value, ndim, layout):
    """A tuple of ``ndim`` positive ints describing an array shape."""
    if (type(value) is tuple and len(value) == ndim and _INT_TYPE.issuperset(map(type, value))
            and min(value) >= 1):
        return value  # the usual call (an array's shape): 0.3 us, against 1.0 below
    if not isinstance(value, (tuple, list)) and not (
        isinstance(value, np.ndarray) and value.ndim == 1
    ):
        raise TypeError(f"{name} must be a tuple of {ndim} ints {layout}; got {value!r}")
    if len(value) != ndim:
        raise ValueError(f"{name} must have {ndim} entries {layout}; got {tuple(value)!r}")
    shape = tuple(as_int(name, v) for v in value)
    if any(v < 1 for v in shape):
        raise ValueError(f"{name} entries must all be >= 1 {layout}; got {shape!r}")
    return shape


# --------------------------------------------------------------------------- convolution


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes and hyper-parameters of one 2-D convolution, all validated.

    1-D convolutions are represented with ``H = R = P = 1``, stride, dilation
    1 and no padding along the height.
    """

    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: tuple
    dilation: tuple
    pad_top_left: tuple
    pad_bottom_right: tuple
    groups: int
    P: int
    Q: int

    @property
    def input_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def weight_shape(self):
        return (self.K, self.C // self.groups, self.R, self.S)

    @property
    def output_shape(self):
        return (self.N, self.K, self.P, self.Q)


def _conv_padding(padding, stride, dilation, kernel, ndim):
    """Return (before, after) padding tuples for ``ndim`` spatial dimensions."""
    if isinstance(padding, str):
        if padding == "valid":
            zeros = (0,) * ndim
            return zeros, zeros
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"padding='same' requires stride 1 (as in PyTorch); got stride={stride}"
                )
            total = tuple(d * (k - 1) for d, k in zip(dilation, kernel))
            before = tuple(t // 2 for t in total)
            after = tuple(t - b for t, b in zip(total, before))
            return before, after
        raise ValueError(
            f"padding must be an int, a tuple of {ndim} ints, 'valid' or 'same'; got {padding!r}"
        )
    pad = as_tuple("padding", padding, ndim, 0)
    return pad, pad


#: Argument types that key :func:`_cached` as they are: values of other types
#: can hash equal to theirs while meaning something else (``True == 1.0 == 1``).
_PLAIN_TYPES = frozenset({int, str, type(None)})


def _cached(n_shapes):
    """Memoise a geometry function: layers call it with the same arguments every step.

    The first ``n_shapes`` arguments arrive validated (tuples of ints) and key
    as they are; so do the others when each is exactly an ``int``, a ``str``
    or None.  Otherwise ``repr`` of the others spells out the type of every
    scalar, nested ones included (``(1, True)``, ``1.0``, ``np.int64(1)``),
    so ``groups=True`` never hits ``groups=1``; their top-level types are
    added for classes with a misleading ``repr``.  Only successful results
    are cached: exceptions are raised afresh.
    """

    def decorate(fn):
        cache = {}

        @functools.wraps(fn)
        def wrapper(*args):
            rest = args[n_shapes:]
            if _PLAIN_TYPES.issuperset(map(type, rest)):
                # the usual call: 0.3 us, against 1.1 for the repr key below, which it
                # never equals (no tuple of strings and types among plain values)
                key = args
            else:
                key = (args[:n_shapes], repr(rest), tuple(map(type, rest)))
            hit = cache.get(key)
            if hit is None:
                hit = fn(*args)
                if len(cache) >= 1024:
                    cache.clear()
                cache[key] = hit
            return hit

        return wrapper

    return decorate


@_cached(n_shapes=2)
def conv_geometry(input_shape, weight_shape, stride, padding, dilation, groups, spatial):
    """Validate a convolution's shapes and hyper-parameters.

    Parameters
    ----------
    input_shape, weight_shape : tuple of int
        ``(N, C, H, W)`` and ``(K, C/groups, R, S)`` for ``spatial=2``;
        ``(N, C, L)`` and ``(K, C/groups, S)`` for ``spatial=1``.
    stride, padding, dilation, groups
        As given by the user.
    spatial : {1, 2}

    Returns
    -------
    ConvGeometry
    """
    groups = as_int("groups", groups)
    if groups < 1:
        raise ValueError(f"groups must be positive; got {groups}")
    stride = as_tuple("stride", stride, spatial, 1)
    dilation = as_tuple("dilation", dilation, spatial, 1)
    kernel = tuple(weight_shape[2:])
    before, after = _conv_padding(padding, stride, dilation, kernel, spatial)

    N, C = input_shape[:2]
    K, Cw = weight_shape[:2]
    if K % groups != 0:
        raise ValueError(
            f"weight has {K} output channels (weight.shape[0]), which is not divisible "
            f"by groups={groups}"
        )
    if C != Cw * groups:
        raise ValueError(
            f"channel mismatch: input has C={C} channels but weight.shape[1]={Cw} "
            f"with groups={groups} expects C = weight.shape[1] * groups = {Cw * groups}"
        )
    sizes = tuple(input_shape[2:])
    out = []
    for axis, (L, k, s, d, b, a) in enumerate(zip(sizes, kernel, stride, dilation, before, after)):
        span = d * (k - 1) + 1
        if L + b + a < span:
            raise ValueError(
                f"the dilated kernel (size {span} = dilation {d} * (kernel {k} - 1) + 1) is "
                f"larger than the padded input (size {L} + padding {b + a} = {L + b + a}) "
                f"along spatial axis {axis}"
            )
        out.append((L + b + a - span) // s + 1)

    if spatial == 1:
        return ConvGeometry(N, C, 1, sizes[0], K, 1, kernel[0], (1, stride[0]), (1, dilation[0]),
                            (0, before[0]), (0, after[0]), groups, 1, out[0])
    return ConvGeometry(N, C, sizes[0], sizes[1], K, kernel[0], kernel[1], stride, dilation,
                        before, after, groups, out[0], out[1])


def check_grad_output(grad_output, expected_shape):
    if tuple(grad_output.shape) != tuple(expected_shape):
        raise ValueError(
            f"grad_output has shape {grad_output.shape}, but the convolution produces "
            f"outputs of shape {tuple(expected_shape)}"
        )


# --------------------------------------------------------------------------- pooling


@dataclass(frozen=True)
class PoolGeometry:
    """Shapes and hyper-parameters of one 2-D max-pool (1-D: H = kh = P = 1)."""

    N: int
    C: int
    H: int
    W: int
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    P: int
    Q: int

    @property
    def output_shape(self):
        return (self.N, self.C, self.P, self.Q)


def _pool_out_size(L, k, s, p, d, ceil_mode):
    """PyTorch's pooling_output_shape."""
    num = L + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= L + p:
        out -= 1
    return out


def first_empty_window(L, k, s, p, d, n_out):
    """Index of the first of ``n_out`` windows whose taps all fall in the padding, or None.

    Only possible with dilation: taps ``o*s - p + t*d`` can step over the input.
    """
    for o in range(n_out):
        start = o * s - p
        if not any(0 <= start + t * d < L for t in range(k)):
            return o
    return None


@_cached(n_shapes=1)
def pool_geometry(input_shape, kernel_size, stride, padding, dilation, ceil_mode, spatial):
    """Validate a max-pool's hyper-parameters against ``input_shape``.

    ``input_shape`` is ``(N, C, H, W)`` for ``spatial=2`` and ``(N, C, L)`` for 1.
    """
    kernel = as_tuple("kernel_size", kernel_size, spatial, 1)
    stride = kernel if stride is None else as_tuple("stride", stride, spatial, 1)
    padding = as_tuple("padding", padding, spatial, 0)
    dilation = as_tuple("dilation", dilation, spatial, 1)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be a bool; got {ceil_mode!r}")
    for k, p in zip(kernel, padding):
        if p > k // 2:
            raise ValueError(
                f"padding must be at most half the kernel size; got padding={padding} "
                f"for kernel_size={kernel}"
            )
    N, C = input_shape[:2]
    sizes = tuple(input_shape[2:])
    out = []
    for axis, (L, k, s, p, d) in enumerate(zip(sizes, kernel, stride, padding, dilation)):
        o = _pool_out_size(L, k, s, p, d, bool(ceil_mode))
        if o < 1:
            raise ValueError(
                f"the pooling window (kernel {k}, dilation {d}) does not fit the padded "
                f"input (size {L} + 2 * padding {p}) along spatial axis {axis}: output "
                f"size would be {o}"
            )
        empty = first_empty_window(L, k, s, p, d, o)
        if empty is not None:
            raise ValueError(
                f"pooling window {empty} along spatial axis {axis} covers only padding "
                f"(input size {L}, kernel {k}, stride {s}, padding {p}, dilation {d}): it has "
                "no maximum to return. Reduce padding or dilation. (PyTorch returns -inf "
                "with an index outside the input here.)"
            )
        out.append(o)
    if spatial == 1:
        return PoolGeometry(N, C, 1, sizes[0], (1, kernel[0]), (1, stride[0]),
                            (0, padding[0]), (1, dilation[0]), 1, out[0])
    return PoolGeometry(N, C, sizes[0], sizes[1], kernel, stride, padding, dilation,
                        out[0], out[1])


def as_indices(indices, grad_output_shape, plane_size, check_range=True):
    """Validate max-pool ``indices``: integer, same shape as grad_output, values in range.

    Returns a C-contiguous int64 array.  With ``check_range=False`` the
    values are left to the caller, which must then raise
    :func:`index_range_error` if any is outside ``[0, plane_size)``.
    """
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices must be an integer array (int64); got dtype {idx.dtype}")
    if idx.shape != tuple(grad_output_shape):
        raise ValueError(
            f"indices has shape {idx.shape} but grad_output has shape {tuple(grad_output_shape)}; "
            "they must match"
        )
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    # one pass: a negative index read as unsigned is huge, so max() catches both ends
    if check_range and idx.size and int(idx.view(np.uint64).max()) >= plane_size:
        raise index_range_error(idx, plane_size)
    return idx


def index_range_error(idx, plane_size):
    """The ValueError for max-pool indices ``idx`` (int64) not all in ``[0, plane_size)``."""
    lo, hi = int(idx.min()), int(idx.max())
    return ValueError(
        f"indices must lie in [0, {plane_size}) for input planes of {plane_size} "
        f"elements; got values in [{lo}, {hi}]"
    )
