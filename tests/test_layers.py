"""Tests for fastconv.layers and fastconv.backend.

Gradients are checked against central finite differences (float64) and
against the "numpy" backend (fastconv.reference).  Most tests use float64 and
a handful of shapes so that Numba compiles few signatures.
"""

import numpy as np
import pytest

import fastconv.reference
from fastconv import backend, layers

F64 = np.float64


@pytest.fixture(autouse=True)
def _restore_default_backend():
    previous = backend.get_default_backend()
    yield
    backend.set_default_backend(previous)


def numeric_grad(f, x, positions, eps=1e-6):
    """Central differences of the scalar ``f()`` with respect to ``x.flat[positions]``."""
    flat = x.reshape(-1)
    grad = np.empty(len(positions))
    for j, i in enumerate(positions):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        grad[j] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(layer, x, rng, rtol=1e-6, samples=40):
    """Compare layer.backward with finite differences of L = sum(layer(x) * G).

    Checks ``samples`` random entries of x and of each parameter (all of them
    when there are fewer): every finite difference costs two forward passes.
    """
    G = rng.standard_normal(layer(x).shape)

    def loss():
        return float(np.sum(layer(x) * G))

    def compare(analytic, array, what):
        positions = rng.permutation(array.size)[:samples]
        np.testing.assert_allclose(analytic.reshape(-1)[positions],
                                   numeric_grad(loss, array, positions),
                                   rtol=rtol, atol=1e-8, err_msg=what)

    layer.zero_grad()
    layer(x)
    compare(layer.backward(G), x, "input")
    for name, p in layer.named_parameters():
        compare(p.grad.copy(), p.data, name)


def distinct(rng, shape):
    """Values in [-1, 1) at least 1/size apart: max-pool argmaxes survive a 1e-6 nudge."""
    n = int(np.prod(shape))
    return rng.permutation(n).reshape(shape) * (2.0 / n) - 1.0


# --------------------------------------------------------------------------- layer configs

CONV2D = [
    dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, groups=2),
    dict(in_channels=2, out_channels=3, kernel_size=(2, 3), stride=(1, 2), padding=(1, 0),
         dilation=(2, 1)),
]
CONV2D_IDS = ["stride2-pad1-groups2", "rect-dilated"]


def make(kind, cfg, backend_name=None, dtype=F64, seed=0):
    if kind == "conv2d":
        return layers.Conv2d(**cfg, dtype=dtype, rng=seed, backend=backend_name)
    if kind == "conv1d":
        return layers.Conv1d(**cfg, dtype=dtype, rng=seed, backend=backend_name)
    if kind == "pool2d":
        return layers.MaxPool2d(**cfg, backend=backend_name)
    return layers.MaxPool1d(**cfg, backend=backend_name)


