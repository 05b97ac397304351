"""Layer classes: thin stateful wrappers around fastconv's functional API.

Each layer has ``forward(x)`` (also ``layer(x)``) and ``backward(grad_output)``.
In training mode (the default) ``forward`` caches only what ``backward``
needs -- the input of a convolution or linear layer, the argmax indices of a
max-pool, the mask or output of an activation -- and ``backward`` returns the
gradient with respect to the input, adds parameter gradients into each
parameter's ``.grad`` (``+=``, as in PyTorch) and releases the cache.  Hence:

* ``backward`` before any ``forward``, or a second ``backward`` without a new
  ``forward``, raises RuntimeError;
* in ``eval()`` mode ``forward`` keeps no cache, so ``backward`` raises;
* an input or ``grad_output`` of the wrong shape or dtype raises ValueError
  or TypeError before anything is computed (a failed ``backward`` keeps the
  cache, so it can be retried with a correct ``grad_output``).

Do not modify an array passed to ``forward`` before the matching ``backward``:
layers keep a reference to it, not a copy.

**Dtypes.**  :class:`Conv2d`, :class:`Conv1d` and :class:`Linear` have a
``dtype`` (float32 by default) and never cast: ``forward`` raises TypeError on
an input of any other dtype (convert it with ``x.astype(layer.dtype)``).
Parameter-free layers accept float32 or float64 and return the input's dtype.
Integer inputs are rejected everywhere.

**Backends.**  Convolutions and max-pools compute with ``backend="numba"``
(fastconv's kernels) or ``backend="numpy"`` (:mod:`fastconv.reference`); with
``backend=None`` (the default) each forward uses
:func:`fastconv.backend.get_default_backend`.  Outputs and gradients have the
layer's dtype on either backend.  :class:`Linear` and the activations are
plain NumPy.

Examples
--------
>>> import numpy as np
>>> from fastconv import layers
>>> net = layers.Sequential(
...     layers.Conv2d(1, 4, 3, padding=1, rng=0), layers.ReLU(),
...     layers.MaxPool2d(2), layers.Flatten(), layers.Linear(16, 2, rng=0))
>>> x = np.ones((5, 1, 4, 4), np.float32)
>>> out = net(x)
>>> out.shape, out.dtype
((5, 2), dtype('float32'))
>>> grad_x = net.backward(np.ones_like(out))
>>> grad_x.shape
(5, 1, 4, 4)
"""

import math

import numpy as np

from . import _validation as v
from . import backend as _backend

__all__ = [
    "Conv1d",
    "Conv2d",
    "Flatten",
    "Linear",
    "MaxPool1d",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
]


# --------------------------------------------------------------------------- helpers


def _float_dtype(dtype):
    """np.dtype(float32) or np.dtype(float64); anything else raises TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be np.float32 or np.float64; got {dtype!r}")
    return dt


def _as_rng(rng):
    """A np.random.Generator from None (fresh entropy), an int seed or a Generator."""
    if rng is None or isinstance(rng, np.random.Generator):
        return np.random.default_rng(rng)
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, (int, np.integer)):
        raise TypeError(
            f"rng must be None, an int seed or a np.random.Generator; got {rng!r}"
        )
    return np.random.default_rng(int(rng))


def _as_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool; got {value!r}")
    return bool(value)


def _positive_int(name, value):
    value = v.as_int(name, value)
    if value < 1:
        raise ValueError(f"{name} must be positive (>= 1); got {value}")
    return value


def _kaiming_uniform(rng, shape, fan_in, dtype):
    """PyTorch's default init: U(-b, b), b = 1/sqrt(fan_in).

    Kaiming-uniform with ``a = sqrt(5)`` has gain ``sqrt(2 / (1 + 5))`` and
    bound ``gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in)``; PyTorch's default
    bias bound is the same.
    """
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _compact(t):
    """Show (2, 2) as 2 and (2, 3) as (2, 3), for pooling reprs."""
    return t[0] if len(set(t)) == 1 else t


class Parameter:
    """A trainable array ``data`` and its gradient ``grad`` (same shape and dtype).

    Layers add gradients into ``grad``; optimizers update ``data`` in place.
    ``np.asarray(param)`` gives ``data``.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data):
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self.data, dtype=dtype)
        return np.asarray(self.data, dtype=dtype)

    def __repr__(self):
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


