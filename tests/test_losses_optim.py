"""Tests for fastconv.losses and fastconv.optim, including the README's worked example."""

import warnings

import numpy as np
import pytest

from fastconv import layers
from fastconv.losses import MSELoss, SoftmaxCrossEntropyLoss
from fastconv.optim import SGD

# The worked example: 3x3 input, 2x2 filter, 2x2 target, MSE, SGD with lr 0.1.
I = np.array([[1, 2, 1], [0, 1, 2], [2, 1, 0]], dtype=np.float64).reshape(1, 1, 3, 3)
W = np.array([[0.5, 0.2], [0.3, 0.7]]).reshape(1, 1, 2, 2)
Y = np.array([[1, 2], [2, 1]], dtype=np.float64).reshape(1, 1, 2, 2)


def worked_example(backend):
    conv = layers.Conv2d(1, 1, 2, bias=False, dtype=np.float64, backend=backend)
    conv.load_state_dict({"weight": W})
    return conv, MSELoss(), SGD(conv.parameters(), lr=0.1)


def step(conv, loss_fn, opt):
    opt.zero_grad()
    loss = loss_fn(conv(I), Y)
    conv.backward(loss_fn.backward())
    opt.step()
    return loss


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_worked_example_first_step(backend):
    conv, loss_fn, opt = worked_example(backend)
    assert step(conv, loss_fn, opt) == pytest.approx(0.365, abs=1e-12)
    np.testing.assert_allclose(conv.weight.data[0, 0], [[0.37, 0.1], [0.295, 0.605]], atol=1e-12)
    assert loss_fn(conv(I), Y) == pytest.approx(0.166225, abs=1e-12)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_worked_example_trains_below_1e_6(backend):
    conv, loss_fn, opt = worked_example(backend)
    losses = [step(conv, loss_fn, opt)]
    while losses[-1] >= 1e-6 and len(losses) < 300:  # about 160 steps are needed
        losses.append(step(conv, loss_fn, opt))
    assert losses[-1] < 1e-6
    assert all(b < a for a, b in zip(losses, losses[1:]))  # lr 0.1 is below 2 / curvature
    # The 4x4 system conv(I, W) = Y has a unique solution, which SGD reaches.
    A = np.array([[1, 2, 0, 1], [2, 1, 1, 2], [0, 1, 2, 1], [1, 2, 1, 0]], dtype=np.float64)
    solution = np.linalg.solve(A, Y.reshape(-1)).reshape(2, 2)
    np.testing.assert_allclose(conv.weight.data[0, 0], solution, atol=2e-3)


# --------------------------------------------------------------------------- MSE


def finite_difference(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        plus = f()
        x[i] = old - eps
        minus = f()
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def test_mse_value_and_gradient():
    rng = np.random.default_rng(0)
    pred, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    loss_fn = MSELoss()
    assert loss_fn(pred, target) == pytest.approx(np.mean((pred - target) ** 2), rel=1e-14)
    grad = loss_fn.backward()
    np.testing.assert_allclose(grad, finite_difference(lambda: MSELoss()(pred, target), pred),
                               rtol=1e-7, atol=1e-10)


def test_mse_keeps_float32_and_casts_the_target():
    loss_fn = MSELoss()
    loss = loss_fn(np.array([1.0, 3.0], np.float32), np.array([0, 1]))
    assert isinstance(loss, float) and loss == pytest.approx(2.5)
    grad = loss_fn.backward()
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, [1.0, 2.0])


@pytest.mark.parametrize("pred, target, error, message", [
    (np.ones(3), np.ones((3, 1)), ValueError, "no broadcasting"),
    (np.ones(3, np.int64), np.ones(3), TypeError, "float32 or float64"),
    (np.ones(0), np.ones(0), ValueError, "empty"),
    (np.ones(2), np.array(["a", "b"]), TypeError, "target"),
])
def test_mse_rejects_bad_input(pred, target, error, message):
    with pytest.raises(error, match=message):
        MSELoss()(pred, target)


# --------------------------------------------------------------------------- cross-entropy


def test_cross_entropy_value_and_gradient():
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((5, 4)), np.array([0, 3, 1, 1, 2])
    loss_fn = SoftmaxCrossEntropyLoss()
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(probs[np.arange(5), labels]))
    assert loss_fn(logits, labels) == pytest.approx(expected, rel=1e-13)
    grad = loss_fn.backward()
    np.testing.assert_allclose(
        grad, finite_difference(lambda: SoftmaxCrossEntropyLoss()(logits, labels), logits),
        rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-15)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [1000.0, 0.0, -1000.0]], np.float32)
    loss_fn = SoftmaxCrossEntropyLoss()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = loss_fn(logits, np.array([0, 1]))
        grad = loss_fn.backward()
    assert loss == pytest.approx((0.0 + 1000.0) / 2)
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, [[0, 0, 0], [0.5, -0.5, 0]], atol=1e-7)


