# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run n10        (or: pytest tests/test_n10_tf2_pitfalls.py)
# Generated from solutions/n10_tf2_pitfalls.py by `python -m tfkata.stubs n10`; `kata reset n10` restores it.
"""n10 · TF 1 habits that break in TF 2 (extends the now track; no port of one kNN).

Then → now, one trap at a time. TensorFlow's migration guide ("Migrate to TF2", "Better performance
with tf.function", "Eager execution") lists the habits of TF 1 code that still import and run in TF 2
and then do the wrong thing, often silently. Each function below is one of them: you write the TF 2
form, and its test feeds it the situation in which the TF 1 habit goes wrong.

No twin: n10 ports no single kNN, so it names none in the registry (there is no k10) and has no
equivalence test. It revisits habits taught across k01 (graphs, sessions, what runs when you fetch),
k02 (variables) and k03 (placeholders, collections, optimizers, ``tf.gradients``), in the TF 2 forms of
n01–n03 and n09: take it after them.

You write: ``make_logged_square`` (tf.print, not print); ``make_counter_step`` (a variable created
once, outside the tf.function); ``train_steps`` (one tf.function step, traced once);
``make_maybe_update`` (nothing is pruned: every assign you write runs); ``regularization_loss``
(``model.losses``, not collections); ``unique_tensors`` and ``static_dims`` (tensors are unhashable,
dimensions are ints); ``gradient_of`` (GradientTape, not ``tf.gradients``); ``port_adam`` (the
defaults of ``tf.compat.v1.train.AdamOptimizer`` in a Keras Adam); ``make_reader`` (one iterator that
outlives the function reading it). Keras 2 (TF 2.12–2.15) and Keras 3 (2.16+) both work here
(``import keras``).
"""
import keras
import tensorflow as tf


def make_logged_square(log_path):
    """A ``tf.function`` ``square(x)`` returning ``x * x`` (any float dtype and shape) that writes one
    log line ``square <x>`` to the text file ``log_path`` on EVERY call.

    Return the tf.function. Log with ``tf.print(..., output_stream="file://" + log_path)``: tf.print is
    an op of the graph, so it runs each time the graph runs (it appends to the file). Python's
    ``print`` (TF 1's habit of printing a tensor to see it) runs only while the function is traced:
    three calls with float32 scalars would log once, and log a symbolic tensor, not a value.
    """
    @tf.function
    def square(x):
        tf.print("square", x, output_stream="file://" + log_path)
        return x * x
    return square


def make_counter_step():
    """A counter and the ``tf.function`` that increments it: returns ``(counter, step)``.

    ``counter`` is a ``tf.Variable`` holding int64 0; ``step()`` (no arguments) adds 1 to it and returns
    the new value (an int64 scalar tensor): three calls return 1, 2, 3 and leave ``counter`` at 3.
    TF 1 habit: making the variable inside the function body. A tf.function may create variables only
    on its first trace, and a ``tf.Variable(...)`` in the body would be a new variable on every call,
    so TensorFlow refuses it (ValueError). Create the variable once, outside; the tf.function closes
    over it.
    """
    counter = tf.Variable(0, dtype=tf.int64)

    @tf.function
    def step():
        return counter.assign_add(1)
    return counter, step


def train_steps(model, loss_fn, optimizer, batches):
    """Train ``model`` with gradient descent on ``batches`` (a list of ``(x, y)``: float32 ``[B, D]`` and
    ``[B, 1]``, the same shapes every time) and return the losses, a list of Python floats, one a batch.

    One step: ``loss = loss_fn(y, model(x))`` (a float32 scalar) under a ``tf.GradientTape``, then
    ``optimizer.apply_gradients`` on ``model.trainable_variables``. Make the step a ``tf.function``
    ONCE, before the loop, and call it for each batch: it traces once and runs its graph afterwards.
    TF 1 habit: building the step inside the loop, as one built ``minimize`` ops per step. In TF 2 a
    new tf.function traces anew each time it is made: every step pays a trace (and warns of retracing).
    """
    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    return [float(step(x, y)) for x, y in batches]


