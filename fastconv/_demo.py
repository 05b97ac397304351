"""``fastconv demo``: train a small LeNet-style CNN on scikit-learn's 8x8 digits.

The 1797 digit images ship inside scikit-learn (no download).  80% train the
network (conv, relu, pool, conv, relu, pool, linear) with SGD and momentum;
the held-out 20% measure its accuracy.  The run then times a few batches on
the other backend and reports both backends' time per epoch.
"""

import argparse
import sys
import time

import numpy as np

from . import layers
from .backend import BACKENDS
from .losses import SoftmaxCrossEntropyLoss
from .optim import SGD

#: Hyper-parameters of the default run (reaches >= 97% test accuracy).
LEARNING_RATE = 0.03
MOMENTUM = 0.9
#: Batches the comparison backend is timed on; its epoch time is extrapolated.
COMPARISON_BATCHES = 8


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {value}")
    return value


def _parser():
    parser = argparse.ArgumentParser(
        prog="fastconv demo",
        description=(
            "Train a small LeNet-style CNN (conv, relu, pool, conv, relu, pool, linear) on "
            "scikit-learn's 8x8 handwritten digits, print the test accuracy on a held-out 20% "
            "split and the time per epoch with the numba and numpy backends.  Needs "
            'scikit-learn: pip install "fastconv[demo]".'
        ),
    )
    parser.add_argument("--epochs", type=_positive, default=12,
                        help="passes over the training set (default: %(default)s)")
    parser.add_argument("--batch-size", type=_positive, default=32,
                        help="images per SGD step (default: %(default)s)")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="numba",
                        help="backend to train with; the other one is timed on a few batches "
                             "for comparison (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for the train/test split, the initial weights and the "
                             "batch order (default: %(default)s)")
    parser.add_argument("--threads", type=_positive, default=None,
                        help="Numba threads (default: Numba's default, all cores)")
    return parser


# --------------------------------------------------------------------------- pieces


def load_data(seed):
    """The digits as float32 (N, 1, 8, 8), split 80/20 (stratified by class).

    Pixels are standardised with the training set's mean and standard
    deviation (a single scalar pair), which speeds up the first epochs.

    Returns
    -------
    x_train, x_test : ndarray, float32, shape (n, 1, 8, 8)
    y_train, y_test : ndarray, int64, shape (n,)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images[:, None, :, :].astype(np.float64)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=seed, stratify=y)
    mean, std = x_train.mean(), x_train.std()
    x_train, x_test = ((a - mean) / std for a in (x_train, x_test))
    return x_train.astype(np.float32), x_test.astype(np.float32), y_train, y_test


def build_model(seed, backend=None):
    """The LeNet-style network, float32, initialised from ``seed``.

    (N, 1, 8, 8) -> conv 3x3 (16) -> relu -> pool 2 -> conv 3x3 (32) -> relu
    -> pool 2 -> flatten (128) -> linear -> (N, 10) logits.
    """
    rng = np.random.default_rng(seed)
    return layers.Sequential(
        layers.Conv2d(1, 16, 3, padding=1, rng=rng, backend=backend),
        layers.ReLU(),
        layers.MaxPool2d(2, backend=backend),
        layers.Conv2d(16, 32, 3, padding=1, rng=rng, backend=backend),
        layers.ReLU(),
        layers.MaxPool2d(2, backend=backend),
        layers.Flatten(),
        layers.Linear(128, 10, rng=rng),
    )


class ProgressBar:
    """A one-line text progress bar; redrawn in place on a terminal.

    On a stream that is not a terminal, only the finished line is written.
    """

    def __init__(self, label, total, stream=None, width=24):
        self.label, self.total, self.width = label, total, width
        self.stream = sys.stderr if stream is None else stream
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def update(self, done, loss, images_per_s, final=False):
        now = time.perf_counter()
        if not final and (not self.live or now - self._last < 0.1):
            return
        self._last = now
        filled = self.width * done // self.total
        bar = "#" * filled + "-" * (self.width - filled)
        line = (f"{self.label} |{bar}| {done}/{self.total} batches  loss {loss:.4f}  "
                f"{images_per_s:,.0f} images/s")
        self.stream.write(("\r" if self.live else "") + line + ("\n" if final else ""))
        self.stream.flush()


def train_epoch(model, loss_fn, optimizer, x, y, batch_size, rng, max_batches=None,
                progress=None):
    """One pass of minibatch SGD over ``(x, y)`` in an order drawn from ``rng``.

    Returns
    -------
    losses : list of float
        The loss of each batch, before its update.
    seconds : float
        Wall time of the pass.
    """
    order = rng.permutation(len(x))
    starts = range(0, len(x), batch_size)
    if max_batches is not None:
        starts = starts[:max_batches]
    losses, seen = [], 0
    t0 = time.perf_counter()
    for i, start in enumerate(starts, 1):
        idx = order[start:start + batch_size]
        optimizer.zero_grad()
        losses.append(loss_fn(model(x[idx]), y[idx]))
        model.backward(loss_fn.backward())
        optimizer.step()
        seen += len(idx)
        if progress is not None:
            elapsed = time.perf_counter() - t0
            progress.update(i, float(np.mean(losses)), seen / max(elapsed, 1e-9),
                            final=i == len(starts))
    return losses, time.perf_counter() - t0


def accuracy(model, x, y, batch_size=512):
    """Fraction of ``x`` classified as ``y`` (the model is evaluated in eval mode)."""
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = model(x[start:start + batch_size])
        correct += int((logits.argmax(axis=1) == y[start:start + batch_size]).sum())
    model.train()
    return correct / len(x)


def _make(seed, backend):
    model = build_model(seed, backend)
    return model, SoftmaxCrossEntropyLoss(), SGD(model.parameters(), LEARNING_RATE, MOMENTUM)


def _warm_up(backend, x, y, batch_size):
    """One throwaway step so that Numba's compilation is never timed."""
    model, loss_fn, opt = _make(0, backend)
    train_epoch(model, loss_fn, opt, x, y, batch_size, np.random.default_rng(0), max_batches=1)


