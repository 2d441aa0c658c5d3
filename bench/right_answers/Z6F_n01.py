# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run n01        (or: pytest tests/test_n01_tf_function.py)
# Generated from solutions/n01_tf_function.py by `python -m tfkata.stubs n01`; `kata reset n01` restores it.
"""n01 · Eager code and tf.function (TF 2 twin of k01 · Graphs and sessions).

Then → now. In TF 1 you first *defined* a graph and then *ran* it in a Session (k01): nothing was
computed until ``sess.run``, which made graphs fast, portable and hard to debug. TF 2 runs eagerly:
``a + b`` is 5.0 the moment you write it, and a ``print`` shows values. The graph did not go away:
``tf.function`` *traces* a Python function once per input signature and runs the recorded graph
afterwards, so the Session became a function call and ``feed_dict`` became its arguments. What was
gained: ordinary Python control flow (AutoGraph rewrites a tensor ``if``/``while`` into ``cond``/
``while_loop``), no global graph, no initialisation step. What was lost, or rather hidden: the Python
body runs only while tracing, so side effects (a list append, ``print``) happen once per trace, not
once per call, and every new Python value or new shape as an argument makes a new trace.

You write: ``eager_add`` (k01's define_add, eagerly); ``constants_function`` (k01's name_constants
inside a tf.function) and ``graph_of`` (the graph it traced); ``make_traced_double`` (a side effect
that shows tracing); ``call_with_tensors`` (call a tf.function without retracing);
``make_vector_sum`` (an ``input_signature``); ``make_collatz_steps`` (AutoGraph).
Keras plays no part here: TF 2.12–2.21 behave the same (measured).
"""
import tensorflow as tf


def eager_add():
    """k01's ``c = a + b`` with a = 3.0 and b = 2.0, in TF 2: eagerly.

    Returns ``(a, b, c)``: three float32 eager tensors of shape ``[]``. ``c`` already holds 5.0
    (``c.numpy()``): no graph, no session. Slide: 先定义后运行 → now: run as you define.
    """
    a = tf.constant(3.0)
    b = tf.constant(2.0)
    c = a + b
    return a, b, c


def constants_function():
    """A ``tf.function`` with no arguments that builds k01's three constants and returns them.

    Its body creates float32 constants 1.0, 2.0 and 3.0 in that order, only the second named
    ``"variable_b"``, and returns the three. Return the *tf.function object* (not its result):
    calling it gives eager values 1.0, 2.0, 3.0; tracing it records a graph in which the constants
    have k01's names, ``Const``, ``variable_b`` and ``Const_1`` (see :func:`graph_of`).
    """
    @tf.function
    def consts():
        c1 = tf.constant(1.0)
        c2 = tf.constant(2.0, name="variable_b")
        c3 = tf.constant(3.0)
        return c1, c2, c3
    return consts


def graph_of(fn, *args):
    """The graph that the ``tf.function`` ``fn`` traces for the arguments ``args``.

    ``fn.get_concrete_function(*args)`` traces (or reuses a trace) without running anything;
    return its ``.graph`` (a ``FuncGraph``, a subclass of ``tf.Graph``: ``get_operations()``,
    ``get_operation_by_name(...)`` work as in k01).
    """
    return fn.get_concrete_function(*args).graph


def make_traced_double(log):
    """A ``tf.function`` ``double(x)`` that returns ``2 * x`` and appends ``x`` to the Python list
    ``log`` as a Python side effect.

    Return the tf.function. The append is ordinary Python, so it runs while the function is being
    *traced*, not each time the graph runs: three calls with float32 scalars leave ONE entry in
    ``log`` (a symbolic tensor); a call with a new shape or dtype traces again and appends again.
    """
    @tf.function
    def double(x):
        log.append(x)
        return 2 * x
    return double


def call_with_tensors(fn, values):
    """Call the tf.function ``fn`` once for each Python number in ``values``, without retracing.

    A Python number as an argument is part of the trace's signature: ``fn(1.0)``, ``fn(2.0)``,
    ``fn(3.0)`` trace three graphs. A tensor is not: pass each value as a float32 tensor and ``fn``
    traces once. Returns the list of results (what ``fn`` returned, in order).
    """
    return [fn(tf.constant(v, dtype=tf.float32)) for v in values]


def make_vector_sum():
    """A ``tf.function`` ``vector_sum(x)`` returning the float32 scalar sum of ``x``, declared with
    an ``input_signature``: one float32 vector of any length (``tf.TensorSpec([None], tf.float32)``).

    Return the tf.function. With the signature it traces exactly once for every length, and it
    refuses what does not match (a matrix, an int32 vector) instead of tracing again: the TF 2 form
    of k03's ``placeholder(tf.float32, [None])``.
    """
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def vector_sum(x):
        return tf.reduce_sum(x)
    return vector_sum


def make_collatz_steps():
    """A ``tf.function`` ``collatz_steps(n)`` for an int32 scalar tensor ``n >= 1``: how many steps
    ``n -> n / 2`` (n even) or ``n -> 3n + 1`` (n odd) take to reach 1. Returns an int32 scalar.

    Write it in plain Python: a ``while`` on the tensor condition ``n != 1`` with an ``if`` on
    ``n % 2 == 0`` inside. AutoGraph turns them into a ``while_loop`` and a ``cond``: the traced
    graph holds a (Stateless)While op whose body holds a (Stateless)If op, and one trace serves every
    ``n``. Declare ``input_signature=[tf.TensorSpec([], tf.int32)]``. collatz_steps(6) = 8,
    collatz_steps(27) = 111.
    """
    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def collatz_steps(n):
        steps = tf.constant(0, tf.int32)
        while n != 1:
            if n % 2 == 0:
                n = n // 2
            else:
                n = 3 * n + 1
            steps += 1
        return steps
    return collatz_steps
