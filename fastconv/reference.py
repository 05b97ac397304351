"""Plain NumPy reference implementations of fastconv's public functions.

Every function here is written directly from the mathematical definition and
imports nothing from :mod:`fastconv`: this module is the oracle the Numba
kernels are tested against, the baseline for benchmarks and the ``"numpy"``
backend of the layer classes.  It is vectorised (``sliding_window_view``
with ``tensordot``/``matmul``; Python loops run only over groups or kernel
taps) but favours clarity over speed.

Conventions (those of PyTorch):

* layout is NCHW for 2-D (``(N, C, H, W)``) and NCL for 1-D (``(N, C, L)``);
* convolution is cross-correlation, weights are ``(K, C // groups, R, S)``
  (1-D: ``(K, C // groups, S)``);
* ``stride``, ``padding`` and ``dilation`` accept an int or a tuple with one
  value per spatial dimension; convolution ``padding`` also accepts
  ``'valid'`` (no padding) and ``'same'`` (stride 1 only, total padding
  ``dilation * (kernel - 1)`` per dimension, the odd extra row/column going
  to the bottom/right);
* all computation is in float64 and every floating-point result is a new
  float64 array; max-pool indices are int64.

Inputs are assumed valid: nothing is checked beyond parsing the arguments.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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


# --------------------------------------------------------------------------
# Argument parsing
# --------------------------------------------------------------------------

def _tuple(value, n):
    """Expand an int (or a 1-sequence) to an n-tuple of Python ints."""
    if np.ndim(value) == 0:
        return (int(value),) * n
    values = tuple(int(v) for v in value)
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ValueError(f"expected an int or {n} values, got {value!r}")
    return values


def _conv_padding(padding, kernel, dilation):
    """Resolve conv ``padding`` to ``((top, bottom), (left, right))``.

    ``kernel`` and ``dilation`` are pairs; they are only needed for 'same'.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"padding must be 'valid', 'same' or ints, got {padding!r}")
    ph, pw = _tuple(padding, 2)
    return (ph, ph), (pw, pw)


def _padding_1d(padding):
    """Lift 1-D conv ``padding`` to its 2-D form with no padding along H."""
    if isinstance(padding, str):
        return padding          # 'same' / 'valid' give zero padding for R = 1
    return (0, _tuple(padding, 1)[0])


def _conv_out_size(size, pad, kernel, stride, dilation):
    """PyTorch's convolution output length along one dimension."""
    return (size + pad[0] + pad[1] - dilation * (kernel - 1) - 1) // stride + 1


def _tap_slice(start, stride, count):
    """Slice selecting ``count`` positions ``start + i * stride``."""
    return slice(start, start + stride * (count - 1) + 1, stride)


def _f64(a):
    return np.asarray(a, dtype=np.float64)


# --------------------------------------------------------------------------
# 2-D convolution
# --------------------------------------------------------------------------

def _conv_geometry(input_shape, weight_shape, stride, padding, dilation):
    """Return (stride, dilation, pads, (P, Q)) for a 2-D convolution."""
    R, S = weight_shape[2:]
    stride = _tuple(stride, 2)
    dilation = _tuple(dilation, 2)
    pads = _conv_padding(padding, (R, S), dilation)
    H, W = input_shape[2:]
    P = _conv_out_size(H, pads[0], R, stride[0], dilation[0])
    Q = _conv_out_size(W, pads[1], S, stride[1], dilation[1])
    return stride, dilation, pads, (P, Q)


