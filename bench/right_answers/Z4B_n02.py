# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run n02        (or: pytest tests/test_n02_modules_layers.py)
# Generated from solutions/n02_modules_layers.py by `python -m tfkata.stubs n02`; `kata reset n02` restores it.
"""n02 · Variables owned by objects: tf.Module and Keras layers (TF 2 twin of k02).

Then → now. In TF 1 (k02) a variable lived in the graph under a global name: ``get_variable`` looked
it up by that name, a ``variable_scope`` with ``reuse=True`` shared it, and ``name_scope`` only
renamed ops. TF 2 has no global collection and no ``get_variable``: a variable belongs to the Python
object that created it. A ``tf.Module`` (or a Keras layer, which is one) finds its variables by
walking its attributes (``trainable_variables``); sharing weights is calling the *same object* again;
a new object has new weights. Names are now only labels: two variables may both be called ``w``,
and a checkpoint keys them by the object path that reaches them (``model/layers/0/w``), not by
name. Gained: no name collisions, no ``reuse`` flags, no initialiser to run. Lost: you cannot fetch
a variable by its name from anywhere; you must keep a reference to its owner.

You write: ``Linear`` and ``MLP`` as ``tf.Module`` subclasses (k02's ``mlp`` as objects),
``Dense``, a Keras layer whose ``build`` creates its weights with ``add_weight``, ``increment``
(k02's ``assign``, eagerly), ``count_parameters`` and ``checkpoint_keys``.

Keras 2 vs 3 (``import keras``: Keras 2 on TF 2.12–2.15, Keras 3 from 2.16): both build a layer's
weights on its first call and share them on later calls. A Keras 3 variable's ``name`` is the bare
name (``"kernel"``) and its ``path`` is ``"dense/kernel"``; a Keras 2 variable's ``name`` is
``"dense/kernel:0"``. The tests only rely on what both do.
"""
import os

import keras
import tensorflow as tf


class Linear(tf.Module):
    """``y = x @ w + b`` for ``x`` [B, in_features] float32, ``y`` [B, out_features].

    ``__init__`` creates, inside the module's own name scope (``with self.name_scope:``), two
    ``tf.Variable``s: ``w`` [in_features, out_features] drawn from the Glorot uniform distribution
    (uniform on ±sqrt(6 / (in_features + out_features)), k02's default initializer) named ``"w"``, and
    ``b`` [out_features] of zeros named ``"b"``; keep them as the attributes ``self.w`` and
    ``self.b``. Their names then carry the module's name: ``linear/w:0`` (``name=None`` gives the
    module the name ``linear``). ``__call__`` creates nothing: it uses the same ``w`` and ``b`` on
    every call.
    """

    def __init__(self, in_features, out_features, name=None):
        """Create ``self.w`` [in_features, out_features] (Glorot uniform, named "w") and ``self.b``
        [out_features] (zeros, named "b") inside ``self.name_scope``, after ``super().__init__(name=name)``."""
        super().__init__(name=name)
        with self.name_scope:
            limit = (6.0 / (in_features + out_features)) ** 0.5
            self.w = tf.Variable(tf.random.uniform([in_features, out_features], -limit, limit), name="w")
            self.b = tf.Variable(tf.zeros([out_features]), name="b")

    def __call__(self, x):
        """``x @ w + b`` for ``x`` [B, in_features]: [B, out_features]. Creates no variables."""
        return tf.matmul(x, self.w) + self.b


class MLP(tf.Module):
    """k02's ``mlp`` as an object: one :class:`Linear` per entry of ``layer_sizes``.

    ``__init__`` builds, inside the module's name scope, the list ``self.layers``: layer i (1-based)
    is ``Linear(in, layer_sizes[i-1], name=f"layer{i}")`` where ``in`` is ``in_features`` for the
    first layer and the previous layer's size after that. The variables are then named
    ``mlp/layer1/w:0``, ``mlp/layer1/b:0``, ``mlp/layer2/w:0``, ... (k02: ``layer1/W``, ``layer1/b``).
    ``__call__(x)``: ``relu`` after every layer but the last, which stays linear; returns
    [B, layer_sizes[-1]].
    """

    def __init__(self, in_features, layer_sizes, name=None):
        """Build ``self.layers``, one ``Linear(..., name=f"layer{i}")`` per size, inside ``self.name_scope``."""
        super().__init__(name=name)
        with self.name_scope:
            self.layers = []
            n_in = in_features
            for i, size in enumerate(layer_sizes, start=1):
                self.layers.append(Linear(n_in, size, name=f"layer{i}"))
                n_in = size

    def __call__(self, x):
        """The layers in order on ``x`` [B, in_features], ``relu`` between them, none after the last."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = tf.nn.relu(x)
        return x


class Dense(keras.layers.Layer):
    """A Keras layer ``y = x @ kernel + bias`` with ``units`` outputs (no activation).

    ``__init__(units, **kwargs)``: pass ``kwargs`` (e.g. ``name``) to the base class, keep ``units``.
    ``build(input_shape)``: Keras calls it once, on the first call, with the input's shape; create
    ``self.kernel`` = ``add_weight(name="kernel", shape=(in, units), initializer="glorot_uniform")``
    and ``self.bias`` = ``add_weight(name="bias", shape=(units,), initializer="zeros")``.
    ``call(x)``: the product, with no new weights. Calling the same layer again reuses its two weights
    (this is TF 2's ``reuse=True``); another ``Dense`` object has weights of its own.
    """

    def __init__(self, units, **kwargs):
        """Pass ``kwargs`` to ``keras.layers.Layer`` and keep ``units``; create no weights yet."""
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        """Create ``self.kernel`` (in, units), glorot_uniform, and ``self.bias`` (units,), zeros, with
        ``add_weight``; ``in`` is ``input_shape[-1]``. Keras calls this once, before the first ``call``."""
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, x):
        """``x @ kernel + bias`` for ``x`` [B, in]: [B, units]. Creates no weights."""
        return tf.matmul(x, self.kernel) + self.bias


def increment(var, amount):
    """Add ``amount`` to the ``tf.Variable`` ``var`` now (k02 built an assign op for a session to run).

    Eagerly the update happens when this line runs. Returns the variable's new value (what
    ``assign_add`` gives back).
    """
    return var.assign_add(amount)


def count_parameters(obj):
    """The number of trainable scalars that the module or layer ``obj`` owns, as a Python int.

    Walk ``obj.trainable_variables`` (tf.Module and Keras layers both have it) and add up the number
    of entries of each (a [3, 4] kernel counts 12).
    """
    return int(sum(int(tf.size(v)) for v in obj.trainable_variables))


def checkpoint_keys(obj, directory):
    """Save ``obj`` in a TF 2 checkpoint under ``directory`` and return the keys stored in it.

    Write ``tf.train.Checkpoint(model=obj)`` to the prefix ``os.path.join(directory, "ckpt")``
    (``write``), list what was saved with ``tf.train.list_variables`` and return the sorted list of the
    variable keys, without the bookkeeping entry ``_CHECKPOINTABLE_OBJECT_GRAPH``. A key is the object
    path from the checkpoint to the variable, e.g. ``model/layers/0/w/.ATTRIBUTES/VARIABLE_VALUE``:
    the attribute names, never the variable's own ``name``.
    """
    prefix = os.path.join(directory, "ckpt")
    tf.train.Checkpoint(model=obj).write(prefix)
    return sorted(name for name, _ in tf.train.list_variables(prefix) if name != "_CHECKPOINTABLE_OBJECT_GRAPH")