CASES = [
    ("conv2d", CONV2D[0], (2, 4, 7, 7)),
    ("conv2d", CONV2D[1], (2, 2, 5, 6)),
    ("conv1d", dict(in_channels=2, out_channels=4, kernel_size=3, stride=2, padding=1,
                    dilation=2), (2, 2, 9)),
    ("pool2d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 7, 6)),
    ("pool1d", dict(kernel_size=3, stride=2), (2, 3, 9)),
]
CASE_IDS = ["conv2d-" + i for i in CONV2D_IDS] + ["conv1d", "pool2d-overlap", "pool1d-overlap"]


@pytest.mark.parametrize("kind, cfg, shape", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("backend_name", ["numba", "numpy"])
def test_gradients_match_finite_differences(kind, cfg, shape, backend_name):
    rng = np.random.default_rng(1)
    layer = make(kind, cfg, backend_name)
    check_gradients(layer, distinct(rng, shape), rng)


@pytest.mark.parametrize("kind, cfg, shape", CASES, ids=CASE_IDS)
def test_numba_and_numpy_backends_agree(kind, cfg, shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    results = {}
    for name in ("numba", "numpy"):
        layer = make(kind, cfg, name)
        out = layer(x)
        G = np.random.default_rng(3).standard_normal(out.shape)
        grad_x = layer.backward(G)
        results[name] = [out, grad_x] + [p.grad for p in layer.parameters()]
    for a, b in zip(results["numba"], results["numpy"]):
        assert a.dtype == b.dtype == F64
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_float32_layers_keep_float32_on_both_backends():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 7, 7)).astype(np.float32)
    results = {}
    for name in ("numba", "numpy"):
        net = layers.Sequential(layers.Conv2d(**CONV2D[0], rng=0, backend=name),
                                layers.MaxPool2d(2, backend=name))
        out = net(x)
        grad_x = net.backward(np.ones_like(out))
        results[name] = [out, grad_x, net[0].weight.grad, net[0].bias.grad]
        for arr in results[name]:
            assert arr.dtype == np.float32
    for a, b in zip(results["numba"], results["numpy"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layer", [layers.Tanh(), layers.Sigmoid(), layers.Flatten(),
                                   layers.Linear(6, 4, dtype=F64, rng=0)],
                         ids=["tanh", "sigmoid", "flatten", "linear"])
def test_plain_numpy_layer_gradients(layer):
    rng = np.random.default_rng(5)
    shape = (3, 6) if isinstance(layer, layers.Linear) else (3, 2, 3)
    check_gradients(layer, rng.standard_normal(shape), rng)


def test_relu_gradient_away_from_the_kink():
    rng = np.random.default_rng(6)
    x = rng.uniform(0.1, 1.0, (4, 5)) * rng.choice([-1.0, 1.0], (4, 5))
    check_gradients(layers.ReLU(), x, rng)
    relu = layers.ReLU()
    relu(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(relu.backward(np.ones(3)), [0.0, 0.0, 1.0])


def test_sequential_gradients_through_a_small_cnn():
    rng = np.random.default_rng(7)
    net = layers.Sequential(
        layers.Conv2d(1, 2, 3, padding=1, dtype=F64, rng=0), layers.Tanh(),
        layers.MaxPool2d(2), layers.Flatten(), layers.Linear(8, 3, dtype=F64, rng=1),
        layers.Sigmoid())
    check_gradients(net, rng.standard_normal((2, 1, 4, 4)), rng)


def test_sigmoid_is_stable_for_large_inputs():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = layers.Sigmoid()(np.array([-1000.0, -20.0, 0.0, 20.0, 1000.0]))
    np.testing.assert_allclose(out, [0.0, 1 / (1 + np.exp(20)), 0.5, 1 / (1 + np.exp(-20)), 1.0],
                               rtol=1e-15)


# --------------------------------------------------------------------------- initialisation


@pytest.mark.parametrize("make_layer, fan_in", [
    (lambda rng: layers.Conv2d(3, 64, 5, rng=rng), 75),
    (lambda rng: layers.Conv2d(8, 64, 3, groups=4, rng=rng), 18),
    (lambda rng: layers.Conv1d(4, 64, 5, rng=rng), 20),
    (lambda rng: layers.Linear(50, 400, rng=rng), 50),
], ids=["conv2d", "conv2d-groups", "conv1d", "linear"])
def test_default_init_is_pytorch_kaiming_uniform(make_layer, fan_in):
    layer = make_layer(np.random.default_rng(0))
    bound = 1 / np.sqrt(fan_in)
    w, b = layer.weight.data, layer.bias.data
    assert w.dtype == b.dtype == np.float32
    # U(-bound, bound): inside the bound, filling it, centred.
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.97 * bound and np.abs(b).max() > 0.5 * bound
    assert abs(w.mean()) < 0.05 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound


def test_init_is_reproducible_from_a_seed_or_generator():
    a = layers.Conv2d(2, 3, 3, rng=np.random.default_rng(5))
    b = layers.Conv2d(2, 3, 3, rng=5)
    c = layers.Conv2d(2, 3, 3, rng=6)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, c.weight.data)
    d, e = layers.Linear(3, 3), layers.Linear(3, 3)  # rng=None: fresh entropy
    assert not np.array_equal(d.weight.data, e.weight.data)


# --------------------------------------------------------------------------- the cache contract


def small_conv():
    return layers.Conv2d(2, 3, 3, dtype=F64, rng=0)


@pytest.mark.parametrize("make_layer, shape", [
    (small_conv, (2, 2, 5, 5)),
    (lambda: layers.MaxPool2d(2), (2, 2, 4, 4)),
    (lambda: layers.Linear(4, 3, dtype=F64, rng=0), (2, 4)),
    (layers.ReLU, (2, 3)),
    (layers.Flatten, (2, 3, 2)),
], ids=["conv", "pool", "linear", "relu", "flatten"])
def test_backward_needs_exactly_one_forward(make_layer, shape):
    layer = make_layer()
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones(3))
    out = layer(np.random.default_rng(0).standard_normal(shape))
    layer.backward(np.ones_like(out))
    with pytest.raises(RuntimeError, match="already called"):
        layer.backward(np.ones_like(out))
    layer(np.ones(shape))
    layer.backward(np.ones_like(out))  # a new forward allows a new backward