def _windows(x, kernel, stride, dilation, pads, out_size):
    """Zero-pad ``x`` and return its receptive fields as a view.

    Returns an array of shape (N, C, P, Q, R, S) whose ``[n, c, p, q, r, s]``
    entry is ``Xpad[n, c, p*sh + r*dh, q*sw + s*dw]``.
    """
    (R, S), (sh, sw), (dh, dw), (P, Q) = kernel, stride, dilation, out_size
    xp = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]))
    span = (dh * (R - 1) + 1, dw * (S - 1) + 1)
    win = sliding_window_view(xp, span, axis=(2, 3))
    return win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :P, :Q]


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    ``Y[n, k, p, q] = b[k] + sum_{c, r, s} W[k, c, r, s]
    * Xpad[n, g*Cg + c, p*sh + r*dh, q*sw + s*dw]`` where ``g = k // (K/groups)``,
    ``Cg = C / groups`` and ``Xpad`` is ``x`` zero-padded.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        Input, NCHW.
    weight : array_like, shape (K, C // groups, R, S)
        Filters.
    bias : array_like, shape (K,), optional
        Per-output-channel bias.
    stride, dilation : int or (int, int)
        Step between windows and between kernel taps, (vertical, horizontal).
    padding : int, (int, int), 'valid' or 'same'
        Zero padding on each side.  'same' (stride 1 only) pads a total of
        ``dilation * (kernel - 1)`` per dimension, the odd extra row/column at
        the bottom/right.
    groups : int
        Number of channel groups; C and K must be divisible by it.

    Returns
    -------
    ndarray, float64, shape (N, K, P, Q)
        ``P = (H + pad_top + pad_bottom - dh*(R-1) - 1) // sh + 1``, likewise Q.
    """
    x, weight = _f64(x), _f64(weight)
    stride, dilation, pads, out_size = _conv_geometry(
        x.shape, weight.shape, stride, padding, dilation)
    N, C = x.shape[:2]
    K, Cg, R, S = weight.shape
    Kg = K // groups
    win = _windows(x, (R, S), stride, dilation, pads, out_size)
    y = np.empty((N, K) + out_size)
    for g in range(groups):
        ks, cs = slice(g * Kg, (g + 1) * Kg), slice(g * Cg, (g + 1) * Cg)
        # (N, P, Q, Kg) = sum over c, r, s
        y_g = np.tensordot(win[:, cs], weight[ks], axes=([1, 4, 5], [1, 2, 3]))
        y[:, ks] = y_g.transpose(0, 3, 1, 2)
    if bias is not None:
        y += _f64(bias)[:, None, None]
    return y


def conv2d_grad_input(input_shape, weight, grad_output, stride=1, padding=0,
                      dilation=1, groups=1):
    """Gradient of :func:`conv2d` with respect to its input.

    ``dX[n, g*Cg + c, h, w] = sum dY[n, k, p, q] * W[k, c, r, s]`` over all
    ``(k in group g, p, q, r, s)`` with ``h + pad_top = p*sh + r*dh`` and
    ``w + pad_left = q*sw + s*dw``.  Computed by scatter-adding each kernel
    tap's contribution into a zero-padded buffer, then cropping the padding;
    input positions covered by no window get zero gradient.

    Parameters
    ----------
    input_shape : tuple of int
        (N, C, H, W), the shape of the forward input.
    weight : array_like, shape (K, C // groups, R, S)
        Filters.
    grad_output : array_like, shape (N, K, P, Q)
        Gradient of the loss with respect to the forward output.
    stride, padding, dilation, groups
        As in :func:`conv2d`.

    Returns
    -------
    ndarray, float64, shape input_shape
    """
    weight, dy = _f64(weight), _f64(grad_output)
    input_shape = tuple(int(d) for d in input_shape)
    (sh, sw), (dh, dw), pads, (P, Q) = _conv_geometry(
        input_shape, weight.shape, stride, padding, dilation)
    N, C, H, W = input_shape
    K, Cg, R, S = weight.shape
    Kg = K // groups
    dy_g = dy.reshape(N, groups, Kg, P * Q)
    w_g = weight.reshape(groups, Kg, Cg, R, S)
    dxp = np.zeros((N, C, H + sum(pads[0]), W + sum(pads[1])))
    for r in range(R):
        for s in range(S):
            # (N, G, Cg, P*Q) = sum over k of W[g, k, c, r, s] * dY[n, g, k, p, q]
            contrib = np.matmul(w_g[..., r, s].transpose(0, 2, 1), dy_g)
            # Within one tap the target positions are distinct: += is safe.
            dxp[:, :, _tap_slice(r * dh, sh, P), _tap_slice(s * dw, sw, Q)] += \
                contrib.reshape(N, C, P, Q)
    return dxp[:, :, pads[0][0]:pads[0][0] + H, pads[1][0]:pads[1][0] + W].copy()


def conv2d_grad_weight(x, weight_shape, grad_output, stride=1, padding=0,
                       dilation=1, groups=1):
    """Gradient of :func:`conv2d` with respect to its weight.

    ``dW[k, c, r, s] = sum_{n, p, q} dY[n, k, p, q]
    * Xpad[n, g*Cg + c, p*sh + r*dh, q*sw + s*dw]`` with ``g = k // (K/groups)``.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        The forward input.
    weight_shape : tuple of int
        (K, C // groups, R, S), the shape of the filters.
    grad_output : array_like, shape (N, K, P, Q)
        Gradient of the loss with respect to the forward output.
    stride, padding, dilation, groups
        As in :func:`conv2d`.

    Returns
    -------
    ndarray, float64, shape weight_shape
    """
    x, dy = _f64(x), _f64(grad_output)
    weight_shape = tuple(int(d) for d in weight_shape)
    stride, dilation, pads, out_size = _conv_geometry(
        x.shape, weight_shape, stride, padding, dilation)
    K, Cg, R, S = weight_shape
    Kg = K // groups
    win = _windows(x, (R, S), stride, dilation, pads, out_size)
    dw = np.empty(weight_shape)
    for g in range(groups):
        ks, cs = slice(g * Kg, (g + 1) * Kg), slice(g * Cg, (g + 1) * Cg)
        # (Kg, Cg, R, S) = sum over n, p, q
        dw[ks] = np.tensordot(dy[:, ks], win[:, cs], axes=([0, 2, 3], [0, 2, 3]))
    return dw


def conv2d_grad_bias(grad_output):
    """Gradient of :func:`conv2d` (or :func:`conv1d`) with respect to its bias.

    Parameters
    ----------
    grad_output : array_like, shape (N, K, P, Q) or (N, K, L)
        Gradient of the loss with respect to the forward output.

    Returns
    -------
    ndarray, float64, shape (K,)
        ``grad_output`` summed over every axis except axis 1.
    """
    dy = _f64(grad_output)
    return dy.sum(axis=(0,) + tuple(range(2, dy.ndim)))


# --------------------------------------------------------------------------
# 1-D convolution (lifted to 2-D with H = 1)
# --------------------------------------------------------------------------

def _lift_1d(stride, padding, dilation):
    return ((1, _tuple(stride, 1)[0]), _padding_1d(padding),
            (1, _tuple(dilation, 1)[0]))


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation, as ``torch.nn.functional.conv1d``.

    ``Y[n, k, l] = b[k] + sum_{c, s} W[k, c, s] * Xpad[n, g*Cg + c, l*st + s*d]``.

    Parameters
    ----------
    x : array_like, shape (N, C, L)
        Input, NCL.
    weight : array_like, shape (K, C // groups, S)
        Filters.
    bias : array_like, shape (K,), optional
        Per-output-channel bias.
    stride, dilation : int or (int,)
    padding : int, (int,), 'valid' or 'same'
        As in :func:`conv2d`, along the single spatial dimension.
    groups : int

    Returns
    -------
    ndarray, float64, shape (N, K, Lout)
        ``Lout = (L + 2*pad - d*(S-1) - 1) // st + 1`` ('same': ``Lout = L``).
    """
    st, pad, dil = _lift_1d(stride, padding, dilation)
    y = conv2d(_f64(x)[:, :, None, :], _f64(weight)[:, :, None, :], bias,
               st, pad, dil, groups)
    return y[:, :, 0, :]


def conv1d_grad_input(input_shape, weight, grad_output, stride=1, padding=0,
                      dilation=1, groups=1):
    """Gradient of :func:`conv1d` with respect to its input.

    Parameters
    ----------
    input_shape : tuple of int
        (N, C, L), the shape of the forward input.
    weight : array_like, shape (K, C // groups, S)
    grad_output : array_like, shape (N, K, Lout)
    stride, padding, dilation, groups
        As in :func:`conv1d`.

    Returns
    -------
    ndarray, float64, shape input_shape
    """
    N, C, L = (int(d) for d in input_shape)
    st, pad, dil = _lift_1d(stride, padding, dilation)
    dx = conv2d_grad_input((N, C, 1, L), _f64(weight)[:, :, None, :],
                           _f64(grad_output)[:, :, None, :], st, pad, dil, groups)
    return dx[:, :, 0, :]


def conv1d_grad_weight(x, weight_shape, grad_output, stride=1, padding=0,
                       dilation=1, groups=1):
    """Gradient of :func:`conv1d` with respect to its weight.

    Parameters
    ----------
    x : array_like, shape (N, C, L)
    weight_shape : tuple of int
        (K, C // groups, S).
    grad_output : array_like, shape (N, K, Lout)
    stride, padding, dilation, groups
        As in :func:`conv1d`.

    Returns
    -------
    ndarray, float64, shape weight_shape
    """
    K, Cg, S = (int(d) for d in weight_shape)
    st, pad, dil = _lift_1d(stride, padding, dilation)
    dw = conv2d_grad_weight(_f64(x)[:, :, None, :], (K, Cg, 1, S),
                            _f64(grad_output)[:, :, None, :], st, pad, dil, groups)
    return dw[:, :, 0, :]


def conv1d_grad_bias(grad_output):
    """Gradient of :func:`conv1d` with respect to its bias.

    Parameters
    ----------
    grad_output : array_like, shape (N, K, Lout)

    Returns
    -------
    ndarray, float64, shape (K,)
        ``grad_output`` summed over axes 0 and 2.
    """
    return conv2d_grad_bias(grad_output)


# --------------------------------------------------------------------------
# Max pooling
# --------------------------------------------------------------------------

def _pool_out_size(size, kernel, stride, pad, dilation, ceil_mode):
    """PyTorch's ``pooling_output_shape`` along one dimension."""
    out = (size + 2 * pad - dilation * (kernel - 1) - 1
           + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1        # the last window would start inside the right padding
    return out


def _first_in_bounds(out, stride, pad, dilation):
    """Per output position, the first tap position that is >= 0.

    This mirrors PyTorch's ``while (i0 < 0) i0 += dilation``.
    """
    start = np.arange(out) * stride - pad
    skipped = np.maximum(0, -(start // dilation))       # ceil(-start / d)
    return start + skipped * dilation


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode=False):
    """2-D max pooling with argmax indices, as
    ``torch.nn.functional.max_pool2d(..., return_indices=True)`` on CPU.

    Padding is implicit -inf: padded positions are never candidates.  Each
    window is scanned in row-major order from ``best = -inf`` and
    ``best_index`` = its first in-bounds element; an element is taken when
    ``v > best or isnan(v)``.  Hence ties go to the first maximum, a window
    containing NaN yields NaN with the index of its *last* NaN, and an all
    -inf window yields -inf with the index of its first in-bounds element.

    With dilation, a window can have no in-bounds element at all (e.g. H = 1,
    kh = 2, dh = 2, ph = 1: taps at rows -1 and 1).  Like PyTorch, its output
    is -inf and its index is ``h0*W + w0`` where ``h0``/``w0`` is the first tap
    position >= 0 along each dimension: a meaningless index, possibly outside
    the plane.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        Input, NCHW (any number of leading dimensions is accepted).
    kernel_size : int or (int, int)
        Window size (kh, kw).
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int or (int, int)
        Implicit -inf padding on each side.
    dilation : int or (int, int)
        Spacing between window elements.
    ceil_mode : bool
        Use ceil instead of floor for the output size; a last window that
        would start inside the right padding is dropped.

    Returns
    -------
    out : ndarray, float64, shape (N, C, P, Q)
        Window maxima (exact copies of input values).
        ``P = (H + 2*ph - dh*(kh-1) - 1 [+ sh-1 if ceil_mode]) // sh + 1``,
        minus one if ``ceil_mode`` and ``(P-1)*sh >= H + ph``; likewise Q.
    indices : ndarray, int64, shape (N, C, P, Q)
        Flat position ``h*W + w`` of each maximum in its unpadded H x W plane.
    """
    x = _f64(x)
    kh, kw = _tuple(kernel_size, 2)
    if stride is None or (np.ndim(stride) > 0 and len(stride) == 0):
        stride = (kh, kw)
    sh, sw = _tuple(stride, 2)
    ph, pw = _tuple(padding, 2)
    dh, dw = _tuple(dilation, 2)
    H, W = x.shape[-2:]
    P = _pool_out_size(H, kh, sh, ph, dh, ceil_mode)
    Q = _pool_out_size(W, kw, sw, pw, dw, ceil_mode)

    # -inf padding; in ceil_mode the last window may overhang the padding.
    bottom = max(ph, (P - 1) * sh + dh * (kh - 1) + 1 - H - ph)
    right = max(pw, (Q - 1) * sw + dw * (kw - 1) + 1 - W - pw)
    lead = ((0, 0),) * (x.ndim - 2)
    xp = np.pad(x, lead + ((ph, bottom), (pw, right)), constant_values=-np.inf)
    plane_index = np.arange(H * W, dtype=np.int64).reshape(H, W)
    index_p = np.pad(plane_index, ((ph, bottom), (pw, right)), constant_values=-1)

    best = np.full(x.shape[:-2] + (P, Q), -np.inf)
    h0 = _first_in_bounds(P, sh, ph, dh)
    w0 = _first_in_bounds(Q, sw, pw, dw)
    best_index = np.broadcast_to(h0[:, None] * W + w0[None, :], best.shape).copy()
    for i in range(kh):
        for j in range(kw):
            rows, cols = _tap_slice(i * dh, sh, P), _tap_slice(j * dw, sw, Q)
            v = xp[..., rows, cols]
            take = (v > best) | np.isnan(v)     # padded -inf is never taken
            best = np.where(take, v, best)
            best_index = np.where(take, index_p[rows, cols], best_index)
    return best, best_index


def max_pool2d_backward(grad_output, indices, input_shape):
    """Gradient of :func:`max_pool2d` with respect to its input.

    Each upstream gradient is routed to its window's argmax; windows that
    share an argmax accumulate.  Indices outside the H x W plane (windows with
    no in-bounds element, see :func:`max_pool2d`) contribute nothing; PyTorch
    instead writes out of bounds for them.

    Parameters
    ----------
    grad_output : array_like, shape (N, C, P, Q)
        Gradient of the loss with respect to the pooled output.
    indices : array_like of int, shape (N, C, P, Q)
        Argmax indices returned by :func:`max_pool2d` (flat ``h*W + w``).
    input_shape : tuple of int
        (N, C, H, W), the shape of the forward input.

    Returns
    -------
    ndarray, float64, shape input_shape
    """
    input_shape = tuple(int(d) for d in input_shape)
    dy = _f64(grad_output)
    idx = np.asarray(indices, dtype=np.int64)
    plane = input_shape[-2] * input_shape[-1]
    n_planes = int(np.prod(input_shape[:-2], dtype=np.int64))
    dy = dy.reshape(n_planes, -1)
    idx = idx.reshape(n_planes, -1)
    # A window with no in-bounds element has an index outside the plane (see
    # max_pool2d); it has no argmax, so its gradient goes nowhere.
    valid = (idx >= 0) & (idx < plane)
    flat = idx + plane * np.arange(n_planes)[:, None]
    dx = np.bincount(flat[valid], weights=dy[valid], minlength=n_planes * plane)
    return dx.reshape(input_shape)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode=False):
    """1-D max pooling with argmax indices, as
    ``torch.nn.functional.max_pool1d(..., return_indices=True)`` on CPU.

    Same rules as :func:`max_pool2d` along a single dimension.

    Parameters
    ----------
    x : array_like, shape (N, C, L)
        Input, NCL (any number of leading dimensions is accepted).
    kernel_size : int or (int,)
    stride : int or (int,), optional
        Defaults to ``kernel_size``.
    padding, dilation : int or (int,)
    ceil_mode : bool

    Returns
    -------
    out : ndarray, float64, shape (N, C, Lout)
    indices : ndarray, int64, shape (N, C, Lout)
        Position ``l`` of each maximum in the unpadded length.
    """
    k = _tuple(kernel_size, 1)[0]
    if stride is None or (np.ndim(stride) > 0 and len(stride) == 0):
        stride = k
    out, idx = max_pool2d(_f64(x)[..., None, :], (1, k), (1, _tuple(stride, 1)[0]),
                          (0, _tuple(padding, 1)[0]), (1, _tuple(dilation, 1)[0]),
                          ceil_mode)
    return out[..., 0, :], idx[..., 0, :]


def max_pool1d_backward(grad_output, indices, input_shape):
    """Gradient of :func:`max_pool1d` with respect to its input.

    Parameters
    ----------
    grad_output : array_like, shape (N, C, Lout)
    indices : array_like of int, shape (N, C, Lout)
        Argmax positions returned by :func:`max_pool1d`.
    input_shape : tuple of int
        (N, C, L).

    Returns
    -------
    ndarray, float64, shape input_shape
    """
    input_shape = tuple(int(d) for d in input_shape)
    dx = max_pool2d_backward(_f64(grad_output)[..., None, :],
                             np.asarray(indices)[..., None, :],
                             input_shape[:-1] + (1, input_shape[-1]))
    return dx.reshape(input_shape)
