"""Numba kernels behind fastconv's public API (installed as ``fastconv.kernels``).

Kernels assume valid input: C-contiguous arrays of one float dtype (float32 or
float64), shapes consistent with each other, output arrays preallocated by the
caller.  Validation and coercion live in ``fastconv._validation``; nothing here
checks its arguments.
"""

from . import _threading  # noqa: F401  (threading layer and spin policy, see its docstring)
from .conv2d_forward import conv2d_forward
from .conv2d_grad_input import conv2d_grad_input
from .conv2d_grad_weight import conv2d_grad_weight
from .max_pool2d import max_pool2d_backward, max_pool2d_forward

__all__ = [
    "conv2d_forward",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "max_pool2d_backward",
    "max_pool2d_forward",
]
