# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run k03        (or: pytest tests/test_k03_placeholders_training.py)
# Generated from solutions/k03_placeholders_training.py by `python -m tfkata.stubs k03`; `kata reset k03` restores it.
"""k03 · Placeholders, feeding and training (基础知识：placeholder、feed_dict 与训练).

A placeholder is a graph input whose value comes with each ``Session.run`` through ``feed_dict``;
in fact any tensor can be fed. An optimizer's ``minimize`` adds the ops that compute gradients and
update variables; running that op once is one training step. The kata ends with the tutorial's
linear regression (src/linear_regression.py): learn k and b of y = 3x - 1 from noisy samples.
"""
import numpy as np
import tensorflow as tf


def sum_placeholder():
    x = tf.compat.v1.placeholder(tf.float32, shape=[None], name="x")
    return x, tf.reduce_sum(x)


def sum_of_constants():
    a = tf.constant(2.0, name="a")
    b = tf.constant(3.0, name="b")
    return a, b, a + b


def batch_placeholder(dim):
    x = tf.compat.v1.placeholder(tf.float32, shape=[None, dim], name="x")
    return x, tf.reduce_sum(x, axis=1)


def sgd_minimize(loss, learning_rate, var_list=None):
    return tf.compat.v1.train.GradientDescentOptimizer(learning_rate).minimize(loss, var_list=var_list)


def linear_regression_model():
    x = tf.compat.v1.placeholder(tf.float32, shape=[], name="x")
    y = tf.compat.v1.placeholder(tf.float32, shape=[], name="y")
    k = tf.compat.v1.get_variable("k", shape=[], dtype=tf.float32)
    b = tf.compat.v1.get_variable("b", shape=[], dtype=tf.float32)
    loss = tf.square(k * x + b - y, name="square_error")
    return x, y, k, b, loss


def train_linear_regression(steps=100, learning_rate=0.5, seed=0):
    x, y, k, b, loss = linear_regression_model()
    train_op = sgd_minimize(loss, learning_rate)
    rng = np.random.RandomState(seed)
    losses = []
    k_val = b_val = None
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        for _ in range(steps):
            xv = rng.random_sample()
            yv = 3 * xv - 1 + 0.0001 * rng.standard_normal()
            k_val, b_val, l, _ = sess.run([k, b, loss, train_op], feed_dict={x: xv, y: yv})
            losses.append(float(l))
    return float(k_val), float(b_val), losses
