"""Project conventions that a reviewer would otherwise have to check by eye."""

import ast
import pathlib
import re

import fastconv

ROOT = pathlib.Path(__file__).resolve().parents[1]
KERNELS = ROOT / "kernels"


def test_numba_options_come_from_one_module():
    """No kernel module calls numba.njit / jit or passes fastmath= itself."""
    for path in KERNELS.glob("*.py"):
        if path.name == "_jit.py":
            continue
        text = path.read_text()
        assert not re.search(r"\b(njit|jit)\s*\(|@(numba\.)?n?jit\b|fastmath\s*=", text), path


def test_kernels_do_not_validate():
    """Kernels never raise: validation lives in fastconv._validation."""
    for path in KERNELS.glob("*.py"):
        tree = ast.parse(path.read_text())
        assert not any(isinstance(n, ast.Raise) for n in ast.walk(tree)), path


def test_reference_imports_nothing_from_the_package():
    tree = ast.parse((ROOT / "fastconv" / "reference.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not (node.module or "").startswith("fastconv"), ast.dump(node)
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("fastconv") for a in node.names)


def test_public_namespace():
    expected = {
        "conv1d", "conv1d_grad_bias", "conv1d_grad_input", "conv1d_grad_weight",
        "conv2d", "conv2d_grad_bias", "conv2d_grad_input", "conv2d_grad_weight",
        "max_pool1d", "max_pool1d_backward", "max_pool2d", "max_pool2d_backward",
        "release_memory", "set_num_threads",
    }
    assert set(fastconv.__all__) == expected
    for name in expected:
        assert callable(getattr(fastconv, name))
        assert getattr(fastconv, name).__doc__


def test_kernels_are_installed_under_fastconv():
    import fastconv.kernels

    assert pathlib.Path(fastconv.kernels.__file__).parent.name in ("kernels",)
    assert fastconv.kernels.__name__ == "fastconv.kernels"


def test_noalias_helper_marks_array_arguments_noalias():
    """The pipeline behind ``noalias_helper`` still reaches Numba's lowering.

    The direct engine's tasks rely on it for vectorisation (10-35% slower
    without); a Numba release that ignored the flag would only show up as a
    slowdown, so check the LLVM signature instead.
    """
    import numba
    import numpy as np

    from fastconv.kernels import _jit

    def axpy(a, x, y):
        for i in range(x.size):
            y[i] += a * x[i]

    marked = numba.njit(pipeline_class=_jit._NoAliasCompiler)(axpy)
    plain = numba.njit(axpy)
    for fn in (marked, plain):
        y = np.ones(4, np.float32)
        fn(np.float32(2), np.ones(4, np.float32), y)
        assert (y == 3).all()

    def data_pointer_params(dispatcher):
        """The LLVM parameters holding x's and y's data pointers."""
        (llvm,) = dispatcher.inspect_llvm().values()
        define = next(line for line in llvm.splitlines()
                      if line.startswith("define") and "%arg.x.4" in line)
        params = [p for p in define.split(", ") if p.endswith(("%arg.x.4", "%arg.y.4"))]
        assert len(params) == 2, define
        return params

    assert all("noalias" in p for p in data_pointer_params(marked)), data_pointer_params(marked)
    assert not any("noalias" in p for p in data_pointer_params(plain)), data_pointer_params(plain)
