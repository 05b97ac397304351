"""Container layer: :class:`Sequential`."""

from ._base import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """Layers applied in order; ``backward`` runs them in reverse.

    Parameter names in :meth:`state_dict` are ``"index.name"`` (``"0.weight"``),
    as in PyTorch.  ``net[i]``, ``len(net)`` and iteration give the layers.

    Examples
    --------
    >>> from fastconv.layers import Conv2d, ReLU
    >>> Sequential(Conv2d(1, 6, 5), ReLU())
    Sequential(
      (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))
      (1): ReLU()
    )
    """

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(
                    f"Sequential takes layers (fastconv.layers.Module instances); argument "
                    f"{i} is {layer!r} of type {type(layer).__name__}"
                )
        self.layers = list(layers)

    def children(self):
        return list(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def forward(self, x):
        """Apply every layer in order; each caches what its backward needs."""
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, grad_output):
        """Back-propagate through the layers in reverse; returns dL/dx."""
        for layer in reversed(self.layers):
            grad_output = layer.backward(grad_output)
        return grad_output

    def __repr__(self):
        lines = [f"{type(self).__name__}("]
        for i, layer in enumerate(self.layers):
            body = repr(layer).replace("\n", "\n  ")
            lines.append(f"  ({i}): {body}")
        lines.append(")")
        return "\n".join(lines)
