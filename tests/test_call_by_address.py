"""Kernels call their large helpers by address (``kernels/_jit.py``): the mechanism itself."""

import numba
import numpy as np
import pytest
from numba.core.errors import TypingError

from fastconv.kernels import _jit


@numba.njit
def _scaled_sum(out, a, k, scale):
    s = scale * 0
    for i in range(a.size):
        s += a[i] * scale
    out[k] = s


_HELPER = _jit.CalledByAddress(_scaled_sum, arrays=dict(out=(1, True), a=(1, False)),
                               scalars=("scale",))


@numba.njit
def _caller(addr, out, a, scale):
    for k in range(out.size):
        _jit.call_compiled(addr, _scaled_sum, (out, a, k, scale))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_call_compiled_runs_the_helper(dtype):
    a = np.arange(5, dtype=dtype)
    a.flags.writeable = False  # read-only array for a read-only parameter
    out = np.zeros(3, dtype)
    scale = dtype(2)
    _caller(_HELPER.address(np.dtype(dtype)), out, a, scale)
    np.testing.assert_array_equal(out, np.full(3, 20, dtype))


def test_signature_mismatch_does_not_compile():
    """A call whose types match no compiled signature is a compile-time error."""
    _HELPER.address(np.dtype(np.float64))
    with pytest.raises(TypingError, match="call_compiled"):
        # int32 array instead of float64: no such signature
        _caller(_HELPER.address(np.dtype(np.float64)), np.zeros(2), np.zeros(2, np.int32),
                np.float64(1))


def test_caller_does_not_link_the_helper():
    """The caller's code holds no copy of the helper's (that is the point: compile time)."""
    out, a = np.zeros(2), np.ones(3)
    _caller(_HELPER.address(np.dtype(np.float64)), out, a, np.float64(1))
    helper = _scaled_sum.overloads[_HELPER.signature(np.dtype(np.float64)).args]
    caller = _caller.overloads[(numba.types.int64,) + tuple(map(numba.typeof, (out, a, 1.0)))]
    name = helper.fndesc.llvm_func_name
    assert f"@{name}(" in helper.library.get_llvm_str()
    assert name not in caller.library.get_llvm_str()


@numba.njit
def _never_called(out, k):
    out[k] = 1


_LAZY = _jit.CalledByAddress(_never_called, arrays=dict(out=(1, True)))


@numba.njit
def _maybe_caller(addr, out, call):
    if call:
        _jit.call_compiled(addr, _never_called, (out, 0))
    out[1] = 2


def test_caller_compiles_without_compiling_the_helper():
    """Typing needs only the declaration: a helper compiles when its address is asked for."""
    out = np.zeros(2)
    _maybe_caller(0, out, False)  # address 0: the call is never made
    assert out[1] == 2 and out[0] == 0
    assert len(_never_called.overloads) == 0
    _maybe_caller(_LAZY.address(np.dtype(np.float64)), out, True)
    assert out[0] == 1
    assert len(_never_called.overloads) == 1


def test_every_engine_runs_function_has_the_interface_signature():
    # run_tasks types its calls against engine_runs and calls each engine's
    # runs function at its address: their compiled signatures must be equal
    import importlib

    module = {name: importlib.import_module(f"fastconv.kernels.{name}") for name in
              ("_tasks", "conv2d_direct", "conv2d_forward", "conv2d_grad_input",
               "conv2d_grad_weight", "_grad_weight_depthwise", "conv2d_depthwise")}
    runs = [module["conv2d_direct"].DIRECT_TASKS, module["conv2d_forward"].PACKED_TASK,
            module["conv2d_grad_input"].PHASES_RUNS,
            module["conv2d_grad_weight"].CHUNK, module["conv2d_grad_weight"].SUM_PARTIALS,
            module["_grad_weight_depthwise"].DEPTHWISE_CHUNK,
            module["conv2d_depthwise"].DEPTHWISE_TASKS]
    declared = [d for d in _jit._DECLARED.values() if d.function.py_func.__code__.co_varnames[:7]
                == ("run", "plan", "x", "w", "b", "out", "out2") and not d.interface]
    assert sorted(map(id, declared)) == sorted(map(id, runs))
    for dtype in _jit.DTYPES:
        expected = module["_tasks"].ENGINE_RUNS.signature(dtype)
        for d in runs:
            assert d.signature(dtype) == expected, d.function
    assert module["_tasks"].ENGINE_RUNS.interface
