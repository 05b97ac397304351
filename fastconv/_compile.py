"""``python -m fastconv compile``: compile every kernel ahead of use, and time it.

A kernel compiles on its first call for each dtype (seconds per kernel, see
the README) and is then cached on disk next to fastconv's sources, so later
processes load it in well under a second.  Running this once after
installing (for example while building a container image) moves all of that
compilation out of the first real calls, and prints how long each group of
kernels took: the cold compile time of the whole kernel set.

Each step calls the public functions on small inputs chosen to reach every
compiled variant (the direct, depthwise and packed convolution engines, their builds
for small calls, the weight gradient's parallel, serial and non-finite
paths, max-pooling), and a last step compiles the engines' loop helpers
those calls did not need (kernels compile a helper only when a call uses
it); ``tests/test_compile.py`` checks that afterwards no other call
compiles anything new.
"""

import argparse
import time

import numpy as np

import fastconv
from fastconv.kernels._jit import compile_declared


def _conv_steps(dtype):
    rng = np.random.default_rng(0)

    def arrays(x_shape, w_shape):
        x = rng.uniform(-1, 1, x_shape).astype(dtype)
        w = rng.uniform(-1, 1, w_shape).astype(dtype)
        return x, w

    def forward_and_grads(x, w, **kwargs):
        def run():
            y = fastconv.conv2d(x, w, **kwargs)
            fastconv.conv2d_grad_input(x.shape, w, y, **kwargs)
            fastconv.conv2d_grad_weight(x, w.shape, y, **kwargs)
        return run

    # direct engine (short reductions), big enough for the parallel build and
    # for the weight gradient's parallel path
    direct = forward_and_grads(*arrays((4, 8, 32, 32), (16, 8, 3, 3)), padding=1)
    # depthwise engine (one input and one output channel per group), its stencils
    depthwise = forward_and_grads(*arrays((2, 8, 24, 40), (8, 1, 3, 3)), padding=1, groups=8)
    # a few multiply-adds: the builds that run on the calling thread
    small = forward_and_grads(*arrays((1, 2, 5, 5), (3, 2, 2, 2)))
    # packed engine (long reductions on images so narrow that the direct
    # engine would discard 2 of every 8 columns it computes)
    packed = forward_and_grads(*arrays((2, 64, 6, 6), (64, 64, 3, 3)), padding=1)
    x, w = arrays((2, 3, 6, 6), (4, 3, 3, 3))
    x[0, 0, 0, 0] = np.inf  # the weight gradient's rerun for non-finite results
    nonfinite = forward_and_grads(x, w)
    return [("conv2d + grads: direct engine", direct),
            ("conv2d + grads: depthwise engine", depthwise),
            ("conv2d + grads: small calls", small),
            ("conv2d + grads: packed engine", packed),
            ("conv2d_grad_weight: non-finite input", nonfinite),
            # the loops these calls did not need (each compiles on first use)
            ("other helpers of the engines", lambda: compile_declared(dtype))]


def _pool_steps(dtype):
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 9, 9)).astype(dtype)

    def run():
        out, idx = fastconv.max_pool2d(x, 3, 2, padding=1)
        fastconv.max_pool2d_backward(out, idx, x.shape)
    return [("max_pool2d + backward", run)]


def precompile(dtypes=("float32", "float64")):
    """Compile (or load from the on-disk cache) every kernel for ``dtypes``.

    Parameters
    ----------
    dtypes : sequence of str or numpy dtype
        float32 and/or float64.

    Returns
    -------
    list of (str, str, float)
        ``(dtype name, step, seconds)`` for each step, in order.
    """
    times = []
    for dtype in dtypes:
        name = np.dtype(dtype).name
        for step, run in _conv_steps(dtype) + _pool_steps(dtype):
            t = time.perf_counter()
            run()
            times.append((name, step, time.perf_counter() - t))
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="fastconv compile",
        description="Compile every fastconv kernel now (cached on disk for later processes) "
                    "and print how long each group took.")
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    args = parser.parse_args(argv)
    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    t0 = time.perf_counter()
    for name, step, seconds in precompile(dtypes):
        print(f"{name:8s} {step:40s} {seconds:7.2f} s", flush=True)
    print(f"total {time.perf_counter() - t0:.1f} s (a step already in the on-disk cache "
          "loads in well under a second)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
