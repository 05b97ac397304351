"""The compute backend behind the layer classes: ``"numba"`` or ``"numpy"``.

``"numba"`` (the default) is fastconv's own functional API (``fastconv.conv2d``
and friends, Numba kernels); ``"numpy"`` is :mod:`fastconv.reference`, the
plain NumPy implementation with the same function names and signatures
(less pooling's ``out=``).  A layer built with ``backend=None`` follows the
global default at each forward call; a layer built with a backend name keeps
it.

Examples
--------
>>> from fastconv import backend
>>> backend.get_default_backend()
'numba'
>>> previous = backend.set_default_backend("numpy")
>>> backend.get_backend().__name__
'fastconv.reference'
>>> _ = backend.set_default_backend(previous)
"""

import importlib

__all__ = ["BACKENDS", "get_backend", "get_default_backend", "resolve", "set_default_backend"]

#: Backend names and the module that implements each.
BACKENDS = {"numba": "fastconv", "numpy": "fastconv.reference"}

_default = "numba"


def _check_name(name):
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(
            f"backend must be one of {sorted(BACKENDS)} (or None for the global default); "
            f"got {name!r}"
        )
    return name


def set_default_backend(name):
    """Set the backend used by layers created with ``backend=None``.

    Parameters
    ----------
    name : {"numba", "numpy"}

    Returns
    -------
    str
        The previous default, so that callers can restore it.
    """
    global _default
    previous = _default
    _default = _check_name(name)
    return previous


def get_default_backend():
    """The current global default backend name, ``"numba"`` unless changed."""
    return _default


def resolve(name):
    """Return ``name`` validated, or the global default when ``name`` is None."""
    return _default if name is None else _check_name(name)


def get_backend(name=None):
    """The module implementing backend ``name`` (None: the global default).

    The module has ``conv2d``, ``conv2d_grad_input``, ``conv2d_grad_weight``,
    ``conv2d_grad_bias``, the ``conv1d`` equivalents, ``max_pool2d``,
    ``max_pool2d_backward``, ``max_pool1d`` and ``max_pool1d_backward``.  The
    ``"numpy"`` module computes in float64, does not validate its input and
    has no ``out=`` argument (fastconv's pooling functions have one).
    """
    return importlib.import_module(BACKENDS[resolve(name)])
