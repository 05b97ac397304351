"""Numba kernels behind fastconv's public API (installed as ``fastconv.kernels``).

Kernels assume valid input: C-contiguous arrays of one float dtype (float32 or
float64), shapes consistent with each other, output arrays preallocated by the
caller.  Validation and coercion live in ``fastconv._validation``; nothing here
checks its arguments.
"""

from . import _threading
from .conv2d_forward import conv2d_forward
from .conv2d_grad_input import conv2d_grad_input
from .conv2d_grad_weight import conv2d_grad_weight
from .max_pool2d import max_pool2d_backward, max_pool2d_forward

_ENTRY_POINTS = {f.__name__: f for f in (conv2d_forward, conv2d_grad_input, conv2d_grad_weight,
                                         max_pool2d_backward, max_pool2d_forward)}


def _configure_on_first_call(name):
    """Entry point that sets up threading (see ``_threading``) on the first kernel call.

    It then rebinds every entry point of this module to the kernel itself, so
    later calls through ``fastconv.kernels.<name>`` pay nothing.
    """
    kernel = _ENTRY_POINTS[name]

    def first_call(*args, **kwargs):
        _threading.configure()
        globals().update(_ENTRY_POINTS)
        return kernel(*args, **kwargs)

    first_call.__name__ = name
    first_call.__doc__ = kernel.__doc__
    return first_call


for _name in _ENTRY_POINTS:
    globals()[_name] = _configure_on_first_call(_name)
del _name

__all__ = [
    "conv2d_forward",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "max_pool2d_backward",
    "max_pool2d_forward",
]
