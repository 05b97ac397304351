"""The benchmark shape suite as data: one place, used by ``bench/`` and ``fastconv bench``.

Each case is a small frozen dataclass with a readable ``id``, its geometry,
the work it represents (FLOPs for a convolution pass, bytes moved for a
pooling pass) and a method that builds seeded input arrays.  The machine
constants used to turn timings into "% of peak" live here too.
"""

from dataclasses import dataclass

import numpy as np

#: Arithmetic peak of the reference machine (2-core Zen 4), GFLOP/s per dtype.
PEAK_GFLOPS = {"float32": 260.0, "float64": 130.0}

#: DRAM bandwidth of the reference machine with 2 threads, GB/s.
PEAK_GBPS = 37.0

DTYPES = ("float32", "float64")
CONV_PASSES = ("forward", "grad_input", "grad_weight")
POOL_PASSES = ("pool_forward", "pool_backward")
PASSES = CONV_PASSES + POOL_PASSES

#: Short pass names used in pytest ids (``fwd-resnet50_3x3-float32``).
PASS_ABBREV = {"forward": "fwd", "grad_input": "dx", "grad_weight": "dw",
               "pool_forward": "fwd", "pool_backward": "bwd"}


def _out_size(size, kernel, stride, pad, dilation):
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class ConvCase:
    """One 2-D convolution: input N x C x H x W, K filters of C/groups x R x S.

    Attributes
    ----------
    id : str
        Readable identifier used in benchmark ids, tables and ``--shapes``.
    N, C, H, W, K, R, S : int
        Batch, input channels, input height and width, filters, filter size.
    stride, padding, dilation, groups : int
        As for :func:`fastconv.conv2d` (same value on both spatial axes).
    """

    id: str
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1

    @property
    def P(self):
        return _out_size(self.H, self.R, self.stride, self.padding, self.dilation)

    @property
    def Q(self):
        return _out_size(self.W, self.S, self.stride, self.padding, self.dilation)

    @property
    def input_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def weight_shape(self):
        return (self.K, self.C // self.groups, self.R, self.S)

    @property
    def output_shape(self):
        return (self.N, self.K, self.P, self.Q)

    @property
    def kwargs(self):
        """Keyword arguments shared by conv2d and its two gradients."""
        return dict(stride=self.stride, padding=self.padding,
                    dilation=self.dilation, groups=self.groups)

    @property
    def flops(self):
        """Floating-point operations of one pass: ``2*N*K*P*Q*(C/groups)*R*S``.

        Forward, grad_input and grad_weight all do this many multiply-adds x 2.
        """
        return 2 * self.N * self.K * self.P * self.Q * (self.C // self.groups) * self.R * self.S

    def work(self, pass_, dtype):
        """FLOPs of ``pass_`` (the same for all three convolution passes)."""
        return self.flops

    def describe(self):
        """Human-readable geometry, e.g. ``8x64x56x56 K64 3x3 p1``."""
        text = f"{self.N}x{self.C}x{self.H}x{self.W} K{self.K} {self.R}x{self.S}"
        if self.stride != 1:
            text += f" s{self.stride}"
        if self.padding:
            text += f" p{self.padding}"
        if self.dilation != 1:
            text += f" d{self.dilation}"
        if self.groups != 1:
            text += f" g{self.groups}"
        return text

    def arrays(self, dtype, seed=0):
        """Seeded inputs of ``dtype``: ``(x, weight, grad_output)``, C-contiguous."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(self.input_shape).astype(dtype)
        w = rng.standard_normal(self.weight_shape).astype(dtype)
        dy = rng.standard_normal(self.output_shape).astype(dtype)
        return x, w, dy


@dataclass(frozen=True)
class PoolCase:
    """One 2-D max-pool: input N x C x H x W, window ``kernel`` x ``kernel``.

    Attributes
    ----------
    id : str
        Readable identifier.
    N, C, H, W : int
        Input shape.
    kernel, stride, padding : int
        As for :func:`fastconv.max_pool2d` (same value on both axes).
    """

    id: str
    N: int
    C: int
    H: int
    W: int
    kernel: int
    stride: int
    padding: int = 0

    @property
    def P(self):
        return _out_size(self.H, self.kernel, self.stride, self.padding, 1)

    @property
    def Q(self):
        return _out_size(self.W, self.kernel, self.stride, self.padding, 1)

    @property
    def input_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def output_shape(self):
        return (self.N, self.C, self.P, self.Q)

    @property
    def kwargs(self):
        return dict(kernel_size=self.kernel, stride=self.stride, padding=self.padding)

    def work(self, pass_, dtype):
        """Bytes read + written by ``pass_`` (the minimum any implementation moves).

        Forward reads x and writes the output and its int64 indices; backward
        reads grad_output and the indices and writes grad_input.
        """
        item = np.dtype(dtype).itemsize
        n_in = self.N * self.C * self.H * self.W
        n_out = self.N * self.C * self.P * self.Q
        return n_in * item + n_out * (item + 8)

    def describe(self):
        text = f"{self.N}x{self.C}x{self.H}x{self.W} {self.kernel}x{self.kernel} s{self.stride}"
        return text + (f" p{self.padding}" if self.padding else "")

    def arrays(self, dtype, seed=0):
        """Seeded ``(x, grad_output)`` of ``dtype``."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(self.input_shape).astype(dtype)
        dy = rng.standard_normal(self.output_shape).astype(dtype)
        return x, dy


CONV_CASES = (
    ConvCase("lenet_conv1", 64, 1, 28, 28, 6, 5, 5, padding=2),
    ConvCase("lenet_conv2", 64, 6, 14, 14, 16, 5, 5),
    ConvCase("resnet20_stem", 128, 3, 32, 32, 16, 3, 3, padding=1),
    ConvCase("resnet20_stage1", 128, 16, 32, 32, 16, 3, 3, padding=1),
    ConvCase("resnet20_down", 128, 16, 32, 32, 32, 3, 3, stride=2, padding=1),
    ConvCase("resnet20_stage3", 128, 64, 8, 8, 64, 3, 3, padding=1),
    ConvCase("resnet20_shortcut", 128, 16, 32, 32, 32, 1, 1, stride=2),
    ConvCase("resnet50_stem", 8, 3, 224, 224, 64, 7, 7, stride=2, padding=3),
    ConvCase("resnet50_1x1", 8, 64, 56, 56, 64, 1, 1),
    ConvCase("resnet50_3x3", 8, 64, 56, 56, 64, 3, 3, padding=1),
    ConvCase("resnet50_3x3s2", 8, 128, 56, 56, 128, 3, 3, stride=2, padding=1),
    ConvCase("depthwise", 32, 64, 56, 56, 64, 3, 3, padding=1, groups=64),
    ConvCase("single_image", 1, 3, 32, 32, 8, 3, 3, padding=1),
)

POOL_CASES = (
    PoolCase("pool_resnet20_2x2", 128, 16, 32, 32, 2, 2),
    PoolCase("pool_resnet50_3x3s2", 8, 64, 112, 112, 3, 2, padding=1),
    PoolCase("pool_vgg_2x2", 8, 64, 224, 224, 2, 2),
)

#: The README's worked example: call latency, forward only.
EXAMPLE = ConvCase("example_3x3", 1, 1, 3, 3, 1, 2, 2)

#: ``--quick``: a couple of tiny shapes, enough to exercise every code path.
QUICK_CONV_CASES = (
    ConvCase("quick_conv", 2, 4, 12, 12, 8, 3, 3, padding=1),
    ConvCase("quick_grouped", 2, 8, 10, 10, 8, 3, 3, stride=2, padding=1, groups=4),
)
QUICK_POOL_CASES = (PoolCase("quick_pool", 2, 4, 12, 12, 3, 2, padding=1),)


def select(cases, patterns):
    """Cases whose id contains any of ``patterns`` (all cases if none given)."""
    if not patterns:
        return tuple(cases)
    return tuple(c for c in cases if any(p in c.id for p in patterns))
