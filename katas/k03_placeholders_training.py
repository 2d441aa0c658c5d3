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
    """A float32 placeholder ``x`` of shape ``[None]`` named ``"x"``, and the sum of its entries.

    Returns ``(x, total)`` where ``total`` is a scalar tensor. Running ``total`` without feeding
    ``x`` fails: a placeholder has no value of its own.
    """
    raise NotImplementedError("k03: sum_placeholder")


def sum_of_constants():
    """Constants ``a = 2.0`` (named "a") and ``b = 3.0`` (named "b"), and ``c = a + b``.

    Returns ``(a, b, c)``. Feeding ``{a: 1.0}`` makes that one run compute c = 4.0; ``a`` itself is
    still 2.0 afterwards (feeding overrides a tensor for one run, it assigns nothing).
    """
    raise NotImplementedError("k03: sum_of_constants")


def batch_placeholder(dim):
    """A float32 placeholder ``x`` of shape ``[None, dim]`` named ``"x"`` (any batch size), and the
    sum of each row.

    Returns ``(x, row_sums)`` with ``row_sums`` of shape ``[None]``.
    """
    raise NotImplementedError("k03: batch_placeholder")


def sgd_minimize(loss, learning_rate, var_list=None):
    """One plain gradient-descent training op for ``loss``.

    Use ``tf.compat.v1.train.GradientDescentOptimizer``. ``var_list=None`` trains every trainable
    variable; a list trains only those variables. Returns the op; each run is one step
    ``v <- v - learning_rate * dloss/dv``.
    """
    raise NotImplementedError("k03: sgd_minimize")


def linear_regression_model():
    """The tutorial's model ``y ≈ k * x + b`` for ONE sample at a time.

    ``x`` and ``y``: float32 placeholders of shape ``[]`` named "x" and "y". ``k`` and ``b``:
    ``get_variable`` scalars (shape ``[]``, default initializer) named "k" and "b". ``loss``: the
    squared error ``(k x + b - y)^2`` named ``"square_error"``.
    Returns ``(x, y, k, b, loss)``.
    """
    raise NotImplementedError("k03: linear_regression_model")


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
    raise NotImplementedError("k03: train_linear_regression")
