"""Element-wise activation layers: :class:`ReLU`, :class:`Sigmoid` and :class:`Tanh`."""

import numpy as np

from ._base import Module

__all__ = ["ReLU", "Sigmoid", "Tanh"]


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
