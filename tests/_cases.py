"""Hypothesis strategies and tolerances shared by the kernel tests.

Tolerances: every output element of a convolution (or of its gradients) is a
sum of ``n`` products of values in [-1, 1].  Floating-point summation in any
order errs by at most ``n * eps * sum|terms|`` and typically by about
``sqrt(n) * eps``; we allow ``4 * n * eps(dtype)`` absolutely, with the
reference computed in float64 from the same (already rounded) inputs.  Max-pool
selects a value and is compared exactly.
"""

from dataclasses import dataclass

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

DTYPES = (np.float32, np.float64)


def conv_atol(n_terms, dtype):
    return 4.0 * max(n_terms, 1) * float(np.finfo(dtype).eps)


@dataclass
class ConvCase:
    x_shape: tuple
    w_shape: tuple
    stride: object
    padding: object
    dilation: object
    groups: int
    dtype: type

    @property
    def kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)

    def arrays(self, seed):
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1, 1, self.x_shape).astype(self.dtype)
        w = rng.uniform(-1, 1, self.w_shape).astype(self.dtype)
        b = rng.uniform(-1, 1, self.w_shape[0]).astype(self.dtype)
        return x, w, b


def _pair_or_int(draw, lo, hi, spatial):
    if spatial == 1 or draw(st.booleans()):
        return draw(st.integers(lo, hi))
    return (draw(st.integers(lo, hi)), draw(st.integers(lo, hi)))


def _expand(v, spatial):
    return v if isinstance(v, tuple) else (v,) * spatial


@st.composite
def conv_cases(draw, spatial=2, max_size=11, max_kernel=7):
    """Convolution problems over shapes, strides, padding kinds, dilation, groups, dtypes."""
    kind = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
    if kind == "dense":
        G, Cg, Kg = 1, draw(st.integers(1, 4)), draw(st.integers(1, 6))
    elif kind == "grouped":
        G, Cg, Kg = draw(st.integers(2, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 5))
    else:
        G = draw(st.integers(1, 5))
        Cg, Kg = 1, draw(st.integers(1, 2))
    N = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, max_kernel)) for _ in range(spatial))
    sizes = tuple(draw(st.integers(1, max_size)) for _ in range(spatial))
    stride = _pair_or_int(draw, 1, 4, spatial)
    dilation = _pair_or_int(draw, 1, 3, spatial)
    pad_kind = draw(st.sampled_from(["int", "pair", "valid", "same"]))
    if pad_kind == "same":
        stride = 1
        padding = "same"
    elif pad_kind == "valid":
        padding = "valid"
    elif pad_kind == "pair" and spatial == 2:
        padding = (draw(st.integers(0, 4)), draw(st.integers(0, 4)))
    else:
        padding = draw(st.integers(0, 4))
    pads = (0,) * spatial if padding in ("valid", "same") else _expand(padding, spatial)
    dil = _expand(dilation, spatial)
    for L, k, d, p in zip(sizes, kernel, dil, pads):
        span = d * (k - 1) + 1
        if padding == "same":
            continue
        assume(L + 2 * p >= span)
    dtype = draw(st.sampled_from(DTYPES))
    return ConvCase((N, Cg * G) + sizes, (Kg * G, Cg) + kernel, stride, padding, dilation, G,
                    dtype)


@dataclass
class PoolCase:
    x_shape: tuple
    kernel_size: object
    stride: object
    padding: object
    dilation: object
    ceil_mode: bool
    dtype: type

    @property
    def kwargs(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, ceil_mode=self.ceil_mode)


def pool_out_size(L, k, s, p, d, ceil_mode):
    num = L + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= L + p:
        out -= 1
    return out


@st.composite
def pool_cases(draw, spatial=2, max_size=12):
    """Max-pool problems: overlapping and gapped windows, padding, dilation, ceil_mode."""
    kernel = tuple(draw(st.integers(1, 5)) for _ in range(spatial))
    stride_given = draw(st.booleans())
    stride = tuple(draw(st.integers(1, 4)) for _ in range(spatial)) if stride_given else None
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(spatial))
    ceil_mode = draw(st.booleans())
    sizes = tuple(draw(st.integers(1, max_size)) for _ in range(spatial))
    strides = stride if stride is not None else kernel
    for L, k, s, p, d in zip(sizes, kernel, strides, padding, dilation):
        n_out = pool_out_size(L, k, s, p, d, ceil_mode)
        assume(n_out >= 1)
        # windows made only of padding are rejected by fastconv (tested in test_errors)
        assume(all(any(0 <= o * s - p + t * d < L for t in range(k)) for o in range(n_out)))
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dtype = draw(st.sampled_from(DTYPES))

    if spatial == 1:
        kernel, padding, dilation = kernel[0], padding[0], dilation[0]
        stride = None if stride is None else stride[0]
    return PoolCase((N, C) + sizes, kernel, stride, padding, dilation, ceil_mode, dtype)


def pool_input(shape, dtype, seed, style):
    """Pool inputs: 'uniform' reals, 'ties' small integers, 'special' with NaN and +-inf."""
    rng = np.random.default_rng(seed)
    if style == "uniform":
        return rng.uniform(-1, 1, shape).astype(dtype)
    x = rng.integers(-2, 3, shape).astype(dtype)
    if style == "special":
        pick = rng.random(shape)
        x[pick < 0.15] = np.nan
        x[(pick >= 0.15) & (pick < 0.35)] = -np.inf
        x[(pick >= 0.35) & (pick < 0.4)] = np.inf
    return x
