"""n02 · Variables owned by objects."""
import os

import keras
import tensorflow as tf


class Linear(tf.Module):
    """Linear."""

    def __init__(self, in_features, out_features, name=None):
        """init."""
        super().__init__(name=name)
        with self.name_scope:
            limit = (6.0 / (in_features + out_features)) ** 0.5
            self.w = tf.Variable(
                tf.random.uniform([in_features, out_features], -limit, limit, dtype=tf.float32), name="w")
            self.b = tf.Variable(tf.zeros([out_features], dtype=tf.float32), name="b")

    def __call__(self, x):
        """call."""
        return tf.matmul(x, self.w) + self.b


class MLP(tf.Module):
    """MLP."""

    def __init__(self, in_features, layer_sizes, name=None):
        """init."""
        super().__init__(name=name)
        with self.name_scope:
            self.layers = []
            prev = in_features
            for i, size in enumerate(layer_sizes, start=1):
                self.layers.append(Linear(prev, size, name=f"layer{i}"))
                prev = size

    def __call__(self, x):
        """call."""
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = tf.nn.relu(h)
        return h


class Dense(keras.layers.Layer):
    """Dense."""

    def __init__(self, units, **kwargs):
        """init."""
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        """build."""
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, x):
        """call."""
        return tf.matmul(x, self.kernel) + self.bias


def increment(var, amount):
    """inc."""
    return var.assign_add(amount)


def count_parameters(obj):
    """count."""
    total = 0
    for v in obj.trainable_variables:
        n = 1
        for d in v.shape:
            n *= int(d)
        total += n
    return total


def checkpoint_keys(obj, directory):
    """keys."""
    prefix = os.path.join(directory, "ckpt")
    tf.train.Checkpoint(model=obj).write(prefix)
    keys = [name for name, _ in tf.train.list_variables(prefix)
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    return sorted(keys)
