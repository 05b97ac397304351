"""Max-pooling layers: :class:`MaxPool2d` and :class:`MaxPool1d`."""

from .. import _validation as v
from .. import backend as _backend
from ._base import Module, _as_bool

__all__ = ["MaxPool1d", "MaxPool2d"]


def _compact(t):
    """Show (2, 2) as 2 and (2, 3) as (2, 3), for pooling reprs."""
    return t[0] if len(set(t)) == 1 else t


class _MaxPoolNd(Module):
    _uses_backend = True
    _spatial = 2
    _layout = "(N, C, H, W)"

    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode, backend):
        super().__init__()
        n = self._spatial
        self.kernel_size = v.as_tuple("kernel_size", kernel_size, n, 1)
        self.stride = (self.kernel_size if stride is None
                       else v.as_tuple("stride", stride, n, 1))
        self.padding = v.as_tuple("padding", padding, n, 0)
        self.dilation = v.as_tuple("dilation", dilation, n, 1)
        self.ceil_mode = _as_bool("ceil_mode", ceil_mode)
        self.backend = None if backend is None else _backend.resolve(backend)
        # Validates padding <= kernel_size // 2 on the smallest input.
        span = tuple(d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_size))
        v.pool_geometry((1, 1) + span, *self._args(), n)

    def _args(self):
        return self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode

    def _fn(self, backend_name, suffix=""):
        return getattr(_backend.get_backend(backend_name), f"max_pool{self._spatial}d{suffix}")

    def forward(self, x):
        x = self._input(x, self._spatial + 2, self._layout)
        if x.shape != self._checked_shape:  # the numpy backend does not validate
            v.pool_geometry(x.shape, *self._args(), self._spatial)
            self._checked_shape = x.shape
        name = _backend.resolve(self.backend)
        out, indices = self._fn(name)(x, *self._args())
        out = out.astype(x.dtype, copy=False)
        self._save(indices=indices, input_shape=x.shape, dtype=x.dtype, backend=name)
        return out

    def backward(self, grad_output):
        cache = self._saved()
        indices = cache["indices"]
        g = self._grad_output(grad_output, indices.shape, cache["dtype"])
        grad_x = self._fn(cache["backend"], "_backward")(g, indices, cache["input_shape"])
        self._release()
        return grad_x.astype(g.dtype, copy=False)

    def extra_repr(self):
        text = (f"kernel_size={_compact(self.kernel_size)}, stride={_compact(self.stride)}, "
                f"padding={_compact(self.padding)}, dilation={_compact(self.dilation)}, "
                f"ceil_mode={self.ceil_mode}")
        if self.backend is not None:
            text += f", backend={self.backend!r}"
        return text


class MaxPool2d(_MaxPoolNd):
    """2-D max-pooling layer, as ``torch.nn.MaxPool2d``.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``; smaller strides give overlapping windows.
    padding : int or (int, int), default 0
        Implicit -inf padding, at most ``kernel_size // 2``.
    dilation : int or (int, int), default 1
    ceil_mode : bool, default False
    backend : {"numba", "numpy"} or None, default None

    Notes
    -----
    ``forward(x)``: x (N, C, H, W), float32 or float64 -> (N, C, P, Q) of
    x's dtype; caches the int64 argmax indices.  ``backward(grad_output)``:
    (N, C, P, Q) -> (N, C, H, W), each gradient routed to its window's first
    maximum and summed where windows overlap.

    Examples
    --------
    >>> MaxPool2d(2)
    MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    """

    _spatial = 2
    _layout = "(N, C, H, W)"

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 backend=None):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode, backend)


class MaxPool1d(_MaxPoolNd):
    """1-D max-pooling layer, as ``torch.nn.MaxPool1d``.

    Parameters as :class:`MaxPool2d` with one spatial dimension.  ``forward``:
    (N, C, L) -> (N, C, Lout); ``backward``: (N, C, Lout) -> (N, C, L).
    """

    _spatial = 1
    _layout = "(N, C, L)"

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 backend=None):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode, backend)
