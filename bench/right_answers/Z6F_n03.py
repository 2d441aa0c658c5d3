# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run n03        (or: pytest tests/test_n03_gradient_tape.py)
# Generated from solutions/n03_gradient_tape.py by `python -m tfkata.stubs n03`; `kata reset n03` restores it.
"""n03 · Arguments and GradientTape instead of placeholders and minimize (TF 2 twin of k03).

Then → now. In TF 1 (k03) the inputs of a graph were placeholders, their values came with every
``Session.run`` through ``feed_dict``, and ``optimizer.minimize(loss)`` added the gradient and update
ops to the graph once; running that op was one training step. In TF 2 an input is simply a function
argument, and a training step is code you can read: compute the loss under a ``tf.GradientTape``,
ask the tape for the gradients, and hand ``(gradient, variable)`` pairs to the optimizer's
``apply_gradients``. Gained: the step is plain Python you can print and step through, and nothing
must be fed or initialised. Lost: the tape records only what runs inside it and, by default, only
trainable variables (a constant must be ``watch``-ed), and it is up to you to pass the right
variables. The kata ends with the tutorial's linear regression, y = 3x − 1, which must take exactly
the steps k03 takes from the same start with the same samples.

You write: ``sum_of`` (a placeholder becomes an argument), ``derivative`` (GradientTape on a
constant), ``LinearModel`` and ``square_error`` (k03's model and loss), ``sgd_step`` (one
``apply_gradients`` step: k03's ``minimize``) and ``train_linear_regression`` (the loop).

Keras 2 vs 3 (``import keras``: Keras 2 on TF 2.12–2.15, Keras 3 from 2.16): ``keras.optimizers.SGD``
and ``apply_gradients`` take the same ``(gradient, variable)`` pairs on both and update a
``tf.Variable`` in place. Keras 3 optimizers also offer ``optimizer.apply(grads, variables)``,
which Keras 2 lacks; the kata uses ``apply_gradients``, which both have.
"""
import keras
import numpy as np
import tensorflow as tf


def sum_of(x):
    """The sum of the entries of ``x``, a float32 vector of any length (k03's placeholder, now an
    argument: a list, a numpy array or a tensor). Returns a float32 scalar tensor.
    """
    return tf.reduce_sum(tf.convert_to_tensor(x, dtype=tf.float32))


def derivative(fn, x):
    """The derivative of the scalar function ``fn`` at the point ``x`` (a Python float or a float32
    scalar), computed with ``tf.GradientTape``.

    ``x`` is a constant, not a variable: a tape only records what it watches, and it watches only
    trainable variables unless told otherwise. Convert ``x`` to a float32 tensor, watch it, compute
    ``fn(x)`` inside the tape, and return the gradient (a float32 scalar tensor).
    """
    x = tf.convert_to_tensor(x, dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return tape.gradient(y, x)


class LinearModel(tf.Module):
    """k03's model ``y ≈ k * x + b`` as an object.

    ``__init__(k_init, b_init)``: two float32 scalar ``tf.Variable``s, ``self.k`` named ``"k"`` and
    ``self.b`` named ``"b"``, starting at the given values (k03 drew them with get_variable's default
    initializer; here the start is given, so that n03 can start exactly where k03 started).
    ``__call__(x)``: ``k * x + b`` for a float32 ``x`` (scalar or any shape).
    """

    def __init__(self, k_init=0.0, b_init=0.0, name=None):
        """``self.k`` and ``self.b``: float32 scalar ``tf.Variable``s named "k" and "b" starting at
        ``k_init`` and ``b_init`` (after ``super().__init__(name=name)``)."""
        super().__init__(name=name)
        self.k = tf.Variable(k_init, dtype=tf.float32, name="k")
        self.b = tf.Variable(b_init, dtype=tf.float32, name="b")

    def __call__(self, x):
        """``k * x + b`` for a float32 ``x`` of any shape."""
        return self.k * x + self.b


def square_error(model, x, y):
    """k03's loss for one sample: ``(model(x) - y)^2``, a float32 scalar tensor (``x``, ``y``: Python
    floats or float32 scalars; no placeholders, no feed).
    """
    return tf.square(model(x) - y)


def sgd_step(loss_fn, variables, optimizer):
    """One training step: k03's ``optimizer.minimize(loss, var_list=variables)``, written out.

    ``loss_fn()`` takes no arguments and returns the scalar loss; ``variables`` is the list of
    ``tf.Variable``s to train; ``optimizer`` is a Keras optimizer (``keras.optimizers.SGD``). Compute
    the loss inside a ``tf.GradientTape``, take the gradients of the loss with respect to
    ``variables``, and apply them with ``optimizer.apply_gradients``, which takes
    ``(gradient, variable)`` pairs. Only ``variables`` change. Returns the loss computed before the
    update (a float32 scalar tensor).
    """
    with tf.GradientTape() as tape:
        loss = loss_fn()
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(grads, variables))
    return loss


def train_linear_regression(steps=100, learning_rate=0.5, seed=0, k_init=0.0, b_init=0.0):
    """Fit y = 3x - 1 with the tutorial's loop, eagerly: k03's ``train_linear_regression`` in TF 2.

    Make ``LinearModel(k_init, b_init)`` and ``keras.optimizers.SGD(learning_rate)``. Then for each of
    ``steps`` steps draw ONE sample from ``rng = np.random.RandomState(seed)`` exactly as k03 does:
    ``x = rng.random_sample()``, then ``y = 3x - 1 + 0.0001 * rng.standard_normal()``, and take one
    :func:`sgd_step` on its :func:`square_error` (the sample is an argument, not a feed).
    Returns ``(k_value, b_value, losses)``: Python floats after the last step, and the list of the
    ``steps`` losses as Python floats (each computed before its update).
    """
    model = LinearModel(k_init, b_init)
    optimizer = keras.optimizers.SGD(learning_rate)
    rng = np.random.RandomState(seed)
    losses = []
    for _ in range(steps):
        x = rng.random_sample()
        y = 3 * x - 1 + 0.0001 * rng.standard_normal()
        loss = sgd_step(lambda: square_error(model, x, y), [model.k, model.b], optimizer)
        losses.append(float(loss))
    return float(model.k.numpy()), float(model.b.numpy()), losses