# --------------------------------------------------------------------------- main


def main(argv=None):
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print('fastconv demo needs scikit-learn for its dataset: pip install "fastconv[demo]"',
              file=sys.stderr)
        return 2
    if args.threads is not None:
        import numba

        if args.threads > numba.config.NUMBA_NUM_THREADS:
            print(f"--threads must be at most {numba.config.NUMBA_NUM_THREADS} (Numba's "
                  f"thread pool on this machine); got {args.threads}", file=sys.stderr)
            return 2
        from . import set_num_threads

        set_num_threads(args.threads)

    x_train, x_test, y_train, y_test = load_data(args.seed)
    n_batches = -(-len(x_train) // args.batch_size)
    other = "numpy" if args.backend == "numba" else "numba"
    print(f"digits: {len(x_train)} train / {len(x_test)} test images of 8x8; "
          f"{args.epochs} epochs of {n_batches} batches of {args.batch_size}; "
          f"backend {args.backend}")
    model, loss_fn, opt = _make(args.seed, args.backend)
    print(model)

    _warm_up(args.backend, x_train, y_train, args.batch_size)
    rng = np.random.default_rng(args.seed)
    epoch_times = []
    for epoch in range(1, args.epochs + 1):
        bar = ProgressBar(f"epoch {epoch:>{len(str(args.epochs))}}/{args.epochs}", n_batches)
        _, seconds = train_epoch(model, loss_fn, opt, x_train, y_train, args.batch_size, rng,
                                 progress=bar)
        epoch_times.append(seconds)
    acc = accuracy(model, x_test, y_test)
    print(f"test accuracy: {acc:.2%} ({round(acc * len(x_test))}/{len(x_test)})")

    # The other backend: same seed, first batches only, extrapolated to an epoch.
    k = min(COMPARISON_BATCHES, n_batches)
    _warm_up(other, x_train, y_train, args.batch_size)
    times, losses = {}, {}
    for name in ("numba", "numpy"):
        m, lf, o = _make(args.seed, name)
        losses[name], t = train_epoch(m, lf, o, x_train, y_train, args.batch_size,
                                      np.random.default_rng(args.seed), max_batches=k)
        times[name] = t
    per_epoch = {name: times[name] / k * n_batches for name in times}
    per_epoch[args.backend] = float(np.median(epoch_times))
    gap = float(np.max(np.abs(np.subtract(losses["numba"], losses["numpy"]))))
    print(f"time per epoch: numba {per_epoch['numba']:.3f} s, numpy {per_epoch['numpy']:.3f} s "
          f"({args.backend}: median of {args.epochs} full epochs; {other}: timed on the first "
          f"{k} of {n_batches} batches and extrapolated)")
    print(f"speed-up numba vs numpy: {per_epoch['numpy'] / per_epoch['numba']:.1f}x")
    print(f"same seed on both backends: losses of the first {k} batches agree to {gap:.1e}")
    return 0
