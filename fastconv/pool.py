"""Public max-pooling functions: validate, coerce, dispatch to ``fastconv.kernels``.

Semantics follow ``torch.nn.functional.max_pool2d(..., return_indices=True)``
on the CPU, including its tie, NaN and ``ceil_mode`` rules.
"""

import numpy as np

from . import _results, kernels
from . import _validation as v
from .conv import _lift

_LAYOUT = {2: "(N, C, H, W)", 1: "(N, C, L)"}
_INDEX = np.dtype(np.int64)


def _input(name, value, spatial):
    arr = v.as_array(name, value)
    v.check_ndim(name, arr, spatial + 2, _LAYOUT[spatial])
    v.check_nonempty(name, arr, _LAYOUT[spatial])
    return arr


def _forward(x, kernel_size, stride, padding, dilation, ceil_mode, spatial, out):
    x = _input("x", x, spatial)
    geo = v.pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode, spatial)
    dtype = v.result_dtype(x)
    xk = v.as_kernel_array(_lift(x, spatial), dtype)
    if out is None:
        values = _results.empty(geo.output_shape, dtype)
        indices = _results.empty(geo.output_shape, _INDEX)
        result = (values, indices) if spatial == 2 else (values[:, :, 0, :], indices[:, :, 0, :])
    else:
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError("out must be a tuple (values, indices) of two arrays; "
                            f"got {type(out).__name__}")
        shape = geo.output_shape if spatial == 2 else geo.output_shape[:2] + geo.output_shape[3:]
        v.check_out("out[0]", out[0], shape, dtype, {"x": xk})
        v.check_out("out[1]", out[1], shape, np.dtype(np.int64), {"x": xk, "out[0]": out[0]})
        result = out
        values, indices = _lift(out[0], spatial), _lift(out[1], spatial)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = geo.kernel, geo.stride, geo.padding, geo.dilation
    kernels.max_pool2d_forward(xk, values, indices, kh, kw, sh, sw, ph, pw, dh, dw)
    return result


def _backward(grad_output, indices, input_shape, spatial, out):
    layout = _LAYOUT[spatial]
    input_shape = v.as_shape("input_shape", input_shape, spatial + 2, layout)
    grad_output = _input("grad_output", grad_output, spatial)
    if grad_output.shape[:2] != input_shape[:2]:
        raise ValueError(
            f"grad_output has shape {grad_output.shape}, whose (N, C) = "
            f"{grad_output.shape[:2]} does not match input_shape {input_shape}"
        )
    plane = int(np.prod(input_shape[2:]))
    # A result of our own is garbage if an index is out of range, so the
    # kernel checks them as it reads them; the caller's out= is left alone.
    idx = _lift(v.as_indices(indices, grad_output.shape, plane, check_range=out is not None),
                spatial)
    dtype = v.result_dtype(grad_output)
    gk = v.as_kernel_array(_lift(grad_output, spatial), dtype)
    if out is None:
        grad_x = _results.empty(input_shape, dtype)  # the kernel zeroes each plane, in cache
    else:
        grad_x = v.check_out("out", out, input_shape, dtype,
                             {"grad_output": gk, "indices": idx})
    if kernels.max_pool2d_backward(gk, idx, _lift(grad_x, spatial)):
        raise v.index_range_error(idx, plane)
    return grad_x


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
               out=None):
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
    out : tuple of two ndarrays, optional
        ``(values, indices)`` to write the result into instead of allocating
        it: shape (N, C, P, Q), C-contiguous, writeable, of the result's
        dtype (x's float dtype; int64 for ``indices``) and sharing no memory
        with ``x`` or each other.  Their previous contents are ignored.

    Returns
    -------
    values : ndarray, shape (N, C, P, Q), x's dtype (float32 or float64)
    indices : ndarray, shape (N, C, P, Q), int64
        Flat position ``h*W + w`` of each window's maximum in the unpadded
        ``H x W`` plane of its ``(n, c)``.  Ties go to the first maximum in
        row-major window order; a window holding NaN outputs NaN with the index
        of its last NaN; an all -inf window reports its first in-bounds element.

    When ``out`` is given, its two arrays are returned.
    """
    return _forward(x, kernel_size, stride, padding, dilation, ceil_mode, 2, out)


def max_pool2d_backward(grad_output, indices, input_shape, *, out=None):
    """Gradient of :func:`max_pool2d`: each upstream gradient goes to its argmax.

    Parameters
    ----------
    grad_output : array_like, shape (N, C, P, Q)
    indices : array_like of int, shape (N, C, P, Q)
        As returned by :func:`max_pool2d`; each in ``[0, H*W)``.
    input_shape : tuple of 4 ints, (N, C, H, W)
    out : ndarray, optional
        Array to write the result into instead of allocating it: shape
        ``input_shape``, C-contiguous, writeable, of the result's dtype
        (grad_output's float dtype) and sharing no memory with
        ``grad_output`` or ``indices``.  Its previous contents are ignored.
        Large results are recycled without it too (see the README), but
        ``out=`` also spares the allocation.

    Returns
    -------
    ndarray, shape input_shape
        Zero except at argmax positions; where windows overlap, the gradients
        of every window that picked a position are summed.  ``out`` itself
        when given.
    """
    return _backward(grad_output, indices, input_shape, 2, out)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
               out=None):
    """1-D max-pooling with argmax, as ``torch.nn.functional.max_pool1d(..., return_indices=True)``.

    Parameters
    ----------
    x : array_like, shape (N, C, L)
    kernel_size, stride, padding, dilation : int
    ceil_mode : bool, default False
    out : tuple of two ndarrays, optional
        ``(values, indices)``, shape (N, C, Lout); as in :func:`max_pool2d`.

    Returns
    -------
    values : ndarray, shape (N, C, Lout)
    indices : ndarray, shape (N, C, Lout), int64
        Position in the unpadded length L; same tie/NaN rules as :func:`max_pool2d`.
    """
    return _forward(x, kernel_size, stride, padding, dilation, ceil_mode, 1, out)


def max_pool1d_backward(grad_output, indices, input_shape, *, out=None):
    """Gradient of :func:`max_pool1d`.

    Parameters
    ----------
    grad_output : array_like, shape (N, C, Lout)
    indices : array_like of int, shape (N, C, Lout), each in ``[0, L)``
    input_shape : tuple of 3 ints, (N, C, L)
    out : ndarray, optional
        Shape ``input_shape``; as in :func:`max_pool2d_backward`.

    Returns
    -------
    ndarray, shape input_shape
        ``out`` itself when given.
    """
    return _backward(grad_output, indices, input_shape, 1, out)