def make_maybe_update(v):
    """A ``tf.function`` ``maybe_update(delta, apply)`` that adds ``delta`` to the float32 variable ``v``
    only when the bool scalar tensor ``apply`` is True, and returns ``v``'s value after (float32,
    ``v``'s shape).

    Return the tf.function. TF 1 habit: build the update op, then choose whether to "fetch" it
    (``tf.cond(apply, lambda: update, lambda: v)`` with the assign made outside the branches), because
    a Session ran only what a fetch needed. A tf.function prunes nothing: every stateful op in its body
    runs, in the order written. So the assign must be *inside* the branch that applies it (a Python
    ``if apply:`` on the tensor, which AutoGraph makes a ``tf.cond``).
    """
    @tf.function
    def maybe_update(delta, apply):
        if apply:
            v.assign_add(delta)
        return v.read_value()
    return maybe_update


def regularization_loss(model):
    """The total regularization loss of a built Keras ``model``: a float32 scalar tensor, the sum of the
    penalties its layers' regularizers add (every layer, nested ones included); 0.0 when it has none.

    Keras keeps them on the model: ``model.losses`` is a list of scalar tensors. TF 1 habit:
    ``tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES)``. TF 2 keeps no
    collections: eagerly that list is empty, and the sum silently becomes 0.
    """
    if not model.losses:
        return tf.constant(0.0, tf.float32)
    return tf.add_n(model.losses)


def unique_tensors(tensors):
    """The distinct tensors (or variables) of the list ``tensors``, each once, in the order first seen.

    Distinct means: not the same object. Two tensors holding equal values are two tensors. TF 2
    tensors are unhashable (``set(tensors)`` and dict keys raise TypeError) and ``==`` compares them
    element by element, so neither a set nor ``t in list`` works. Key by ``t.ref()``, a hashable
    reference to the object itself (``ref.deref()`` gives the tensor back).
    """
    seen = set()
    out = []
    for t in tensors:
        r = t.ref()
        if r not in seen:
            seen.add(r)
            out.append(t)
    return out


def static_dims(shape):
    """The static dimensions of a ``tf.TensorShape`` as a list of Python ints, ``None`` for an unknown
    dimension (``TensorShape([2, None, 3])`` -> ``[2, None, 3]``); ``None`` for an unknown rank.

    TF 1 habit: ``shape[i].value`` (a ``Dimension``). In TF 2 a dimension is already an ``int`` (or
    None), which has no ``.value``.
    """
    if shape.rank is None:
        return None
    return shape.as_list()


def gradient_of(f, x):
    """The gradient of the scalar ``f(x)`` with respect to the float32 tensor ``x`` (a constant, not a
    variable), evaluated at ``x``: a tensor of ``x``'s shape and dtype.

    TF 1 habit: ``tf.gradients(f(x), x)``, which only works while building a graph: eagerly it raises
    RuntimeError. Record ``f(x)`` on a ``tf.GradientTape`` and ask the tape. A tape follows variables on
    its own but not constants: watch ``x``, or the gradient is None.
    """
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    return tape.gradient(y, x)


def port_adam():
    """A Keras Adam optimizer that takes the same steps as ``tf.compat.v1.train.AdamOptimizer()`` with
    its defaults: learning rate 0.001, beta1 0.9, beta2 0.999, epsilon 1e-8.

    Keras' Adam has the same update rule and the same betas, but its epsilon defaults to 1e-7: for a
    gradient of about 1e-6 the first step is then about 3 times shorter. Return the optimizer.
    """
    return keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8)


def make_reader(dataset):
    """A ``tf.function`` ``read()`` (no arguments) that returns the next element of ``dataset`` on each
    call: the first call its first element, the second its second, and so on.

    Return the tf.function. Make ONE iterator, ``iter(dataset)``, outside the function, and call
    ``next`` on it inside: the iterator keeps its position between calls. TF 1 habit: the
    ``make_one_shot_iterator().get_next()`` tensor was made once in the graph; ``iter(dataset)`` written
    inside the function makes a new iterator on every call, which starts again at the first element.
    """
    it = iter(dataset)

    @tf.function
    def read():
        return next(it)
    return read
