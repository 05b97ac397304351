"""fastconv: Numba-compiled CPU kernels for convolutional networks on NumPy arrays.

The functional API mirrors ``torch.nn.functional`` (NCHW layout,
cross-correlation) and works on NumPy arrays of float32 or float64.
"""

import importlib.util as _util
import os as _os
import sys as _sys

# In a source checkout the kernels live in ../kernels, not in fastconv/kernels
# (setuptools maps them there only when installing).  Running from the repo
# root puts this source tree first on sys.path even when fastconv is installed
# normally, so register the kernels package by hand in that one case.
_here = _os.path.dirname(_os.path.abspath(__file__))
_checkout_kernels = _os.path.join(_os.path.dirname(_here), "kernels", "__init__.py")
if "fastconv.kernels" not in _sys.modules and not _os.path.isdir(_os.path.join(_here, "kernels")) \
        and _util.find_spec("fastconv.kernels") is None and _os.path.isfile(_checkout_kernels):
    _spec = _util.spec_from_file_location(
        "fastconv.kernels", _checkout_kernels,
        submodule_search_locations=[_os.path.dirname(_checkout_kernels)])
    _module = _util.module_from_spec(_spec)
    _sys.modules["fastconv.kernels"] = _module
    _spec.loader.exec_module(_module)
    kernels = _module

from ._results import release_memory
from ._threads import set_num_threads
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
    "release_memory",
    "set_num_threads",
]
