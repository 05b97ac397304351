"""Max-pool benchmarks: forward (with indices) and backward over the shape suite.

Ids read ``fwd-pool_vgg_2x2-float32`` / ``bwd-...``; each id is a
pytest-benchmark group holding fastconv, fastconv writing into reused
``out=`` arrays, the NumPy reference (where it takes under a second) and
PyTorch (in-process, when installed).
"""

import pytest

import fastconv
from fastconv import _bench, _suite
from fastconv import reference as numpy_reference

CASES = [
    pytest.param(case, pass_, dtype, id=f"{_suite.PASS_ABBREV[pass_]}-{case.id}-{dtype}")
    for dtype in _suite.DTYPES
    for pass_ in _suite.POOL_PASSES
    for case in _suite.POOL_CASES
]

parametrize = pytest.mark.parametrize(("case", "pass_", "dtype"), CASES)


@parametrize
def test_fastconv(run, case, pass_, dtype):
    run(_bench._numpy_call(fastconv, case, pass_, dtype), case, pass_, dtype, "fastconv")


@parametrize
def test_fastconv_out(run, case, pass_, dtype):
    run(_bench._numpy_call(fastconv, case, pass_, dtype, reuse_out=True), case, pass_, dtype,
        "out=")


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
