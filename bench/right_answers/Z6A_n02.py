"""n02 · Variables owned by objects."""
import os

import keras
import tensorflow as tf


class Linear(tf.Module):

    def __init__(self, in_features, out_features, name=None):
        super().__init__(name=name)
        limit = (6.0 / (in_features + out_features)) ** 0.5
        with self.name_scope:
            self.w = tf.Variable(
                tf.random.uniform([in_features, out_features], -limit, limit, dtype=tf.float32),
                name="w")
            self.b = tf.Variable(tf.zeros([out_features], dtype=tf.float32), name="b")

    def __call__(self, x):
        return tf.matmul(x, self.w) + self.b


class MLP(tf.Module):

    def __init__(self, in_features, layer_sizes, name=None):
        super().__init__(name=name)
        with self.name_scope:
            self.layers = []
            n_in = in_features
            for i, size in enumerate(layer_sizes, start=1):
                self.layers.append(Linear(n_in, size, name=f"layer{i}"))
                n_in = size

    def __call__(self, x):
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = tf.nn.relu(h)
        return h


class Dense(keras.layers.Layer):

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        n_in = input_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=(n_in, self.units),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, x):
        return tf.matmul(x, self.kernel) + self.bias


def increment(var, amount):
    return var.assign_add(amount)


def count_parameters(obj):
    return int(sum(int(tf.size(v)) for v in obj.trainable_variables))


def checkpoint_keys(obj, directory):
    ckpt = tf.train.Checkpoint(model=obj)
    prefix = ckpt.write(os.path.join(directory, "ckpt"))
    names = [name for name, _ in tf.train.list_variables(prefix)]
    return sorted(n for n in names if n != "_CHECKPOINTABLE_OBJECT_GRAPH")
