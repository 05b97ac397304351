"""The README's Python examples run, and its worked-example numbers are the computed ones."""

import pathlib
import re

import numpy as np

import fastconv

README = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)


def test_readme_table_examples_run():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    b = np.zeros(32, np.float32)
    y = fastconv.conv2d(x, w, b, stride=2, padding=1)
    dy = np.ones_like(y)
    out, idx = fastconv.max_pool2d(x, 2)
    dout = np.ones_like(out)
    examples = re.findall(r"\| `((?:y|dx|dw|db|out, idx|fastconv)[^`]*= fastconv\.[^`]*|fastconv\.[^`]*)` \|",
                          README)
    assert len(examples) >= 8
    for example in examples:
        exec(example, {"fastconv": fastconv, "x": x, "w": w, "b": b, "dy": dy, "dout": dout,
                       "idx": idx, "np": np})


def test_readme_worked_example_numbers():
    assert "[[1.3, 1.0], [0.05, 0.95]]" in README
    assert "[[0.37, 0.1], [0.295, 0.605]]" in README
    assert "0.166225" in README