def test_eval_mode_keeps_no_cache_and_gives_the_same_output():
    conv = small_conv()
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    out_train = conv(x)
    conv.eval()
    assert conv._cache is None  # the pending cache of the training forward is dropped
    np.testing.assert_array_equal(conv(x), out_train)
    assert conv._cache is None
    with pytest.raises(RuntimeError, match="eval mode"):
        conv.backward(np.ones_like(out_train))
    conv.train()
    conv(x)
    conv.backward(np.ones_like(out_train))


def test_sequential_train_eval_reaches_every_layer():
    net = layers.Sequential(small_conv(), layers.ReLU())
    net.eval()
    assert not net.training and not net[0].training and not net[1].training
    net(np.ones((1, 2, 4, 4)))
    with pytest.raises(RuntimeError, match="eval mode"):
        net.backward(np.ones((1, 3, 2, 2)))
    assert net.train() is net and net[0].training


def test_wrong_grad_output_is_rejected_and_the_cache_survives():
    conv = small_conv()
    out = conv(np.ones((2, 2, 5, 5)))
    with pytest.raises(ValueError, match=r"shape \(2, 3, 2, 2\).*returned shape \(2, 3, 3, 3\)"):
        conv.backward(np.ones((2, 3, 2, 2)))
    with pytest.raises(TypeError, match="dtype float32.*astype"):
        conv.backward(np.ones(out.shape, np.float32))
    conv.backward(np.ones_like(out))


@pytest.mark.parametrize("layer, x, error, message", [
    (small_conv(), np.ones((2, 3, 5, 5)), ValueError, r"3 channels .* in_channels=2"),
    (small_conv(), np.ones((2, 5, 5)), ValueError, r"4-D array of shape \(N, C, H, W\)"),
    (small_conv(), np.ones((2, 2, 2, 5)), ValueError, "larger than the padded input"),
    (small_conv(), np.ones((2, 2, 5, 5), np.float32), TypeError,
     r"dtype float32 but the layer has dtype float64.*astype\(np.float64\)"),
    (layers.Conv2d(2, 3, 3, rng=0), np.ones((2, 2, 5, 5)), TypeError,
     r"dtype float64 but the layer has dtype float32"),
    (layers.Conv1d(2, 3, 3, rng=0), np.ones((2, 2, 5, 5), np.float32), ValueError, "3-D"),
    (layers.Linear(4, 3, rng=0), np.ones((2, 5), np.float32), ValueError, "in_features=4"),
    (layers.Linear(4, 3, rng=0), np.ones((2, 4), np.int64), TypeError, "int64"),
    (layers.MaxPool2d(3), np.ones((1, 1, 2, 2)), ValueError, "does not fit"),
    (layers.MaxPool2d(2), np.ones((1, 1, 4, 4), np.int32), TypeError, "float32 or float64"),
    (layers.ReLU(), np.ones(3, np.int64), TypeError, "float32 or float64"),
    (layers.Flatten(), np.ones(3), ValueError, "at least 2 dimensions"),
], ids=["channels", "ndim", "too-small", "f32-into-f64", "f64-into-f32", "conv1d-ndim",
        "features", "linear-int", "pool-too-small", "pool-int", "relu-int", "flatten-1d"])
