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

from ._base import Module, Parameter
from .activation import ReLU, Sigmoid, Tanh
from .container import Sequential
from .conv import Conv1d, Conv2d
from .linear import Flatten, Linear
from .pool import MaxPool1d, MaxPool2d

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