def test_cross_entropy_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    logits, labels = rng.standard_normal((6, 10)) * 5, rng.integers(0, 10, 6)
    t = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(t, torch.tensor(labels))
    expected.backward()
    loss_fn = SoftmaxCrossEntropyLoss()
    assert loss_fn(logits, labels) == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(loss_fn.backward(), t.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("logits, labels, error, message", [
    (np.ones((2, 3)), np.array([0.0, 1.0]), TypeError, "integer class labels"),
    (np.ones((2, 3)), np.array([0, 3]), ValueError, r"\[0, 3\); got values in \[0, 3\]"),
    (np.ones((2, 3)), np.array([-1, 0]), ValueError, "got values in"),
    (np.ones((2, 3)), np.array([0, 1, 2]), ValueError, r"shape \(N,\) = \(2,\)"),
    (np.ones(3), np.array([0]), ValueError, "2-D"),
])
def test_cross_entropy_rejects_bad_input(logits, labels, error, message):
    with pytest.raises(error, match=message):
        SoftmaxCrossEntropyLoss()(logits, labels)


@pytest.mark.parametrize("loss_fn, args", [
    (MSELoss(), (np.ones(2), np.zeros(2))),
    (SoftmaxCrossEntropyLoss(), (np.ones((2, 3)), np.array([0, 1]))),
])
def test_loss_backward_needs_exactly_one_forward(loss_fn, args):
    with pytest.raises(RuntimeError, match="before forward"):
        loss_fn.backward()
    loss_fn(*args)
    loss_fn.backward()
    with pytest.raises(RuntimeError, match="already called"):
        loss_fn.backward()
    loss_fn.eval()
    loss_fn(*args)
    with pytest.raises(RuntimeError, match="eval mode"):
        loss_fn.backward()


# --------------------------------------------------------------------------- SGD


def test_sgd_momentum_and_weight_decay_follow_the_pytorch_formula():
    p = layers.Parameter(np.array([1.0, -2.0]))
    grads = [np.array([0.5, 1.0]), np.array([-1.0, 0.25]), np.array([2.0, 0.0])]
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    data, buf = p.data.copy(), None
    for g in grads:
        p.grad[:] = g
        opt.step()
        d = g + 0.01 * data
        buf = d if buf is None else 0.9 * buf + d
        data = data - 0.1 * buf
        np.testing.assert_allclose(p.data, data, rtol=1e-15)
    opt.zero_grad()
    assert not p.grad.any()


def test_sgd_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    start, grads = rng.standard_normal((2, 3)), rng.standard_normal((4, 2, 3))
    p = layers.Parameter(start.copy())
    t = torch.tensor(start.copy(), requires_grad=True)
    ours = SGD([p], lr=0.05, momentum=0.8, weight_decay=0.1)
    theirs = torch.optim.SGD([t], lr=0.05, momentum=0.8, weight_decay=0.1)
    for g in grads:
        p.grad[...] = g
        t.grad = torch.tensor(g)
        ours.step()
        theirs.step()
    np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-13)


def test_sgd_updates_in_place_and_keeps_float32():
    conv = layers.Conv2d(1, 1, 2, rng=0)
    weight = conv.weight.data
    conv.weight.grad[...] = 1.0
    before = weight.copy()
    SGD(conv.parameters(), lr=0.5).step()
    assert conv.weight.data is weight and weight.dtype == np.float32
    np.testing.assert_allclose(weight, before - 0.5)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(lr=0), ValueError, "lr must be a finite number > 0"),
    (dict(lr=-0.1), ValueError, "lr must be"),
    (dict(lr="0.1"), TypeError, "lr must be a real number"),
    (dict(lr=float("nan")), ValueError, "lr must be"),
    (dict(lr=0.1, momentum=-0.5), ValueError, "momentum must be a finite number >= 0"),
    (dict(lr=0.1, weight_decay=True), TypeError, "weight_decay must be a real number"),
])
def test_sgd_rejects_bad_hyper_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        SGD([layers.Parameter(np.zeros(2))], **kwargs)


def test_sgd_rejects_bad_parameters():
    with pytest.raises(ValueError, match="parameters is empty"):
        SGD(layers.ReLU().parameters(), lr=0.1)
    with pytest.raises(TypeError, match="item 0 is of type ndarray"):
        SGD([np.zeros(2)], lr=0.1)
