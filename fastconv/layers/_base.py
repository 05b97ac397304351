"""Shared base of the layers: :class:`Parameter`, :class:`Module` and private helpers.

The caching, dtype and backend contract that every layer follows is documented
in :mod:`fastconv.layers`.
"""

import math

import numpy as np

from .. import _validation as v
from .. import backend as _backend

__all__ = ["Module", "Parameter"]


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
