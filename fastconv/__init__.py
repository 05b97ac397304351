"""fastconv: Numba-compiled CPU kernels for convolutional networks on NumPy arrays.

The functional API mirrors ``torch.nn.functional`` (NCHW layout,
cross-correlation) and works on NumPy arrays of float32 or float64.
"""

from .conv import (
    conv1d,
    conv1d_grad_bias,
    conv1d_grad_input,
    conv1d_grad_weight,
    conv2d,
    conv2d_grad_bias,
    conv2d_grad_input,
    conv2d_grad_weight,
)
from .pool import max_pool1d, max_pool1d_backward, max_pool2d, max_pool2d_backward

__version__ = "0.1.0"

__all__ = [
    "conv1d",
    "conv1d_grad_bias",
    "conv1d_grad_input",
    "conv1d_grad_weight",
    "conv2d",
    "conv2d_grad_bias",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "max_pool1d",
    "max_pool1d_backward",
    "max_pool2d",
    "max_pool2d_backward",
]
