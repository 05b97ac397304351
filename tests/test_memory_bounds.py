"""No kernel reads outside its arrays: inputs placed against an unmapped page.

The kernels index with unchecked offsets, and vector loads read whole
registers.  Here every input array starts (or ends) exactly at a page the
process may not read, so a read before its first element (or past its last)
is a segmentation fault instead of a silently ignored garbage value.  The
shapes make the last vector of a plane ragged (plane sizes that are not a
multiple of 16) and reach each engine's in-place reads.
"""

import ctypes
import mmap
import sys

import numpy as np
import pytest

import fastconv
from fastconv import reference

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="guard pages via mprotect (Linux)")

_KEEP = []


def _guarded(a, where):
    """A C-contiguous copy of ``a`` whose first (``"start"``) or last (``"end"``) byte
    touches a page that cannot be read."""
    n = a.nbytes
    page = mmap.PAGESIZE
    total = (-(-n // page) + 2) * page
    m = mmap.mmap(-1, total, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    addr = ctypes.addressof((ctypes.c_char * total).from_buffer(m))
    libc = ctypes.CDLL(None)
    for guard in (addr, addr + total - page):
        assert libc.mprotect(ctypes.c_void_p(guard), page, 0) == 0
    offset = page if where == "start" else total - page - n
    g = np.frombuffer(m, np.uint8, count=n, offset=offset).view(a.dtype).reshape(a.shape)
    g[...] = a
    _KEEP.append(m)  # the pages must outlive every view of them
    return g


# N, C, H, W, K, R x R kernel, padding, stride, groups: each engine and layout
_CONVS = [
    (2, 4, 7, 7, 4, 1, 0, 1, 1),  # direct engine, input read in place, ragged 49-pixel planes
    (1, 8, 5, 5, 8, 1, 0, 1, 1),
    (3, 4, 7, 9, 4, 3, 0, 1, 1),  # in place with a 3 x 3 kernel
    (2, 4, 7, 7, 4, 3, 1, 1, 4),  # depthwise
    (2, 6, 9, 9, 6, 3, 1, 1, 6),
    (1, 32, 13, 13, 32, 3, 1, 1, 32),
    (2, 3, 11, 11, 3, 5, 2, 1, 3),
    # depthwise engine on rows of whole vectors: unmasked reads in place,
    # up to the input's last element (no padding), 4-row stencil groups
    (2, 2, 8, 32, 2, 3, 0, 1, 2),
    (1, 3, 12, 37, 3, 5, 2, 1, 3),  # 5-row stencil, ragged rows, masked ends
    (1, 2, 10, 33, 2, 2, 0, 1, 2),  # 2-row filter: the tap-list blocks
    (2, 16, 9, 9, 24, 3, 1, 2, 1),  # stride 2: packed engine, input-gradient phases
    (2, 64, 5, 5, 16, 3, 1, 1, 1),  # long reduction: packed engine
    (2, 5, 8, 8, 8, 3, 1, 1, 1),  # narrow image: column-shifted band (forward and gradient)
    (3, 16, 6, 6, 16, 1, 0, 2, 1),  # 1 x 1 stride 2
]


@pytest.mark.parametrize("where", ["start", "end"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", _CONVS, ids=lambda c: "x".join(map(str, c)))
def test_conv_reads_stay_inside_the_arrays(case, dtype, where):
    N, C, H, W, K, R, p, s, g = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C // g, R, R)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    kw = dict(stride=s, padding=p, groups=g)
    y = reference.conv2d(x, w, b, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, gb, gdy = (_guarded(a, where) for a in (x, w, b, dy))
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fastconv.conv2d(gx, gw, gb, **kw), y, **tol)
    np.testing.assert_allclose(fastconv.conv2d_grad_input(x.shape, gw, gdy, **kw),
                               reference.conv2d_grad_input(x.shape, w, dy, **kw), **tol)
    np.testing.assert_allclose(fastconv.conv2d_grad_weight(gx, w.shape, gdy, **kw),
                               reference.conv2d_grad_weight(x, w.shape, dy, **kw), **tol)


@pytest.mark.parametrize("where", ["start", "end"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_pool_reads_stay_inside_the_arrays(kernel, stride, padding, dtype, where):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 11, 13)).astype(dtype)
    out, idx = fastconv.max_pool2d(_guarded(x, where), kernel, stride=stride, padding=padding)
    want, want_idx = reference.max_pool2d(x, kernel, stride=stride, padding=padding)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(idx, want_idx)
    dy = rng.standard_normal(out.shape).astype(dtype)
    got = fastconv.max_pool2d_backward(_guarded(dy, where), _guarded(idx, where), x.shape)
    # overlapping windows add up to 4 gradients into one input, in any order
    tol = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(got, reference.max_pool2d_backward(dy, want_idx, x.shape),
                               rtol=tol, atol=tol)
