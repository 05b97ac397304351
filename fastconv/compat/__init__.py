"""Drop-in replacements for the layer functions of existing NumPy CNN code.

* :mod:`fastconv.compat.cs231n`: the conv / max-pool functions of the
  Stanford cs231n assignments (``cs231n.layers``, ``cs231n.fast_layers``,
  ``cs231n.layer_utils``).
"""