def test_wrong_input_is_a_clear_error(layer, x, error, message):
    with pytest.raises(error, match=message):
        layer(x)


@pytest.mark.parametrize("make_layer, error, message", [
    (lambda: layers.Conv2d(2.0, 3, 3), TypeError, "in_channels must be an int"),
    (lambda: layers.Conv2d(0, 3, 3), ValueError, "in_channels must be positive"),
    (lambda: layers.Conv2d(2, 3, 0), ValueError, "kernel_size must be positive"),
    (lambda: layers.Conv2d(2, 3, (3, 3, 3)), ValueError, "kernel_size must be an int or a seq"),
    (lambda: layers.Conv2d(2, 3, 3, stride=0), ValueError, "stride must be positive"),
    (lambda: layers.Conv2d(2, 3, 3, padding=-1), ValueError, "padding must be non-negative"),
    (lambda: layers.Conv2d(2, 3, 3, padding="full"), ValueError, "'valid' or 'same'"),
    (lambda: layers.Conv2d(2, 3, 3, stride=2, padding="same"), ValueError, "requires stride 1"),
    (lambda: layers.Conv2d(4, 3, 3, groups=2), ValueError, "out_channels=3 is not divisible"),
    (lambda: layers.Conv2d(2, 3, 3, bias=1), TypeError, "bias must be a bool"),
    (lambda: layers.Conv2d(2, 3, 3, dtype=np.int32), TypeError, "dtype must be np.float32"),
    (lambda: layers.Conv2d(2, 3, 3, rng=0.5), TypeError, "rng must be None, an int seed"),
    (lambda: layers.Conv2d(2, 3, 3, backend="torch"), ValueError, "backend must be one of"),
    (lambda: layers.MaxPool2d(2, padding=2), ValueError, "at most half the kernel size"),
    (lambda: layers.MaxPool2d(2, ceil_mode=1), TypeError, "ceil_mode must be a bool"),
    (lambda: layers.Linear(3, -1), ValueError, "out_features must be positive"),
    (lambda: layers.Sequential(layers.ReLU(), np.tanh), TypeError, "argument 1"),
], ids=lambda x: x if isinstance(x, str) else None)
def test_bad_hyper_parameters_fail_in_the_constructor(make_layer, error, message):
    with pytest.raises(error, match=message):
        make_layer()


def test_padding_same_keeps_the_size():
    conv = layers.Conv2d(1, 2, 4, padding="same", dtype=F64, rng=0)
    x = np.random.default_rng(0).standard_normal((1, 1, 5, 5))
    out = conv(x)
    assert out.shape == (1, 2, 5, 5)
    np.testing.assert_allclose(out, fastconv.reference.conv2d(x, conv.weight.data, conv.bias.data,
                                                              padding="same"), rtol=1e-12)


# --------------------------------------------------------------------------- parameters and state


def test_parameter_gradients_accumulate_until_zero_grad():
    conv = small_conv()
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    G = np.random.default_rng(1).standard_normal((2, 3, 3, 3))
    conv(x)
    conv.backward(G)
    once = [p.grad.copy() for p in conv.parameters()]
    assert all(np.abs(g).sum() > 0 for g in once)
    conv(x)
    conv.backward(G)
    for p, g in zip(conv.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-12)
    conv.zero_grad()
    assert all(not p.grad.any() for p in conv.parameters())


def test_inputs_are_not_modified():
    net = layers.Sequential(small_conv(), layers.ReLU(), layers.Flatten(),
                            layers.Linear(27, 2, dtype=F64, rng=0))
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    G = np.ones((2, 2))
    x0, G0 = x.copy(), G.copy()
    net(x)
    net.backward(G)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(G, G0)


