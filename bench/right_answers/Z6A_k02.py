"""k02 · Variables and scopes."""
import tensorflow as tf


def make_variables():
    v = tf.compat.v1.Variable([1.0, 2.0], name="v")
    w = tf.compat.v1.get_variable("w", shape=[3, 4], dtype=tf.float32)
    return v, w


def initialize(sess, variables=None):
    if variables is None:
        sess.run(tf.compat.v1.global_variables_initializer())
    else:
        sess.run([v.initializer for v in variables])


def two_variables_named_y():
    y1 = tf.compat.v1.Variable(1.0, name="y")
    y2 = tf.compat.v1.Variable(2.0, name="y")
    return y1, y2


def shared_variable(scope, reuse=None):
    with tf.compat.v1.variable_scope(scope, reuse=reuse):
        return tf.compat.v1.get_variable("w", shape=[2], initializer=tf.compat.v1.zeros_initializer())


def scope_names(kind):
    if kind == "name_scope":
        ctx = tf.name_scope("my_scope")
    elif kind == "variable_scope":
        ctx = tf.compat.v1.variable_scope("my_scope")
    else:
        raise ValueError(f"kind must be 'name_scope' or 'variable_scope', not {kind!r}")
    with ctx:
        v1 = tf.compat.v1.get_variable("var1", shape=[1])
        v2 = tf.compat.v1.Variable(1.0, name="var2")
        a = tf.add(v1, v2)
    return v1, v2, a


def mlp(x, layer_sizes):
    h = x
    n = len(layer_sizes)
    for i, size in enumerate(layer_sizes, start=1):
        with tf.compat.v1.variable_scope(f"layer{i}"):
            in_dim = h.shape[-1]
            W = tf.compat.v1.get_variable("W", [in_dim, size])
            b = tf.compat.v1.get_variable("b", [size], initializer=tf.compat.v1.zeros_initializer())
            h = tf.matmul(h, W) + b
            if i < n:
                h = tf.nn.relu(h)
    return h


def increment(var, amount):
    return tf.compat.v1.assign(var, var + amount)