# --------------------------------------------------------------------------- base class


class Module:
    """Base class: parameters, train/eval mode, state dicts and the cache protocol.

    Subclasses implement ``forward`` and ``backward``; in ``forward`` they call
    ``self._save(...)`` with what ``backward`` needs, and ``backward`` gets it
    back from ``self._saved()`` and calls ``self._release()`` when done.
    """

    #: Whether the layer computes through :mod:`fastconv.backend`.
    _uses_backend = False
    #: Last input shape validated against the (immutable) hyper-parameters.
    _checked_shape = None

    def __init__(self):
        self.training = True
        self._cache = None
        self._spent = False

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    # ----------------------------------------------------------------- structure

    def children(self):
        """Sub-layers, in order (empty for a plain layer)."""
        return []

    def _own_parameters(self):
        return []

    def named_parameters(self):
        """List of ``(name, Parameter)``; nested names are ``"index.name"``."""
        named = list(self._own_parameters())
        for i, child in enumerate(self.children()):
            named += [(f"{i}.{name}", p) for name, p in child.named_parameters()]
        return named

    def parameters(self):
        """List of this layer's :class:`Parameter` objects (and its children's)."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        """Set every parameter's ``.grad`` to zero."""
        for p in self.parameters():
            p.grad.fill(0)

    # ----------------------------------------------------------------- modes

    def train(self, mode=True):
        """Set training mode (``mode=False``: eval mode, which drops all caches)."""
        mode = _as_bool("mode", mode)
        self.training = mode
        if not mode:
            self._cache = None
            self._spent = False
        for child in self.children():
            child.train(mode)
        return self

    def eval(self):
        """Eval mode: ``forward`` keeps no cache and ``backward`` raises."""
        return self.train(False)

    def set_backend(self, name):
        """Set ``backend`` ("numba", "numpy" or None) on this layer and its children."""
        if name is not None:
            _backend.resolve(name)
        if self._uses_backend:
            self.backend = name
        for child in self.children():
            child.set_backend(name)
        return self

    # ----------------------------------------------------------------- state

    def state_dict(self):
        """A dict ``{name: ndarray}`` of copies of the parameters (``np.savez(f, **sd)`` works)."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state_dict):
        """Copy arrays from ``state_dict`` (a dict or an ``np.load`` result) into the parameters.

        Keys must match :meth:`state_dict` exactly and shapes must match;
        float values are cast to the layer's dtype.  Nothing is modified unless
        every entry is valid.
        """
        named = dict(self.named_parameters())
        keys = set(state_dict.keys())
        missing, unexpected = sorted(set(named) - keys), sorted(keys - set(named))
        if missing or unexpected:
            raise ValueError(
                f"state_dict keys do not match {type(self).__name__}'s parameters: "
                f"missing {missing}, unexpected {unexpected}"
            )
        arrays = {}
        for name, p in named.items():
            arr = np.asarray(state_dict[name])
            if arr.dtype.kind != "f":
                raise TypeError(
                    f"state_dict[{name!r}] has dtype {arr.dtype}; expected a float array"
                )
            if arr.shape != p.shape:
                raise ValueError(
                    f"state_dict[{name!r}] has shape {arr.shape}; the parameter has shape {p.shape}"
                )
            arrays[name] = arr
        for name, arr in arrays.items():
            named[name].data[...] = arr

    # ----------------------------------------------------------------- repr

    def extra_repr(self):
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    # ----------------------------------------------------------------- cache protocol

    def _save(self, **cache):
        """Keep ``cache`` for backward (training mode only)."""
        self._cache = cache if self.training else None
        self._spent = False

    def _saved(self):
        """The cache of the last forward, or a RuntimeError saying why there is none."""
        if self._cache is not None:
            return self._cache
        name = type(self).__name__
        if self._spent:
            raise RuntimeError(
                f"{name}.backward() was already called for the last forward(); call "
                "forward(x) again before another backward()"
            )
        if not self.training:
            raise RuntimeError(
                f"{name}.backward() called in eval mode, where forward() keeps no cache; "
                "call train() and forward(x) first"
            )
        raise RuntimeError(f"{name}.backward() called before forward(); call forward(x) first")

    def _release(self):
        self._cache = None
        self._spent = True

    # ----------------------------------------------------------------- input checks

    def _input(self, x, ndim=None, layout=None, dtype=None):
        """Validate ``x``: float32/float64 (exactly ``dtype`` if given), ``ndim`` dims."""
        name = f"x (input to {type(self).__name__})"
        arr = v.as_array(name, x)
        if ndim is not None:
            v.check_ndim(name, arr, ndim, layout)
            v.check_nonempty(name, arr, layout)
        if dtype is not None and arr.dtype != dtype:
            raise TypeError(
                f"{name} has dtype {arr.dtype} but the layer has dtype {dtype}; layers do "
                f"not cast: pass x.astype(np.{dtype}) or build the layer with "
                f"dtype=np.{arr.dtype}"
            )
        if arr.dtype.kind != "f":
            raise TypeError(
                f"{name} has dtype {arr.dtype}; {type(self).__name__} accepts float32 or "
                "float64: convert it with x.astype(np.float32) or .astype(np.float64)"
            )
        return arr

    def _grad_output(self, grad_output, shape, dtype):
        """Validate ``grad_output`` against the shape and dtype of the forward output."""
        name = f"grad_output (to {type(self).__name__}.backward)"
        g = v.as_array(name, grad_output)
        if g.shape != tuple(shape):
            raise ValueError(
                f"{name} has shape {g.shape}; the last forward() returned shape {tuple(shape)}"
            )
        if g.dtype != dtype:
            raise TypeError(
                f"{name} has dtype {g.dtype}; the last forward() returned {dtype}: "
                f"pass grad_output.astype(np.{dtype})"
            )
        return g


# --------------------------------------------------------------------------- convolution


class _ConvNd(Module):
    _uses_backend = True
    _spatial = 2
    _layout = "(N, C, H, W)"

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, dtype, rng, backend):
        super().__init__()
        n = self._spatial
        self.in_channels = _positive_int("in_channels", in_channels)
        self.out_channels = _positive_int("out_channels", out_channels)
        self.kernel_size = v.as_tuple("kernel_size", kernel_size, n, 1)
        self.stride = v.as_tuple("stride", stride, n, 1)
        self.dilation = v.as_tuple("dilation", dilation, n, 1)
        self.padding = padding if isinstance(padding, str) else v.as_tuple("padding", padding, n, 0)
        self.groups = _positive_int("groups", groups)
        for arg, value in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if value % self.groups:
                raise ValueError(f"{arg}={value} is not divisible by groups={self.groups}")
        has_bias = _as_bool("bias", bias)
        self.dtype = _float_dtype(dtype)
        self.backend = None if backend is None else _backend.resolve(backend)
        weight_shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        # Validates padding strings and 'same' with stride > 1 on the smallest input.
        span = tuple(d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_size))
        v.conv_geometry((1, self.in_channels) + span, weight_shape, self.stride, self.padding,
                        self.dilation, self.groups, n)
        rng = _as_rng(rng)
        fan_in = (self.in_channels // self.groups) * math.prod(self.kernel_size)
        self.weight = Parameter(_kaiming_uniform(rng, weight_shape, fan_in, self.dtype))
        self.bias = (Parameter(_kaiming_uniform(rng, (self.out_channels,), fan_in, self.dtype))
                     if has_bias else None)

    def _own_parameters(self):
        own = [("weight", self.weight)]
        return own + ([("bias", self.bias)] if self.bias is not None else [])

    def _fn(self, backend_name, suffix=""):
        return getattr(_backend.get_backend(backend_name), f"conv{self._spatial}d{suffix}")

    def _args(self):
        return self.stride, self.padding, self.dilation, self.groups

    def forward(self, x):
        x = self._input(x, self._spatial + 2, self._layout, self.dtype)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"x (input to {type(self).__name__}) has {x.shape[1]} channels (x.shape[1]) "
                f"but the layer has in_channels={self.in_channels}; x.shape is {x.shape}"
            )
        if x.shape != self._checked_shape:  # the numpy backend does not validate
            v.conv_geometry(x.shape, self.weight.shape, *self._args(), self._spatial)
            self._checked_shape = x.shape
        name = _backend.resolve(self.backend)
        bias = None if self.bias is None else self.bias.data
        out = self._fn(name)(x, self.weight.data, bias, *self._args())
        out = out.astype(self.dtype, copy=False)
        self._save(x=x, backend=name, out_shape=out.shape)
        return out

    def backward(self, grad_output):
        cache = self._saved()
        g = self._grad_output(grad_output, cache["out_shape"], self.dtype)
        x, name = cache["x"], cache["backend"]
        grad_w = self._fn(name, "_grad_weight")(x, self.weight.shape, g, *self._args())
        grad_x = self._fn(name, "_grad_input")(x.shape, self.weight.data, g, *self._args())
        if self.bias is not None:
            self.bias.grad += self._fn(name, "_grad_bias")(g)
        self.weight.grad += grad_w
        self._release()
        return grad_x.astype(self.dtype, copy=False)

    def extra_repr(self):
        parts = [f"{self.in_channels}, {self.out_channels}",
                 f"kernel_size={self.kernel_size}", f"stride={self.stride}"]
        if self.padding != (0,) * self._spatial:
            parts.append(f"padding={self.padding!r}")
        if self.dilation != (1,) * self._spatial:
            parts.append(f"dilation={self.dilation}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if self.bias is None:
            parts.append("bias=False")
        if self.dtype != np.float32:
            parts.append(f"dtype={self.dtype}")
        if self.backend is not None:
            parts.append(f"backend={self.backend!r}")
        return ", ".join(parts)


class Conv2d(_ConvNd):
    """2-D convolution layer (cross-correlation), as ``torch.nn.Conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int
        C and K; both divisible by ``groups``.
    kernel_size : int or (int, int)
    stride : int or (int, int), default 1
    padding : int, (int, int), 'valid' or 'same', default 0
    dilation : int or (int, int), default 1
    groups : int, default 1
    bias : bool, default True
    dtype : np.float32 or np.float64, default np.float32
        Dtype of the parameters, of the accepted input and of every result.
    rng : None, int or np.random.Generator, optional
        Source of the initial weights (None: fresh entropy).  Weight and bias
        are drawn, in that order, from U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
        ``fan_in = in_channels / groups * prod(kernel_size)``: PyTorch's
        default (Kaiming-uniform with a = sqrt(5)).
    backend : {"numba", "numpy"} or None, default None
        None follows the global default at each forward.

    Attributes
    ----------
    weight : Parameter, shape (out_channels, in_channels // groups, R, S)
    bias : Parameter, shape (out_channels,), or None

    Notes
    -----
    ``forward(x)``: x of shape (N, in_channels, H, W) and exactly ``dtype``
    (TypeError otherwise; the layer never casts) -> (N, out_channels, P, Q).
    ``backward(grad_output)``: grad_output (N, out_channels, P, Q) of
    ``dtype`` -> dL/dx of shape (N, in_channels, H, W); adds dL/dweight and
    dL/dbias into ``weight.grad`` and ``bias.grad``.

    Examples
    --------
    >>> Conv2d(1, 6, 5)
    Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))
    """

    _spatial = 2
    _layout = "(N, C, H, W)"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=np.float32, rng=None, backend=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, dtype, rng, backend)


class Conv1d(_ConvNd):
    """1-D convolution layer (cross-correlation), as ``torch.nn.Conv1d``.

    Parameters are those of :class:`Conv2d` with one spatial dimension
    (``kernel_size``, ``stride``, ``padding``, ``dilation``: int or 1-tuple).
    ``weight`` has shape (out_channels, in_channels // groups, S).

    Notes
    -----
    ``forward(x)``: x (N, in_channels, L) of exactly ``dtype`` ->
    (N, out_channels, Lout).  ``backward(grad_output)``: (N, out_channels, Lout)
    -> (N, in_channels, L), accumulating ``weight.grad`` and ``bias.grad``.

    Examples
    --------
    >>> Conv1d(2, 4, 3, padding=1)
    Conv1d(2, 4, kernel_size=(3,), stride=(1,), padding=(1,))
    """

    _spatial = 1
    _layout = "(N, C, L)"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=np.float32, rng=None, backend=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, dtype, rng, backend)


# --------------------------------------------------------------------------- pooling


class _MaxPoolNd(Module):
    _uses_backend = True
    _spatial = 2
    _layout = "(N, C, H, W)"

    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode, backend):
        super().__init__()
        n = self._spatial
        self.kernel_size = v.as_tuple("kernel_size", kernel_size, n, 1)
        self.stride = (self.kernel_size if stride is None
                       else v.as_tuple("stride", stride, n, 1))
        self.padding = v.as_tuple("padding", padding, n, 0)
        self.dilation = v.as_tuple("dilation", dilation, n, 1)
        self.ceil_mode = _as_bool("ceil_mode", ceil_mode)
        self.backend = None if backend is None else _backend.resolve(backend)
        # Validates padding <= kernel_size // 2 on the smallest input.
        span = tuple(d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_size))
        v.pool_geometry((1, 1) + span, *self._args(), n)

    def _args(self):
        return self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode

    def _fn(self, backend_name, suffix=""):
        return getattr(_backend.get_backend(backend_name), f"max_pool{self._spatial}d{suffix}")

    def forward(self, x):
        x = self._input(x, self._spatial + 2, self._layout)
        if x.shape != self._checked_shape:  # the numpy backend does not validate
            v.pool_geometry(x.shape, *self._args(), self._spatial)
            self._checked_shape = x.shape
        name = _backend.resolve(self.backend)
        out, indices = self._fn(name)(x, *self._args())
        out = out.astype(x.dtype, copy=False)
        self._save(indices=indices, input_shape=x.shape, dtype=x.dtype, backend=name)
        return out

    def backward(self, grad_output):
        cache = self._saved()
        indices = cache["indices"]
        g = self._grad_output(grad_output, indices.shape, cache["dtype"])
        grad_x = self._fn(cache["backend"], "_backward")(g, indices, cache["input_shape"])
        self._release()
        return grad_x.astype(g.dtype, copy=False)

    def extra_repr(self):
        text = (f"kernel_size={_compact(self.kernel_size)}, stride={_compact(self.stride)}, "
                f"padding={_compact(self.padding)}, dilation={_compact(self.dilation)}, "
                f"ceil_mode={self.ceil_mode}")
        if self.backend is not None:
            text += f", backend={self.backend!r}"
        return text


class MaxPool2d(_MaxPoolNd):
    """2-D max-pooling layer, as ``torch.nn.MaxPool2d``.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``; smaller strides give overlapping windows.
    padding : int or (int, int), default 0
        Implicit -inf padding, at most ``kernel_size // 2``.
    dilation : int or (int, int), default 1
    ceil_mode : bool, default False
    backend : {"numba", "numpy"} or None, default None

    Notes
    -----
    ``forward(x)``: x (N, C, H, W), float32 or float64 -> (N, C, P, Q) of
    x's dtype; caches the int64 argmax indices.  ``backward(grad_output)``:
    (N, C, P, Q) -> (N, C, H, W), each gradient routed to its window's first
    maximum and summed where windows overlap.

    Examples
    --------
    >>> MaxPool2d(2)
    MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    """

    _spatial = 2
    _layout = "(N, C, H, W)"

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 backend=None):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode, backend)


class MaxPool1d(_MaxPoolNd):
    """1-D max-pooling layer, as ``torch.nn.MaxPool1d``.

    Parameters as :class:`MaxPool2d` with one spatial dimension.  ``forward``:
    (N, C, L) -> (N, C, Lout); ``backward``: (N, C, Lout) -> (N, C, L).
    """

    _spatial = 1
    _layout = "(N, C, L)"

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 backend=None):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode, backend)


# --------------------------------------------------------------------------- element-wise


class _Elementwise(Module):
    """A parameter-free layer on any shape; float32 or float64 in, same dtype out."""

    def forward(self, x):
        x = self._input(x)
        out, saved = self._apply(x)
        self._save(saved=saved, shape=x.shape, dtype=x.dtype)
        return out

    def backward(self, grad_output):
        cache = self._saved()
        g = self._grad_output(grad_output, cache["shape"], cache["dtype"])
        grad_x = self._derive(g, cache["saved"])
        self._release()
        return grad_x


class ReLU(_Elementwise):
    """``max(x, 0)`` element-wise; any shape.  Caches the boolean mask ``x > 0``.

    The gradient at exactly 0 is 0, as in PyTorch.
    """

    def _apply(self, x):
        return np.maximum(x, 0), x > 0

    def _derive(self, g, mask):
        return g * mask


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))`` element-wise, without overflow; caches the output."""

    def _apply(self, x):
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return out, out

    def _derive(self, g, out):
        return g * out * (1 - out)


class Tanh(_Elementwise):
    """``tanh(x)`` element-wise; caches the output."""

    def _apply(self, x):
        out = np.tanh(x)
        return out, out

    def _derive(self, g, out):
        return g * (1 - out * out)


class Flatten(Module):
    """Reshape (N, d1, d2, ...) to (N, d1 * d2 * ...); caches only the input shape.

    ``forward`` returns a view when ``x`` is C-contiguous.
    """

    def forward(self, x):
        x = self._input(x)
        if x.ndim < 2:
            raise ValueError(
                "x (input to Flatten) must have at least 2 dimensions (N, ...); "
                f"got shape {x.shape}"
            )
        out = x.reshape(x.shape[0], -1)
        self._save(shape=x.shape, out_shape=out.shape, dtype=x.dtype)
        return out

    def backward(self, grad_output):
        cache = self._saved()
        g = self._grad_output(grad_output, cache["out_shape"], cache["dtype"])
        self._release()
        return g.reshape(cache["shape"])


# --------------------------------------------------------------------------- linear


class Linear(Module):
    """Fully connected layer ``y = x @ weight.T + bias``, as ``torch.nn.Linear`` (plain NumPy).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    dtype : np.float32 or np.float64, default np.float32
        Dtype of the parameters, of the accepted input and of every result.
    rng : None, int or np.random.Generator, optional
        Weight then bias from U(-1/sqrt(in_features), 1/sqrt(in_features)),
        PyTorch's default.

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
    bias : Parameter, shape (out_features,), or None

    Notes
    -----
    ``forward(x)``: x (N, in_features) of exactly ``dtype`` -> (N, out_features).
    ``backward(grad_output)``: (N, out_features) -> (N, in_features).

    Examples
    --------
    >>> Linear(64, 10)
    Linear(in_features=64, out_features=10, bias=True)
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = _positive_int("in_features", in_features)
        self.out_features = _positive_int("out_features", out_features)
        has_bias = _as_bool("bias", bias)
        self.dtype = _float_dtype(dtype)
        rng = _as_rng(rng)
        shape = (self.out_features, self.in_features)
        self.weight = Parameter(_kaiming_uniform(rng, shape, self.in_features, self.dtype))
        self.bias = (Parameter(_kaiming_uniform(rng, (self.out_features,), self.in_features,
                                                self.dtype)) if has_bias else None)

    def _own_parameters(self):
        own = [("weight", self.weight)]
        return own + ([("bias", self.bias)] if self.bias is not None else [])

    def forward(self, x):
        x = self._input(x, 2, "(N, in_features)", self.dtype)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"x (input to Linear) has {x.shape[1]} features (x.shape[1]) but the layer "
                f"has in_features={self.in_features}; x.shape is {x.shape}"
            )
        out = x @ self.weight.data.T
        if self.bias is not None:
            out += self.bias.data
        self._save(x=x)
        return out

    def backward(self, grad_output):
        cache = self._saved()
        x = cache["x"]
        g = self._grad_output(grad_output, (x.shape[0], self.out_features), self.dtype)
        self.weight.grad += g.T @ x
        if self.bias is not None:
            self.bias.grad += g.sum(axis=0)
        self._release()
        return g @ self.weight.data

    def extra_repr(self):
        text = (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
        return text + (f", dtype={self.dtype}" if self.dtype != np.float32 else "")


# --------------------------------------------------------------------------- container


class Sequential(Module):
    """Layers applied in order; ``backward`` runs them in reverse.

    Parameter names in :meth:`state_dict` are ``"index.name"`` (``"0.weight"``),
    as in PyTorch.  ``net[i]``, ``len(net)`` and iteration give the layers.

    Examples
    --------
    >>> Sequential(Conv2d(1, 6, 5), ReLU())
    Sequential(
      (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))
      (1): ReLU()
    )
    """

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(
                    f"Sequential takes layers (fastconv.layers.Module instances); argument "
                    f"{i} is {layer!r} of type {type(layer).__name__}"
                )
        self.layers = list(layers)

    def children(self):
        return list(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def forward(self, x):
        """Apply every layer in order; each caches what its backward needs."""
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, grad_output):
        """Back-propagate through the layers in reverse; returns dL/dx."""
        for layer in reversed(self.layers):
            grad_output = layer.backward(grad_output)
        return grad_output

    def __repr__(self):
        lines = [f"{type(self).__name__}("]
        for i, layer in enumerate(self.layers):
            body = repr(layer).replace("\n", "\n  ")
            lines.append(f"  ({i}): {body}")
        lines.append(")")
        return "\n".join(lines)