def test_parameters_and_state_dict_names():
    net = layers.Sequential(layers.Conv2d(1, 2, 3, rng=0), layers.ReLU(),
                            layers.Conv2d(2, 2, 1, bias=False, rng=0), layers.Flatten(),
                            layers.Linear(2, 2, rng=0))
    assert list(net.state_dict()) == ["0.weight", "0.bias", "2.weight", "4.weight", "4.bias"]
    assert [p.shape for p in net.parameters()] == [(2, 1, 3, 3), (2,), (2, 2, 1, 1), (2, 2), (2,)]
    assert layers.ReLU().parameters() == []


def test_state_dict_round_trips_through_savez(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 6, 6))

    def build(seed):
        return layers.Sequential(layers.Conv2d(1, 2, 3, dtype=F64, rng=seed), layers.ReLU(),
                                 layers.Flatten(), layers.Linear(32, 3, dtype=F64, rng=seed))

    a, b = build(1), build(2)
    assert not np.allclose(a(x), b(x))
    state = a.state_dict()
    np.savez(tmp_path / "model.npz", **state)
    state["0.weight"][...] = 0  # a copy: the model is unaffected
    assert a[0].weight.data.any()
    with np.load(tmp_path / "model.npz") as saved:
        b.load_state_dict(saved)
    np.testing.assert_array_equal(a(x), b(x))


def test_load_state_dict_checks_everything_before_copying():
    conv = small_conv()
    before = conv.state_dict()
    with pytest.raises(ValueError, match=r"missing \['bias'\], unexpected \['b'\]"):
        conv.load_state_dict({"weight": before["weight"] + 1, "b": before["bias"]})
    with pytest.raises(ValueError, match=r"state_dict\['bias'\] has shape \(4,\)"):
        conv.load_state_dict({"weight": before["weight"] + 1, "bias": np.zeros(4)})
    with pytest.raises(TypeError, match="expected a float array"):
        conv.load_state_dict({"weight": before["weight"] + 1, "bias": np.zeros(3, np.int64)})
    np.testing.assert_array_equal(conv.weight.data, before["weight"])
    conv32 = layers.Conv2d(2, 3, 3, rng=1)
    conv32.load_state_dict(before)  # float64 values are cast to the layer's float32
    assert conv32.weight.dtype == np.float32
    np.testing.assert_allclose(conv32.weight.data, before["weight"], rtol=1e-6)


def test_reprs():
    assert repr(layers.Conv2d(1, 6, 5)) == "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))"
    assert repr(layers.Conv2d(4, 8, (3, 1), stride=2, padding=1, dilation=2, groups=2,
                              bias=False, dtype=F64, backend="numpy")) == (
        "Conv2d(4, 8, kernel_size=(3, 1), stride=(2, 2), padding=(1, 1), dilation=(2, 2), "
        "groups=2, bias=False, dtype=float64, backend='numpy')")
    assert repr(layers.Conv2d(1, 1, 3, padding="same")) == (
        "Conv2d(1, 1, kernel_size=(3, 3), stride=(1, 1), padding='same')")
    assert repr(layers.Conv1d(2, 4, 3)) == "Conv1d(2, 4, kernel_size=(3,), stride=(1,))"
    assert repr(layers.MaxPool2d((2, 3), stride=1)) == (
        "MaxPool2d(kernel_size=(2, 3), stride=1, padding=0, dilation=1, ceil_mode=False)")
    assert repr(layers.MaxPool1d(2)) == (
        "MaxPool1d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)")
    assert repr(layers.Linear(3, 2, bias=False)) == (
        "Linear(in_features=3, out_features=2, bias=False)")
    assert repr(layers.ReLU()) + repr(layers.Tanh()) + repr(layers.Flatten()) == (
        "ReLU()Tanh()Flatten()")
    inner = layers.Sequential(layers.ReLU())
    assert repr(layers.Sequential(layers.Sigmoid(), inner)) == (
        "Sequential(\n  (0): Sigmoid()\n  (1): Sequential(\n    (0): ReLU()\n  )\n)")
    assert repr(layers.Parameter(np.zeros((2, 3)))) == "Parameter(shape=(2, 3), dtype=float64)"


