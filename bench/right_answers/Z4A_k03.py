"""k03 · Placeholders, feeding and training."""
import numpy as np
import tensorflow as tf


def sum_placeholder():
    x = tf.compat.v1.placeholder(tf.float32, shape=[None], name="x")
    total = tf.reduce_sum(x)
    return x, total


def sum_of_constants():
    a = tf.constant(2.0, name="a")
    b = tf.constant(3.0, name="b")
    c = a + b
    return a, b, c


def batch_placeholder(dim):
    x = tf.compat.v1.placeholder(tf.float32, shape=[None, dim], name="x")
    row_sums = tf.reduce_sum(x, axis=1)
    return x, row_sums


def sgd_minimize(loss, learning_rate, var_list=None):
    opt = tf.compat.v1.train.GradientDescentOptimizer(learning_rate)
    return opt.minimize(loss, var_list=var_list)


def linear_regression_model():
    x = tf.compat.v1.placeholder(tf.float32, shape=[], name="x")
    y = tf.compat.v1.placeholder(tf.float32, shape=[], name="y")
    k = tf.compat.v1.get_variable("k", shape=[])
    b = tf.compat.v1.get_variable("b", shape=[])
    loss = tf.square(k * x + b - y, name="square_error")
    return x, y, k, b, loss


def train_linear_regression(steps=100, learning_rate=0.5, seed=0):
    x, y, k, b, loss = linear_regression_model()
    train_op = sgd_minimize(loss, learning_rate)
    rng = np.random.RandomState(seed)
    losses = []
    k_value = b_value = None
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        for _ in range(steps):
            xv = rng.random_sample()
            yv = 3 * xv - 1 + 0.0001 * rng.standard_normal()
            k_value, b_value, loss_value, _ = sess.run([k, b, loss, train_op], feed_dict={x: xv, y: yv})
            losses.append(float(loss_value))
    return float(k_value), float(b_value), losses
