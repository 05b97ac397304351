"""The cs231n assignment layer API on fastconv's kernels.

``from fastconv.compat.cs231n import *`` can replace
``from cs231n.fast_layers import *`` and ``from cs231n.layers import *`` for
the functions below: same names, arguments, return values and cache
handling (a cache is passed unchanged from a forward to its backward).

* ``conv_forward_fast(x, w, b, conv_param) -> (out, cache)`` and
  ``conv_backward_fast(dout, cache) -> (dx, dw, db)``;
* ``max_pool_forward_fast(x, pool_param) -> (out, cache)`` and
  ``max_pool_backward_fast(dout, cache) -> dx``;
* the ``_naive`` names of those four (aliases of the same functions);
* ``conv_relu_forward`` / ``conv_relu_backward`` and
  ``conv_relu_pool_forward`` / ``conv_relu_pool_backward`` from
  ``cs231n.layer_utils``.

Differences from the originals, all in the direction of fewer failures:
the output size is floored when the padded input does not divide evenly by
the stride (the original fast conv raises instead); max-pooling works for
any stride, including overlapping windows (the original fast path assumes
non-overlapping square windows); a tie inside a pooling window sends the
whole gradient to the first maximum in row-major order.  Caches are
``(x, w, b, conv_param)`` for convolution, as the naive version's, and
``(x, pool_param, argmax_indices)`` for max-pooling; the backward functions
also accept the naive version's ``(x, pool_param)`` cache (they recompute the
argmax) and the original fast conv's 5-tuple cache.

Results have the promoted dtype of the inputs: float64 for the float64
arrays the assignments use.
"""

import numpy as np

from .. import _validation as v
from ..conv import conv2d, conv2d_grad_bias, conv2d_grad_input, conv2d_grad_weight
from ..pool import max_pool2d, max_pool2d_backward

__all__ = [
    "conv_backward_fast",
    "conv_backward_naive",
    "conv_forward_fast",
    "conv_forward_naive",
    "conv_relu_backward",
    "conv_relu_forward",
    "conv_relu_pool_backward",
    "conv_relu_pool_forward",
    "max_pool_backward_fast",
    "max_pool_backward_naive",
    "max_pool_forward_fast",
    "max_pool_forward_naive",
]


def _param(dict_name, params, key):
    if not isinstance(params, dict):
        raise TypeError(f"{dict_name} must be a dict; got {params!r}")
    if key not in params:
        raise KeyError(f"{dict_name} has no {key!r} entry; got keys {sorted(params)}")
    return v.as_int(f"{dict_name}[{key!r}]", params[key])


def _conv_param(conv_param):
    stride = _param("conv_param", conv_param, "stride")
    pad = _param("conv_param", conv_param, "pad")
    if stride < 1:
        raise ValueError(f"conv_param['stride'] must be positive; got {stride}")
    if pad < 0:
        raise ValueError(f"conv_param['pad'] must be non-negative; got {pad}")
    return stride, pad


def _pool_param(pool_param):
    values = tuple(_param("pool_param", pool_param, k)
                   for k in ("pool_height", "pool_width", "stride"))
    for key, value in zip(("pool_height", "pool_width", "stride"), values):
        if value < 1:
            raise ValueError(f"pool_param[{key!r}] must be positive; got {value}")
    return values


def _check_conv_arrays(x, w, b):
    x, w, b = (v.as_array(n, a) for n, a in (("x", x), ("w", w), ("b", b)))
    v.check_ndim("x", x, 4, "(N, C, H, W)")
    v.check_ndim("w", w, 4, "(F, C, HH, WW)")
    if w.shape[1] != x.shape[1]:
        raise ValueError(
            f"w has shape {w.shape}, whose C = {w.shape[1]} does not match x's C = {x.shape[1]} "
            f"(x.shape = {x.shape})"
        )
    if b.shape != (w.shape[0],):
        raise ValueError(f"b must have shape (F,) = ({w.shape[0]},); got shape {b.shape}")
    return x, w, b


def conv_forward_fast(x, w, b, conv_param):
    """Convolution forward pass, as cs231n's ``conv_forward_fast`` / ``conv_forward_naive``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (F, C, HH, WW)
    b : ndarray, shape (F,)
    conv_param : dict
        ``'stride'``: int, ``'pad'``: int (zero padding on every side).

    Returns
    -------
    out : ndarray, shape (N, F, H', W')
        ``H' = 1 + (H + 2 * pad - HH) // stride``, likewise W'.
    cache : tuple
        ``(x, w, b, conv_param)``.
    """
    stride, pad = _conv_param(conv_param)
    x, w, b = _check_conv_arrays(x, w, b)
    out = conv2d(x, w, b, stride=stride, padding=pad)
    return out, (x, w, b, conv_param)


