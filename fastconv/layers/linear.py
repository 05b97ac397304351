"""Fully connected layer :class:`Linear` and the :class:`Flatten` that usually precedes it."""

import numpy as np

from ._base import (Module, Parameter, _as_bool, _as_rng, _float_dtype, _kaiming_uniform,
                    _positive_int)

__all__ = ["Flatten", "Linear"]


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
