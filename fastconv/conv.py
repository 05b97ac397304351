"""Public convolution functions: validate, coerce, dispatch to ``fastconv.kernels``.

Semantics and argument order follow ``torch.nn.functional.conv2d`` /
``conv1d`` and ``torch.nn.grad.conv2d_input`` / ``conv2d_weight``: NCHW
layout, cross-correlation, stride/padding/dilation as int or pair, padding
also ``'valid'`` or ``'same'``.  Results have the promoted dtype of the
inputs (float32 or float64); inputs are never modified.
"""

from . import _results, kernels
from . import _validation as v

_LAYOUT2 = {"x": "(N, C, H, W)", "weight": "(K, C/groups, R, S)", "grad_output": "(N, K, P, Q)"}
_LAYOUT1 = {"x": "(N, C, L)", "weight": "(K, C/groups, S)", "grad_output": "(N, K, Lout)"}


def _array(name, value, spatial):
    layout = (_LAYOUT2 if spatial == 2 else _LAYOUT1)[name]
    arr = v.as_array(name, value)
    v.check_ndim(name, arr, spatial + 2, layout)
    v.check_nonempty(name, arr, layout)
    return arr


def _lift(arr, spatial):
    """View a 1-D-spatial array (N, C, L) as (N, C, 1, L)."""
    return arr[:, :, None, :] if spatial == 1 else arr


def _shape(name, shape, spatial):
    layout = (_LAYOUT2 if spatial == 2 else _LAYOUT1)["x" if name == "input_shape" else "weight"]
    return v.as_shape(name, shape, spatial + 2, layout)


def _forward(x, weight, bias, stride, padding, dilation, groups, spatial):
    x = _array("x", x, spatial)
    weight = _array("weight", weight, spatial)
    geo = v.conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups, spatial)
    arrays = [x, weight]
    if bias is not None:
        bias = v.as_array("bias", bias)
        if bias.shape != (geo.K,):
            raise ValueError(
                f"bias must have shape (K,) = ({geo.K},) to match weight; got shape {bias.shape}"
            )
        arrays.append(bias)
    dtype = v.result_dtype(*arrays)
    xk = v.as_kernel_array(_lift(x, spatial), dtype)
    wk = v.as_kernel_array(_lift(weight, spatial), dtype)
    bk = None if bias is None else v.as_kernel_array(bias, dtype)
    out = _results.empty(geo.output_shape, dtype)
    kernels.conv2d_forward(xk, wk, bk, out, geo.stride, geo.pad_top_left, geo.dilation, geo.groups)
    return out[:, :, 0, :] if spatial == 1 else out


def _grad_input(input_shape, weight, grad_output, stride, padding, dilation, groups, spatial):
    input_shape = _shape("input_shape", input_shape, spatial)
    weight = _array("weight", weight, spatial)
    grad_output = _array("grad_output", grad_output, spatial)
    geo = v.conv_geometry(input_shape, weight.shape, stride, padding, dilation, groups, spatial)
    v.check_grad_output(grad_output, _unlift_shape(geo.output_shape, spatial))
    dtype = v.result_dtype(weight, grad_output)
    wk = v.as_kernel_array(_lift(weight, spatial), dtype)
    gk = v.as_kernel_array(_lift(grad_output, spatial), dtype)
    grad_x = _results.empty(geo.input_shape, dtype)
    kernels.conv2d_grad_input(gk, wk, grad_x, geo.stride, geo.pad_top_left, geo.dilation, geo.groups)
    return grad_x[:, :, 0, :] if spatial == 1 else grad_x


def _grad_weight(x, weight_shape, grad_output, stride, padding, dilation, groups, spatial):
    x = _array("x", x, spatial)
    weight_shape = _shape("weight_shape", weight_shape, spatial)
    grad_output = _array("grad_output", grad_output, spatial)
    geo = v.conv_geometry(x.shape, weight_shape, stride, padding, dilation, groups, spatial)
    v.check_grad_output(grad_output, _unlift_shape(geo.output_shape, spatial))
    dtype = v.result_dtype(x, grad_output)
    xk = v.as_kernel_array(_lift(x, spatial), dtype)
    gk = v.as_kernel_array(_lift(grad_output, spatial), dtype)
    grad_w = _results.empty(geo.weight_shape, dtype)
    kernels.conv2d_grad_weight(xk, gk, grad_w, geo.stride, geo.pad_top_left, geo.dilation, geo.groups)
    return grad_w[:, :, 0, :] if spatial == 1 else grad_w


def _grad_bias(grad_output, spatial):
    grad_output = _array("grad_output", grad_output, spatial)
    dtype = v.result_dtype(grad_output)
    # C order first, so every memory layout sums in the same order (same bits)
    g = v.as_kernel_array(grad_output, dtype)
    return g.sum(axis=(0, 2, 3) if spatial == 2 else (0, 2))


def _unlift_shape(shape, spatial):
    return (shape[0], shape[1], shape[3]) if spatial == 1 else shape


