"""Loss functions with a forward and a backward pass (plain NumPy).

A loss is called as ``loss(input, target)`` and returns a Python float;
``loss.backward()`` then returns dL/dinput with ``input``'s shape and dtype.
The cache rules are those of :mod:`fastconv.layers`: ``backward`` before a
forward, a second ``backward`` for the same forward, or ``backward`` in eval
mode raise RuntimeError.

Examples
--------
>>> import numpy as np
>>> loss = MSELoss()
>>> loss(np.array([1.0, 3.0]), np.array([0.0, 0.0]))
5.0
>>> loss.backward()
array([1., 3.])
"""

import numpy as np

from . import _validation as v
from .layers import Module

__all__ = ["MSELoss", "SoftmaxCrossEntropyLoss"]


class _Loss(Module):
    def __call__(self, input, target):
        return self.forward(input, target)

    def _prediction(self, input):
        name = f"input (to {type(self).__name__})"
        arr = v.as_array(name, input)
        if arr.dtype.kind != "f":
            raise TypeError(
                f"{name} has dtype {arr.dtype}; losses accept float32 or float64 predictions: "
                "convert it with .astype(np.float32) or .astype(np.float64)"
            )
        if arr.size == 0:
            raise ValueError(f"{name} is empty (shape {arr.shape})")
        return arr


class MSELoss(_Loss):
    """Mean squared error ``mean((input - target)**2)`` over all elements.

    Methods
    -------
    forward(input, target) -> float
        ``input``: float32 or float64 array of any shape; ``target``: a
        numeric array of the same shape (no broadcasting), cast to
        ``input.dtype``.  The mean is accumulated in float64.
    backward() -> ndarray
        ``2 * (input - target) / input.size``, shape and dtype of ``input``.
    """

    def forward(self, input, target):
        pred = self._prediction(input)
        tgt = v.as_array("target (to MSELoss)", target)
        if tgt.shape != pred.shape:
            raise ValueError(
                f"target (to MSELoss) has shape {tgt.shape} but input has shape {pred.shape}; "
                "they must match (no broadcasting)"
            )
        diff = pred - tgt.astype(pred.dtype, copy=False)
        loss = float(np.mean(np.square(diff, dtype=np.float64)))
        self._save(diff=diff)
        return loss

    def backward(self):
        diff = self._saved()["diff"]
        self._release()
        return diff * diff.dtype.type(2.0 / diff.size)


class SoftmaxCrossEntropyLoss(_Loss):
    """Softmax followed by the negative log-likelihood, averaged over the batch.

    ``L = mean_n(logsumexp(input[n]) - input[n, target[n]])``, computed with
    the row maximum subtracted first, so large logits neither overflow nor
    lose the answer (as ``torch.nn.CrossEntropyLoss``).

    Methods
    -------
    forward(input, target) -> float
        ``input``: logits, float32 or float64, shape (N, num_classes);
        ``target``: integer class labels, shape (N,), each in
        ``[0, num_classes)``.
    backward() -> ndarray
        ``(softmax(input) - one_hot(target)) / N``, shape (N, num_classes),
        ``input``'s dtype.
    """

    def forward(self, input, target):
        logits = self._prediction(input)
        v.check_ndim("input (to SoftmaxCrossEntropyLoss)", logits, 2, "(N, num_classes)")
        N, num_classes = logits.shape
        labels = np.asarray(target)
        if labels.dtype.kind not in "iu":
            raise TypeError(
                f"target (to SoftmaxCrossEntropyLoss) must hold integer class labels; got dtype "
                f"{labels.dtype}: convert it with .astype(np.int64)"
            )
        if labels.shape != (N,):
            raise ValueError(
                f"target (to SoftmaxCrossEntropyLoss) must have shape (N,) = ({N},) to match "
                f"input of shape {logits.shape}; got shape {labels.shape}"
            )
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"target (to SoftmaxCrossEntropyLoss) labels must lie in [0, {num_classes}); "
                f"got values in [{lo}, {hi}]"
            )
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        log_probs = shifted - log_norm
        rows = np.arange(N)
        loss = -float(np.mean(log_probs[rows, labels], dtype=np.float64))
        self._save(log_probs=log_probs, labels=labels)
        return loss

    def backward(self):
        cache = self._saved()
        log_probs, labels = cache["log_probs"], cache["labels"]
        grad = np.exp(log_probs)
        grad[np.arange(len(labels)), labels] -= 1
        grad /= len(labels)
        self._release()
        return grad
