"""k03 · Placeholders, feeding and training (基础知识：placeholder、feed_dict 与训练).

A placeholder is a graph input whose value comes with each ``Session.run`` through ``feed_dict``;
in fact any tensor can be fed. An optimizer's ``minimize`` adds the ops that compute gradients and
update variables; running that op once is one training step. The kata ends with the tutorial's
linear regression (src/linear_regression.py): learn k and b of y = 3x - 1 from noisy samples.
"""
import numpy as np
import tensorflow as tf


def sum_placeholder():
    """A float32 placeholder ``x`` of shape ``[None]`` named ``"x"``, and the sum of its entries.

    Returns ``(x, total)`` where ``total`` is a scalar tensor. Running ``total`` without feeding
    ``x`` fails: a placeholder has no value of its own.
    """
    x = tf.compat.v1.placeholder(tf.float32, shape=[None], name="x")
    return x, tf.reduce_sum(x)


def sum_of_constants():
    """Constants ``a = 2.0`` (named "a") and ``b = 3.0`` (named "b"), and ``c = a + b``.

    Returns ``(a, b, c)``. Feeding ``{a: 1.0}`` makes that one run compute c = 4.0; ``a`` itself is
    still 2.0 afterwards (feeding overrides a tensor for one run, it assigns nothing).
    """
    a = tf.constant(2.0, name="a")
    b = tf.constant(3.0, name="b")
    return a, b, a + b


def batch_placeholder(dim):
    """A float32 placeholder ``x`` of shape ``[None, dim]`` named ``"x"`` (any batch size), and the
    sum of each row.

    Returns ``(x, row_sums)`` with ``row_sums`` of shape ``[None]``.
    """
    x = tf.compat.v1.placeholder(tf.float32, shape=[None, dim], name="x")
    return x, tf.reduce_sum(x, axis=1)


def sgd_minimize(loss, learning_rate, var_list=None):
    """One plain gradient-descent training op for ``loss``.

    Use ``tf.compat.v1.train.GradientDescentOptimizer``. ``var_list=None`` trains every trainable
    variable; a list trains only those variables. Returns the op; each run is one step
    ``v <- v - learning_rate * dloss/dv``.
    """
    optimizer = tf.compat.v1.train.GradientDescentOptimizer(learning_rate)
    return optimizer.minimize(loss, var_list=var_list)


def linear_regression_model():
    """The tutorial's model ``y ≈ k * x + b`` for ONE sample at a time.

    ``x`` and ``y``: float32 placeholders of shape ``[]`` named "x" and "y". ``k`` and ``b``:
    ``get_variable`` scalars (shape ``[]``, default initializer) named "k" and "b". ``loss``: the
    squared error ``(k x + b - y)^2`` named ``"square_error"``.
    Returns ``(x, y, k, b, loss)``.
    """
    x = tf.compat.v1.placeholder(tf.float32, [], name="x")
    y = tf.compat.v1.placeholder(tf.float32, [], name="y")
    k = tf.compat.v1.get_variable("k", shape=[])
    b = tf.compat.v1.get_variable("b", shape=[])
    loss = tf.square(k * x + b - y, name="square_error")
    return x, y, k, b, loss


def train_linear_regression(steps=100, learning_rate=0.5, seed=0):
    """Fit y = 3x - 1 with the tutorial's loop, in the default graph.

    Build the model and an SGD op (``learning_rate``), open a session (closed at the end, as k01's
    ``evaluate``: ``with tf.compat.v1.Session() as sess:``), initialise, then for each of
    ``steps`` steps draw ONE sample from ``rng = np.random.RandomState(seed)``:
    ``x = rng.random_sample()`` and ``y = 3x - 1 + 0.0001 * rng.standard_normal()`` (in that order),
    and run k, b, loss and the train op with that feed (one ``sess.run``).
    Returns ``(k_value, b_value, losses)``: k and b as Python floats from the last step, and the list
    of the ``steps`` losses as Python floats (each computed before its update). In one run TF 1 does not order the
    reads of k and b against the update, so each may be the value before or after it: both are
    accepted, as are k and b read after the loop.
    """
    x, y, k, b, loss = linear_regression_model()
    train_op = sgd_minimize(loss, learning_rate)
    rng = np.random.RandomState(seed)
    losses = []
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        for _ in range(steps):
            data_x = rng.random_sample()
            data_y = 3.0 * data_x - 1.0 + 0.0001 * rng.standard_normal()
            k_val, b_val, loss_val, _ = sess.run([k, b, loss, train_op], feed_dict={x: data_x, y: data_y})
            losses.append(float(loss_val))
    return float(k_val), float(b_val), losses