# --------------------------------------------------------------------------- 2-D


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
    weight : array_like, shape (K, C // groups, R, S)
    bias : array_like, shape (K,), optional
    stride : int or (int, int), default 1
    padding : int, (int, int), 'valid' or 'same', default 0
        Zero padding on both sides of each spatial axis.  'same' needs stride 1;
        an odd total padding puts the extra row/column at the bottom/right.
    dilation : int or (int, int), default 1
    groups : int, default 1
        C and K must both be divisible by ``groups``.

    Returns
    -------
    ndarray, shape (N, K, P, Q), C-contiguous
        ``P = (H + pad_top + pad_bottom - dilation[0]*(R-1) - 1) // stride[0] + 1``,
        likewise Q.  dtype float32 if every input is float32, else float64.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> fastconv.conv2d(x, np.ones((1, 1, 2, 2)))[0, 0]
    array([[ 8., 12.],
           [20., 24.]])
    """
    return _forward(x, weight, bias, stride, padding, dilation, groups, 2)


def conv2d_grad_input(input_shape, weight, grad_output, stride=1, padding=0, dilation=1,
                      groups=1):
    """Gradient of :func:`conv2d` with respect to its input, as ``torch.nn.grad.conv2d_input``.

    Parameters
    ----------
    input_shape : tuple of 4 ints
        ``(N, C, H, W)`` of the forward input.
    weight : array_like, shape (K, C // groups, R, S)
    grad_output : array_like, shape (N, K, P, Q)
        dL/d(output); must be the shape the forward pass produces.
    stride, padding, dilation, groups
        As given to :func:`conv2d`.

    Returns
    -------
    ndarray, shape input_shape
        dL/dx.  Input rows/columns that no window covers get zero.
    """
    return _grad_input(input_shape, weight, grad_output, stride, padding, dilation, groups, 2)


def conv2d_grad_weight(x, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of :func:`conv2d` with respect to its weight, as ``torch.nn.grad.conv2d_weight``.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        The forward input.
    weight_shape : tuple of 4 ints
        ``(K, C // groups, R, S)``.
    grad_output : array_like, shape (N, K, P, Q)
    stride, padding, dilation, groups
        As given to :func:`conv2d`.

    Returns
    -------
    ndarray, shape weight_shape
        ``dW[k, c, r, s] = sum_{n, p, q} dY[n, k, p, q] * Xpad[n, c', p*sh + r*dh, q*sw + s*dw]``
        with ``c' = (k // (K/groups)) * (C/groups) + c``.
    """
    return _grad_weight(x, weight_shape, grad_output, stride, padding, dilation, groups, 2)


def conv2d_grad_bias(grad_output):
    """Gradient of :func:`conv2d` with respect to its bias.

    Parameters
    ----------
    grad_output : array_like, shape (N, K, P, Q)

    Returns
    -------
    ndarray, shape (K,)
        ``grad_output`` summed over N, P and Q.
    """
    return _grad_bias(grad_output, 2)


# --------------------------------------------------------------------------- 1-D


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution (cross-correlation), as ``torch.nn.functional.conv1d``.

    Parameters
    ----------
    x : array_like, shape (N, C, L)
    weight : array_like, shape (K, C // groups, S)
    bias : array_like, shape (K,), optional
    stride, dilation : int, default 1
    padding : int, 'valid' or 'same', default 0
    groups : int, default 1

    Returns
    -------
    ndarray, shape (N, K, Lout)
        ``Lout = (L + 2*padding - dilation*(S-1) - 1) // stride + 1``.
    """
    return _forward(x, weight, bias, stride, padding, dilation, groups, 1)


def conv1d_grad_input(input_shape, weight, grad_output, stride=1, padding=0, dilation=1,
                      groups=1):
    """Gradient of :func:`conv1d` with respect to its input.

    Parameters
    ----------
    input_shape : tuple of 3 ints, (N, C, L)
    weight : array_like, shape (K, C // groups, S)
    grad_output : array_like, shape (N, K, Lout)

    Returns
    -------
    ndarray, shape input_shape
    """
    return _grad_input(input_shape, weight, grad_output, stride, padding, dilation, groups, 1)


def conv1d_grad_weight(x, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of :func:`conv1d` with respect to its weight.

    Parameters
    ----------
    x : array_like, shape (N, C, L)
    weight_shape : tuple of 3 ints, (K, C // groups, S)
    grad_output : array_like, shape (N, K, Lout)

    Returns
    -------
    ndarray, shape weight_shape
    """
    return _grad_weight(x, weight_shape, grad_output, stride, padding, dilation, groups, 1)


def conv1d_grad_bias(grad_output):
    """Gradient of :func:`conv1d` with respect to its bias.

    Parameters
    ----------
    grad_output : array_like, shape (N, K, Lout)

    Returns
    -------
    ndarray, shape (K,)
    """
    return _grad_bias(grad_output, 1)
