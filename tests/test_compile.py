"""``python -m fastconv compile`` reaches every compiled variant.

Runs in a fresh interpreter (in this one, other tests have already compiled
whatever they used): after the command, a varied set of public calls must
not compile any new kernel signature.
"""

import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from numba.core.registry import CPUDispatcher
    import fastconv
    from fastconv.__main__ import main

    assert main(["compile", "--dtype", "float32"]) == 0

    def signatures():
        return {f"{name}.{attr}": len(obj.signatures)
                for name, mod in list(sys.modules.items()) if name.startswith("fastconv.kernels")
                for attr, obj in vars(mod).items() if isinstance(obj, CPUDispatcher)}

    before = signatures()
    print("compiled:", sorted(k.rsplit(".", 1)[1] for k, v in before.items() if v))
    rng = np.random.default_rng(1)

    def r(*shape):
        return rng.uniform(-1, 1, shape).astype(np.float32)

    for xs, ws, kw in [
        ((2, 4, 9, 7), (6, 2, 3, 2),
         dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
        ((1, 3, 32, 32), (8, 3, 3, 3), dict(padding=1)),
        ((3, 16, 12, 12), (16, 1, 3, 3), dict(padding=1, groups=16)),
        ((2, 64, 14, 14), (128, 64, 3, 3), dict(stride=2, padding=1)),
        ((2, 64, 14, 14), (16, 64, 1, 1), dict()),
        ((8, 16, 32, 32), (32, 16, 1, 1), dict(stride=2)),
        ((1, 1, 3, 3), (1, 1, 2, 2), dict()),
        ((2, 3, 20, 20), (5, 3, 5, 5), dict(padding="same")),
    ]:
        x, w, b = r(*xs), r(*ws), r(ws[0])
        y = fastconv.conv2d(x, w, b, **kw)
        fastconv.conv2d_grad_input(x.shape, w, y, **kw)
        fastconv.conv2d_grad_weight(x, w.shape, y, **kw)
        x[0, 0, 0, 0] = np.nan
        fastconv.conv2d_grad_weight(x, w.shape, y, **kw)
    x, w = r(2, 3, 17), r(4, 3, 3)
    y = fastconv.conv1d(x, w, stride=2, padding=1)
    fastconv.conv1d_grad_input(x.shape, w, y, stride=2, padding=1)
    fastconv.conv1d_grad_weight(x, w.shape, y, stride=2, padding=1)
    for xs, args in [((2, 3, 9, 9), (2,)), ((2, 3, 10, 11), (3, 2, 1, 1, True)),
                     ((1, 2, 8, 8), (3, 1, 1, 2)), ((1, 2, 7, 7), ((2, 3), (1, 2))),
                     ((4, 32, 40, 40), (3, 2, 1))]:
        x = r(*xs)
        out, idx = fastconv.max_pool2d(x, *args)
        fastconv.max_pool2d_backward(out, idx, x.shape)
    out, idx = fastconv.max_pool1d(r(2, 3, 11), 3, 2, 1)
    fastconv.max_pool1d_backward(out, idx, (2, 3, 11))

    new = {k: v for k, v in signatures().items() if v != before.get(k, 0)}
    print("new after compile:", new)
""")

#: Kernels the command must have compiled (or loaded): the parallel kernel
#: the convolution engines share, its small-call build, and the pooling kernels.
_EXPECTED = ["run_tasks", "run_tasks_serial", "_forward", "max_pool2d_backward"]


def test_compile_command_covers_every_kernel():
    run = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                         timeout=900, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert any(line.startswith("total ") for line in lines), run.stdout
    compiled = next(line for line in lines if line.startswith("compiled:"))
    for name in _EXPECTED:
        assert f"'{name}'" in compiled, (name, compiled)
    assert lines[-1] == "new after compile: {}", run.stdout
