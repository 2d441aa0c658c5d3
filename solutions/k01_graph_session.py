"""k01 · Graphs and sessions (基础知识：计算图与会话).

TensorFlow 1.x separates *defining* a computation from *running* it: building ops only adds nodes to
a graph, and a Session executes them. TensorFlow 2 runs eagerly by default, but the whole graph API
lives on in ``tf.compat.v1``; every test here builds inside a fresh ``tf.Graph`` (the harness makes
it the default graph), so the names and values below are the ones the 2018 slides show.
"""
import numpy as np
import tensorflow as tf


def define_add():
    """Define ``c = a + b`` with the constants a = 3.0 and b = 2.0, without computing it.

    Returns ``(a, b, c)``: three symbolic float32 ``tf.Tensor`` objects of shape ``[]`` in the default
    graph. ``c`` is not 5.0 yet: it only becomes 5.0 when a session runs it (slide: 先定义后运行).
    """
    a = tf.constant(3.0)
    b = tf.constant(2.0)
    c = a + b
    return a, b, c


def evaluate(fetches):
    """Run ``fetches`` (a tensor, or a list of tensors, lists may nest) in a new session on the default graph.

    Open a ``tf.compat.v1.Session``, run all of ``fetches`` in ONE ``sess.run(fetches)``, close the
    session, and return what ``Session.run`` gave: numpy values in the same structure as ``fetches``.
    """
    with tf.compat.v1.Session() as sess:
        return sess.run(fetches)


def name_constants():
    """Create three float32 constants, 1.0, 2.0 and 3.0, in the default graph, in that order.

    Only the second one gets an explicit name, ``"variable_b"``. Returns the three tensors. In a
    fresh graph their names are then ``Const:0``, ``variable_b:0`` and ``Const_1:0``: an op's name,
    then ``:`` and the index of the output.
    """
    first = tf.constant(1.0)
    second = tf.constant(2.0, name="variable_b")
    third = tf.constant(3.0)
    return first, second, third


def multi_output(x, k):
    """The k largest entries of the 1-D tensor ``x`` (largest first) and their indices, from ONE op named "my_name".

    Use ``tf.nn.top_k``. Returns ``(values, indices)``: its two outputs, the tensors ``my_name:0``
    (values, same dtype as x, shape [k]) and ``my_name:1`` (int32 indices, shape [k]).
    """
    values, indices = tf.nn.top_k(x, k=k, name="my_name")
    return values, indices


def int_constant(values):
    """A constant holding ``values`` whose dtype is given as the *numpy* type ``np.int32``.

    Returns the tensor; its dtype is ``tf.int32`` (and ``tf.int32 == np.int32`` holds).
    """
    return tf.constant(values, dtype=np.int32)


def build_in_new_graph():
    """Make a new ``tf.Graph`` and build the float32 constant 42.0 in it (not in the default graph).

    Returns ``(graph, tensor)``. The tensor belongs to ``graph``; running it needs a session opened on
    that graph (``tf.compat.v1.Session(graph=graph)``).
    """
    graph = tf.Graph()
    with graph.as_default():
        tensor = tf.constant(42.0)
    return graph, tensor


def open_interactive():
    """Open and return a ``tf.compat.v1.InteractiveSession`` on the default graph.

    An InteractiveSession installs itself as the default session, so after this ``tensor.eval()``
    works without a session argument, also for nodes added after the session was opened. The
    caller closes it.
    """
    return tf.compat.v1.InteractiveSession()


def thread_limited_config(num_threads):
    """A ``tf.compat.v1.ConfigProto`` that limits a session to ``num_threads`` threads.

    Set both thread pools: the one inside an op (intra-op) and the one running independent ops in
    parallel (inter-op). Returns the ConfigProto (pass it as ``Session(config=...)``).
    """
    return tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=num_threads,
        inter_op_parallelism_threads=num_threads,
    )
