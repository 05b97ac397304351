"""Recover a known convolution filter by gradient descent.

Random images go through the vertical edge detector

    [[-1, 0, 1],
     [-1, 0, 1],
     [-1, 0, 1]]

(the row [-1, 0, 1] repeated down a 3x3 filter: it responds to left-to-right
changes in intensity, i.e. to vertical edges) to make the targets.  A
``fastconv.layers.Conv2d`` starting from random weights is then trained with
mean squared error and plain SGD until its filter matches.

Run: ``python examples/learn_edge_filter.py``
"""

import numpy as np

from fastconv import layers
from fastconv.losses import MSELoss
from fastconv.optim import SGD

EDGE_FILTER = np.array([[-1.0, 0.0, 1.0]] * 3)


def learn_edge_filter(steps=200, lr=0.2, n_images=16, size=16, seed=0, backend=None):
    """Train a bias-free 3x3 Conv2d to reproduce :data:`EDGE_FILTER`.

    Parameters
    ----------
    steps : int
        Full-batch gradient-descent steps.
    lr : float
        Learning rate.
    n_images, size : int
        The data: ``n_images`` standard-normal images of ``size x size``.
    seed : int
        Seed for the images and the initial filter.
    backend : {"numba", "numpy"} or None
        Backend of the convolution (None: the global default).

    Returns
    -------
    weight : ndarray, shape (3, 3)
        The learned filter.
    losses : list of float
        The loss before each step.
    """
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n_images, 1, size, size))
    conv = layers.Conv2d(1, 1, 3, bias=False, dtype=np.float64, rng=rng, backend=backend)
    true_conv = layers.Conv2d(1, 1, 3, bias=False, dtype=np.float64, backend=backend).eval()
    true_conv.load_state_dict({"weight": EDGE_FILTER[None, None]})
    targets = true_conv(images)

    loss_fn, opt = MSELoss(), SGD(conv.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        losses.append(loss_fn(conv(images), targets))
        conv.backward(loss_fn.backward())
        opt.step()
    return conv.weight.data[0, 0].copy(), losses


def main():
    weight, losses = learn_edge_filter()
    np.set_printoptions(precision=4, suppress=True)
    print(f"loss: {losses[0]:.4g} at the start, {losses[-1]:.3g} after {len(losses)} steps")
    print("learned filter:")
    print(weight)
    print(f"largest error against the edge detector: {np.abs(weight - EDGE_FILTER).max():.2e}")


if __name__ == "__main__":
    main()
