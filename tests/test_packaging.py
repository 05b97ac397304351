"""The wheel installs `fastconv` (with `fastconv.kernels`) and no other top-level package."""

import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_has_only_fastconv_top_level(tmp_path):
    pytest.importorskip("build")
    # build from a copy: a leftover build/ directory in the work tree would leak stale files
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", ".ci-venv", ".venv", "__pycache__", ".hypothesis"))
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(src)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("fastconv-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"fastconv"}, top
    assert "fastconv/kernels/__init__.py" in names
    assert "fastconv/kernels/conv2d_forward.py" in names
    assert not any(n.startswith("kernels/") for n in names)

    # the unpacked wheel imports and runs, without the source tree on the path
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import fastconv, fastconv.kernels, numpy as np;"
            "assert fastconv.__file__.startswith(%r);"
            "print(fastconv.conv2d(np.ones((1,1,3,3)), np.ones((1,1,2,2))).sum())" % str(site))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(site),
                                                              "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "16.0"


def test_source_checkout_imports_without_an_editable_install(tmp_path):
    """`python -m fastconv ...` from the repo root imports this tree, whose kernels sit beside it.

    ``-S`` skips site-packages' .pth files, so no editable-install hook is active;
    numpy and numba still come from site-packages, added to sys.path by hand.
    """
    import numpy

    site = str(pathlib.Path(numpy.__file__).resolve().parents[1])
    code = ("import sys; sys.path[:0] = [%r, %r]; import fastconv, fastconv.kernels, numpy as np;"
            "assert fastconv.kernels.__file__.startswith(%r), fastconv.kernels.__file__;"
            "print(fastconv.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))).sum())"
            % (str(ROOT), site, str(ROOT / "kernels")))
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "16.0"