def conv_backward_fast(dout, cache):
    """Convolution backward pass, as cs231n's ``conv_backward_fast`` / ``conv_backward_naive``.

    Parameters
    ----------
    dout : ndarray, shape (N, F, H', W')
        Upstream derivatives.
    cache : tuple
        From :func:`conv_forward_fast`: ``(x, w, b, conv_param)``.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
    dw : ndarray, shape (F, C, HH, WW)
    db : ndarray, shape (F,)
    """
    if not isinstance(cache, tuple) or len(cache) not in (4, 5):
        raise TypeError(
            "cache must be the (x, w, b, conv_param) tuple returned by conv_forward_fast"
        )
    x, w, _, conv_param = cache[:4]
    stride, pad = _conv_param(conv_param)
    dout = v.as_array("dout", dout)
    dx = conv2d_grad_input(np.shape(x), w, dout, stride=stride, padding=pad)
    dw = conv2d_grad_weight(x, np.shape(w), dout, stride=stride, padding=pad)
    db = conv2d_grad_bias(dout)
    return dx, dw, db


def max_pool_forward_fast(x, pool_param):
    """Max-pooling forward pass, as cs231n's ``max_pool_forward_fast`` / ``_naive``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    pool_param : dict
        ``'pool_height'``, ``'pool_width'``, ``'stride'``: ints.  Any stride
        works, including ``stride < pool size`` (overlapping windows).

    Returns
    -------
    out : ndarray, shape (N, C, H', W')
        ``H' = 1 + (H - pool_height) // stride``, likewise W'.
    cache : tuple
        ``(x, pool_param, argmax_indices)``.
    """
    ph, pw, stride = _pool_param(pool_param)
    out, indices = max_pool2d(x, (ph, pw), stride=stride)
    return out, (x, pool_param, indices)


def max_pool_backward_fast(dout, cache):
    """Max-pooling backward pass, as cs231n's ``max_pool_backward_fast`` / ``_naive``.

    Parameters
    ----------
    dout : ndarray, shape (N, C, H', W')
    cache : tuple
        ``(x, pool_param, argmax_indices)`` from :func:`max_pool_forward_fast`,
        or a naive ``(x, pool_param)`` cache.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
        Each upstream derivative goes to the first maximum of its window;
        overlapping windows add up.
    """
    if not isinstance(cache, tuple) or len(cache) not in (2, 3):
        raise TypeError(
            "cache must be the (x, pool_param, indices) tuple returned by max_pool_forward_fast"
        )
    x, pool_param = cache[:2]
    if len(cache) == 3:
        indices = cache[2]
    else:
        indices = max_pool_forward_fast(x, pool_param)[1][2]
    return max_pool2d_backward(dout, indices, np.shape(x))


conv_forward_naive = conv_forward_fast
conv_backward_naive = conv_backward_fast
max_pool_forward_naive = max_pool_forward_fast
max_pool_backward_naive = max_pool_backward_fast


def _relu_forward(x):
    return np.maximum(x, 0), x


def _relu_backward(dout, x):
    return dout * (x > 0)


def conv_relu_forward(x, w, b, conv_param):
    """Convolution then ReLU, as cs231n's ``layer_utils.conv_relu_forward``.

    Returns
    -------
    out : ndarray, shape (N, F, H', W')
    cache : tuple
        ``(conv_cache, relu_cache)``; ``relu_cache`` is the convolution output.
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = _relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout, cache):
    """Backward pass of :func:`conv_relu_forward`; returns ``(dx, dw, db)``."""
    conv_cache, relu_cache = cache
    return conv_backward_fast(_relu_backward(dout, relu_cache), conv_cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """Convolution, ReLU, max-pool, as cs231n's ``layer_utils.conv_relu_pool_forward``.

    Returns
    -------
    out : ndarray
    cache : tuple
        ``(conv_cache, relu_cache, pool_cache)``.
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = _relu_forward(a)
    out, pool_cache = max_pool_forward_fast(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache):
    """Backward pass of :func:`conv_relu_pool_forward`; returns ``(dx, dw, db)``."""
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward_fast(dout, pool_cache)
    return conv_backward_fast(_relu_backward(ds, relu_cache), conv_cache)