# --------------------------------------------------------------------------- backend switch


def test_backend_default_and_validation():
    assert backend.get_default_backend() == "numba"
    assert backend.get_backend().__name__ == "fastconv"
    assert backend.set_default_backend("numpy") == "numba"
    assert backend.get_backend() is fastconv.reference
    with pytest.raises(ValueError, match=r"backend must be one of \['numba', 'numpy'\].*'cuda'"):
        backend.set_default_backend("cuda")
    assert backend.get_default_backend() == "numpy"


def spy_on(monkeypatch, name):
    calls = []
    original = getattr(fastconv.reference, name)

    def spy(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(fastconv.reference, name, spy)
    return calls


def test_layers_follow_the_default_backend_unless_pinned(monkeypatch):
    calls = spy_on(monkeypatch, "conv2d")
    x = np.ones((1, 2, 4, 4))
    follower, pinned = small_conv(), layers.Conv2d(2, 3, 3, dtype=F64, rng=0, backend="numba")
    follower(x)
    pinned(x)
    assert calls == []
    backend.set_default_backend("numpy")
    pinned(x)
    assert calls == []
    follower(x)
    assert calls == ["conv2d"]


def test_backward_uses_the_backend_of_its_forward(monkeypatch):
    conv_calls = spy_on(monkeypatch, "conv2d_grad_weight")
    pool_calls = spy_on(monkeypatch, "max_pool2d_backward")
    net = layers.Sequential(small_conv(), layers.MaxPool2d(2))
    out = net(np.ones((1, 2, 6, 6)))
    backend.set_default_backend("numpy")
    net.backward(np.ones_like(out))
    assert conv_calls == [] and pool_calls == []
    net(np.ones((1, 2, 6, 6)))  # now forward runs on numpy, and so does backward
    backend.set_default_backend("numba")
    net.backward(np.ones_like(out))
    assert conv_calls == ["conv2d_grad_weight"] and pool_calls == ["max_pool2d_backward"]


def test_set_backend_reaches_conv_and_pool_layers():
    net = layers.Sequential(small_conv(), layers.ReLU(), layers.MaxPool2d(2))
    net.set_backend("numpy")
    assert net[0].backend == net[2].backend == "numpy"
    net.set_backend(None)
    assert net[0].backend is None
    with pytest.raises(ValueError, match="backend must be one of"):
        net.set_backend("gpu")


@pytest.mark.parametrize("dtype, rtol", [(F64, 1e-9), (np.float32, 2e-4)])
def test_same_seed_trains_to_the_same_losses_on_both_backends(dtype, rtol):
    from fastconv.losses import SoftmaxCrossEntropyLoss
    from fastconv.optim import SGD

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4, 7, 7)).astype(dtype)
    y = rng.integers(0, 3, 8)
    losses = {}
    for name in ("numba", "numpy"):
        net = layers.Sequential(layers.Conv2d(**CONV2D[0], dtype=dtype, rng=0, backend=name),
                                layers.ReLU(), layers.MaxPool2d(2, backend=name),
                                layers.Flatten(), layers.Linear(24, 3, dtype=dtype, rng=0))
        loss_fn, opt = SoftmaxCrossEntropyLoss(), SGD(net.parameters(), lr=0.1, momentum=0.9)
        losses[name] = []
        for _ in range(6):
            opt.zero_grad()
            losses[name].append(loss_fn(net(x), y))
            net.backward(loss_fn.backward())
            opt.step()
    assert losses["numba"][-1] < 0.7 * losses["numba"][0]
    np.testing.assert_allclose(losses["numba"], losses["numpy"], rtol=rtol)
