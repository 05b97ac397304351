"""Input gradient of ``conv2d``: the transposed convolution."""

import numpy as np

from ._tiling import band_rows, padded
from .conv2d_forward import conv_packed


def conv2d_grad_input(grad_output, weight, grad_input, stride, padding, dilation, groups):
    """Write dL/dx into ``grad_input``.

    Computed as a convolution of the stride-upsampled ``grad_output`` with the
    spatially flipped weight whose in/out channels are swapped within each
    group, padded by ``dilation*(R-1) - padding``.  Every element of
    ``grad_input`` is a gather: no two iterations write the same element.

    Parameters
    ----------
    grad_output : ndarray, shape (N, K, P, Q), C-contiguous, float32 or float64
    weight : ndarray, shape (K, C // groups, R, S), C-contiguous, same dtype
    grad_input : ndarray, shape (N, C, H, W), C-contiguous, same dtype
        Overwritten entirely.
    stride, padding, dilation : (int, int)
        As given to the forward pass (padding is top/left).
    groups : int
    """
    K, Cg, R, S = weight.shape
    G = groups
    Kg = K // G
    C = Cg * G
    # wmat[g*Cg + c, (r*S + s)*Kg + k] = weight[g*Kg + k, c, R-1-r, S-1-s]
    flipped = weight.reshape(G, Kg, Cg, R, S)[:, :, :, ::-1, ::-1]
    wmat = np.zeros((C, padded(R * S * Kg)), dtype=weight.dtype)
    wmat[:, :R * S * Kg] = flipped.transpose(0, 2, 3, 4, 1).reshape(C, R * S * Kg)
    bias = np.zeros(C, dtype=grad_output.dtype)
    H, W = grad_input.shape[2], grad_input.shape[3]
    B = band_rows(H, W, Kg * R * S)
    conv_packed(grad_output, wmat, bias, grad_input, G, R, S, 1, 1,
                dilation[0], dilation[1],
                dilation[0] * (R - 1) - padding[0], dilation[1] * (S - 1) - padding[1],
                stride[0], stride[1], B)
