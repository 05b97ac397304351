"""Strided, padded, dilated, grouped 2-D convolution (cross-correlation), NCHW."""

import numpy as np
from numba import prange

from ._jit import parallel_kernel
from ._microkernels import weights_times_panel
from ._panels import pack_pixel_major
from ._tiling import tile_pixels


@parallel_kernel
def conv_packed(src, wmat, bias, out, G, R, S, sh, sw, dh, dw, pt, pl, uh, uw, T):
    """Generic packed convolution: ``out = conv(upsample(src), wmat) + bias``.

    Parameters
    ----------
    src : ndarray, shape (N, Cin, Hs, Ws), C-contiguous
    wmat : ndarray, shape (Kout, (Cin // G) * R * S), C-contiguous
        Column ``(c*R + r)*S + s`` multiplies tap ``(c, r, s)``.
    bias : ndarray, shape (Kout,)
    out : ndarray, shape (N, Kout, P, Q), C-contiguous
        Overwritten entirely.
    G : int
        Groups: output channels ``g*Kout/G ...`` see input channels
        ``g*Cin/G ...``.
    R, S, sh, sw, dh, dw, pt, pl, uh, uw : int
        Kernel size, stride, dilation, top/left padding (may be negative,
        which crops) and source upsampling (see ``_panels``).
    T : int
        Output pixels per tile.

    Each prange iteration owns one (image, group, tile) block of ``out``.
    """
    N = src.shape[0]
    Cg = src.shape[1] // G
    Kout = out.shape[1]
    Kg = Kout // G
    P = out.shape[2]
    Q = out.shape[3]
    PQ = P * Q
    CRS = Cg * R * S
    ntiles = (PQ + T - 1) // T
    out3 = out.reshape((N, Kout, PQ))
    for task in prange(N * G * ntiles):
        tile = task % ntiles
        ng = task // ntiles
        g = ng % G
        n = ng // G
        pix0 = tile * T
        Tn = min(T, PQ - pix0)
        panel = np.empty((T, CRS), dtype=src.dtype)
        pack_pixel_major(src, n, g * Cg, Cg, R, S, pix0, Tn, Q,
                         sh, sw, dh, dw, pt, pl, uh, uw, panel)
        weights_times_panel(wmat, g * Kg, Kg, panel, Tn, CRS, bias, out3, n, pix0)


def conv2d_forward(x, weight, bias, out, stride, padding, dilation, groups):
    """Write ``conv2d(x, weight) + bias`` into ``out``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), C-contiguous, float32 or float64
    weight : ndarray, shape (K, C // groups, R, S), C-contiguous, x's dtype
    bias : ndarray, shape (K,), x's dtype (zeros for no bias)
    out : ndarray, shape (N, K, P, Q), C-contiguous, x's dtype
    stride, dilation : (int, int)
    padding : (int, int)
        Top and left padding; bottom/right padding is implied by ``out``'s shape.
    groups : int
    """
    K, Cg, R, S = weight.shape
    T = tile_pixels(out.shape[2] * out.shape[3], Cg * R * S)
    conv_packed(x, weight.reshape(K, Cg * R * S), bias, out, groups, R, S,
                stride[0], stride[1], dilation[0], dilation[1],
                padding[0], padding[1], 1, 1, T)
