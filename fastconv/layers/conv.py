"""Convolution layers: :class:`Conv2d` and :class:`Conv1d`."""

import math

import numpy as np

from .. import _validation as v
from .. import backend as _backend
from ._base import (Module, Parameter, _as_bool, _as_rng, _float_dtype, _kaiming_uniform,
                    _positive_int)

__all__ = ["Conv1d", "Conv2d"]


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
