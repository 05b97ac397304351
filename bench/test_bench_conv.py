"""Convolution benchmarks: forward, grad_input and grad_weight over the shape suite.

Ids read ``fwd-resnet50_3x3-float32`` (``fwd``/``dx``/``dw``); each id is a
pytest-benchmark group holding fastconv, im2col, the NumPy reference (small
shapes only) and PyTorch (in-process, when installed).
"""

import pytest

import fastconv
from fastconv import _bench, _im2col, _suite
from fastconv import reference as numpy_reference

CASES = [
    pytest.param(case, pass_, dtype, id=f"{_suite.PASS_ABBREV[pass_]}-{case.id}-{dtype}")
    for dtype in _suite.DTYPES
    for pass_ in _suite.CONV_PASSES
    for case in _suite.CONV_CASES + ((_suite.EXAMPLE,) if pass_ == "forward" else ())
]

parametrize = pytest.mark.parametrize(("case", "pass_", "dtype"), CASES)


@parametrize
def test_fastconv(run, case, pass_, dtype):
    run(_bench._numpy_call(fastconv, case, pass_, dtype), case, pass_, dtype, "fastconv")


@parametrize
def test_im2col(run, case, pass_, dtype):
    run(_bench._numpy_call(_im2col, case, pass_, dtype), case, pass_, dtype, "im2col")


@parametrize
def test_reference(run, case, pass_, dtype):
    if _bench._reference_estimate_s(case, pass_, dtype) >= _bench.REFERENCE_LIMIT_S:
        pytest.skip("the NumPy reference would take over a second per call here")
    run(_bench._numpy_call(numpy_reference, case, pass_, dtype), case, pass_, dtype,
        "reference")


@parametrize
def test_torch(run, case, pass_, dtype):
    torch = pytest.importorskip("torch")
    with torch.inference_mode():
        run(_bench._torch_call(torch, case, pass_, dtype), case, pass_, dtype, "torch")
