"""Optimizers that update :class:`fastconv.layers.Parameter` objects in place."""

import math
import numbers

import numpy as np

from .layers import Parameter

__all__ = ["SGD"]


def _as_float(name, value, minimum, strict=False):
    """A finite float >= minimum (> minimum when ``strict``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(f"{name} must be a finite number {bound}; got {value!r}")
    return value


class SGD:
    """Stochastic gradient descent with optional momentum and weight decay, as ``torch.optim.SGD``.

    Each :meth:`step` does, for every parameter ``p``::

        g = p.grad + weight_decay * p.data
        buf = g                      (first step)
        buf = momentum * buf + g     (later steps)
        p.data -= lr * buf           (lr * g without momentum)

    Parameters
    ----------
    parameters : iterable of Parameter
        E.g. ``model.parameters()``; must not be empty.
    lr : float > 0
    momentum : float >= 0, default 0
    weight_decay : float >= 0, default 0
        L2 penalty coefficient.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.layers import Parameter
    >>> p = Parameter(np.array([1.0, 2.0]))
    >>> p.grad[:] = [0.5, -0.5]
    >>> SGD([p], lr=0.1).step()
    >>> p.data
    array([0.95, 2.05])
    """

    def __init__(self, parameters, lr, momentum=0.0, weight_decay=0.0):
        params = list(parameters)
        if not params:
            raise ValueError("parameters is empty: SGD needs at least one Parameter to update")
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(
                    f"parameters must hold fastconv.layers.Parameter objects (from "
                    f"model.parameters()); item {i} is of type {type(p).__name__}"
                )
        self.parameters = params
        self.lr = _as_float("lr", lr, 0.0, strict=True)
        self.momentum = _as_float("momentum", momentum, 0.0)
        self.weight_decay = _as_float("weight_decay", weight_decay, 0.0)
        self._buffers = [None] * len(params)

    def step(self):
        """Update every parameter's ``data`` in place from its ``grad``."""
        for i, p in enumerate(self.parameters):
            g = p.grad
            if self.weight_decay:
                g = g + p.dtype.type(self.weight_decay) * p.data
            if self.momentum:
                buf = self._buffers[i]
                if buf is None:
                    buf = self._buffers[i] = np.array(g, copy=True)
                else:
                    buf *= self.momentum
                    buf += g
                g = buf
            p.data -= p.dtype.type(self.lr) * g

    def zero_grad(self):
        """Set every parameter's ``grad`` to zero."""
        for p in self.parameters:
            p.grad.fill(0)

    def __repr__(self):
        return (f"SGD({len(self.parameters)} parameters, lr={self.lr}, "
                f"momentum={self.momentum}, weight_decay={self.weight_decay})")
