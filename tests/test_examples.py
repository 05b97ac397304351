"""The scripts in examples/ run and do what they claim."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_edge_filter_is_the_3x3_vertical_edge_detector():
    example = load("learn_edge_filter")
    np.testing.assert_array_equal(example.EDGE_FILTER, [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]])


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_learn_edge_filter_recovers_the_filter(backend):
    example = load("learn_edge_filter")
    weight, losses = example.learn_edge_filter(backend=backend)
    assert losses[0] > 1.0  # the random start is far from the answer
    assert np.abs(weight - example.EDGE_FILTER).max() < 1e-3
    assert losses[-1] < 1e-6


def test_learn_edge_filter_script_prints_the_result(capsys):
    load("learn_edge_filter").main()
    out = capsys.readouterr().out
    assert "learned filter:" in out
    error = float(out.split("edge detector: ")[1])
    assert error < 1e-3
