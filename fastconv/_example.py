"""``python -m fastconv example``: the worked example, then a timed conv2d on a batch."""

import argparse
import time

import numpy as np

import fastconv


def worked_example():
    """Print the README's worked example, computed by fastconv."""
    x = np.array([[1, 2, 1], [0, 1, 2], [2, 1, 0]], dtype=np.float64)[None, None]
    w = np.array([[0.5, 0.2], [0.3, 0.7]])[None, None]
    y = np.array([[1, 2], [2, 1]], dtype=np.float64)[None, None]
    yhat = fastconv.conv2d(x, w)
    loss = np.mean((yhat - y) ** 2)
    g = 2 * (yhat - y) / yhat.size
    gw = fastconv.conv2d_grad_weight(x, w.shape, g)
    gx = fastconv.conv2d_grad_input(x.shape, w, g)
    w_new = w - 0.1 * gw
    loss_new = np.mean((fastconv.conv2d(x, w_new) - y) ** 2)
    with np.printoptions(precision=4, suppress=True):
        print("Worked example (stride 1, no padding, L = mean((Yhat - Y)^2), lr 0.1)")
        print(f"  Yhat      = {np.round(yhat[0, 0], 6).tolist()}")
        print(f"  loss      = {loss:.6f}")
        print(f"  dL/dW     = {np.round(gw[0, 0], 6).tolist()}")
        print(f"  dL/dX     = {np.round(gx[0, 0], 6).tolist()}")
        print(f"  W'        = {np.round(w_new[0, 0], 6).tolist()}")
        print(f"  new loss  = {loss_new:.6f}")


def _best_of(fn, repeat):
    fn()  # warm-up: JIT compilation or cache load
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def timed_batch(dtype, repeat):
    """Forward and both gradients of a ResNet-style 3x3 layer on a batch of 64."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 32, 32, 32)).astype(dtype)
    w = rng.standard_normal((32, 32, 3, 3)).astype(dtype)
    b = rng.standard_normal(32).astype(dtype)
    t0 = time.perf_counter()
    y = fastconv.conv2d(x, w, b, padding=1)
    g = rng.standard_normal(y.shape).astype(dtype)
    fastconv.conv2d_grad_input(x.shape, w, g, padding=1)
    fastconv.conv2d_grad_weight(x, w.shape, g, padding=1)
    first = time.perf_counter() - t0
    flops = 2 * y.size * w[0].size
    print(f"conv2d 3x3 pad 1, x {x.shape} {np.dtype(dtype).name}, w {w.shape}: "
          f"first call (incl. JIT or cache load) {first:.2f} s")
    for name, fn in [
        ("forward", lambda: fastconv.conv2d(x, w, b, padding=1)),
        ("grad_input", lambda: fastconv.conv2d_grad_input(x.shape, w, g, padding=1)),
        ("grad_weight", lambda: fastconv.conv2d_grad_weight(x, w.shape, g, padding=1)),
    ]:
        t = _best_of(fn, repeat)
        print(f"  {name:<12} {t * 1e3:8.2f} ms  {flops / t / 1e9:7.1f} GFLOP/s")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastconv example", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions (best is shown)")
    args = parser.parse_args(argv)
    worked_example()
    print()
    for dtype in (np.float32, np.float64):
        timed_batch(dtype, args.repeat)
    return 0
