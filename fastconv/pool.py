"""Public max-pooling functions: validate, coerce, dispatch to ``fastconv.kernels``.

Semantics follow ``torch.nn.functional.max_pool2d(..., return_indices=True)``
on the CPU, including its tie, NaN and ``ceil_mode`` rules.
"""

import numpy as np

from . import _validation as v
from . import kernels

_LAYOUT = {2: "(N, C, H, W)", 1: "(N, C, L)"}


def _input(name, value, spatial):
    arr = v.as_array(name, value)
    v.check_ndim(name, arr, spatial + 2, _LAYOUT[spatial])
    v.check_nonempty(name, arr, _LAYOUT[spatial])
    return arr


def _forward(x, kernel_size, stride, padding, dilation, ceil_mode, spatial):
    x = _input("x", x, spatial)
    geo = v.pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode, spatial)
    dtype = v.result_dtype(x)
    xk = v.as_kernel_array(x[:, :, None, :] if spatial == 1 else x, dtype)
    out = np.empty(geo.output_shape, dtype)
    indices = np.empty(geo.output_shape, np.int64)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = geo.kernel, geo.stride, geo.padding, geo.dilation
    kernels.max_pool2d_forward(xk, out, indices, kh, kw, sh, sw, ph, pw, dh, dw)
    if spatial == 1:
        return out[:, :, 0, :], indices[:, :, 0, :]
    return out, indices


def _backward(grad_output, indices, input_shape, spatial):
    layout = _LAYOUT[spatial]
    input_shape = v.as_shape("input_shape", input_shape, spatial + 2, layout)
    grad_output = _input("grad_output", grad_output, spatial)
    if grad_output.shape[:2] != input_shape[:2]:
        raise ValueError(
            f"grad_output has shape {grad_output.shape}, whose (N, C) = "
            f"{grad_output.shape[:2]} does not match input_shape {input_shape}"
        )
    plane = int(np.prod(input_shape[2:]))
    idx = v.as_indices(indices, grad_output.shape, plane)
    dtype = v.result_dtype(grad_output)
    if spatial == 1:
        gk = v.as_kernel_array(grad_output[:, :, None, :], dtype)
        idx = idx[:, :, None, :]
        full_shape = (input_shape[0], input_shape[1], 1, input_shape[2])
    else:
        gk = v.as_kernel_array(grad_output, dtype)
        full_shape = input_shape
    grad_x = np.empty(full_shape, dtype)  # the kernel zeroes each plane itself, in cache
    kernels.max_pool2d_backward(gk, idx, grad_x)
    return grad_x[:, :, 0, :] if spatial == 1 else grad_x


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """2-D max-pooling that also returns the argmax, as PyTorch's ``return_indices=True``.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int or (int, int), default 0
        Implicit -inf padding, at most ``kernel_size // 2`` per axis.
    dilation : int or (int, int), default 1
    ceil_mode : bool, default False
        Round the output size up, dropping a last window that would start
        inside the right/bottom padding.

    Returns
    -------
    out : ndarray, shape (N, C, P, Q), x's dtype (float32 or float64)
    indices : ndarray, shape (N, C, P, Q), int64
        Flat position ``h*W + w`` of each window's maximum in the unpadded
        ``H x W`` plane of its ``(n, c)``.  Ties go to the first maximum in
        row-major window order; a window holding NaN outputs NaN with the index
        of its last NaN; an all -inf window reports its first in-bounds element.
    """
    return _forward(x, kernel_size, stride, padding, dilation, ceil_mode, 2)


def max_pool2d_backward(grad_output, indices, input_shape):
    """Gradient of :func:`max_pool2d`: each upstream gradient goes to its argmax.

    Parameters
    ----------
    grad_output : array_like, shape (N, C, P, Q)
    indices : array_like of int, shape (N, C, P, Q)
        As returned by :func:`max_pool2d`; each in ``[0, H*W)``.
    input_shape : tuple of 4 ints, (N, C, H, W)

    Returns
    -------
    ndarray, shape input_shape
        Zero except at argmax positions; where windows overlap, the gradients
        of every window that picked a position are summed.
    """
    return _backward(grad_output, indices, input_shape, 2)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """1-D max-pooling with argmax, as ``torch.nn.functional.max_pool1d(..., return_indices=True)``.

    Parameters
    ----------
    x : array_like, shape (N, C, L)
    kernel_size, stride, padding, dilation : int
    ceil_mode : bool, default False

    Returns
    -------
    out : ndarray, shape (N, C, Lout)
    indices : ndarray, shape (N, C, Lout), int64
        Position in the unpadded length L; same tie/NaN rules as :func:`max_pool2d`.
    """
    return _forward(x, kernel_size, stride, padding, dilation, ceil_mode, 1)


def max_pool1d_backward(grad_output, indices, input_shape):
    """Gradient of :func:`max_pool1d`.

    Parameters
    ----------
    grad_output : array_like, shape (N, C, Lout)
    indices : array_like of int, shape (N, C, Lout), each in ``[0, L)``
    input_shape : tuple of 3 ints, (N, C, L)

    Returns
    -------
    ndarray, shape input_shape
    """
    return _backward(grad_output, indices, input_shape, 1)
