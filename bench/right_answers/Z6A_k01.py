"""k01 · Graphs and sessions."""
import numpy as np
import tensorflow as tf


def define_add():
    a = tf.constant(3.0)
    b = tf.constant(2.0)
    c = a + b
    return a, b, c


def evaluate(fetches):
    with tf.compat.v1.Session() as sess:
        return sess.run(fetches)


def name_constants():
    c1 = tf.constant(1.0)
    c2 = tf.constant(2.0, name="variable_b")
    c3 = tf.constant(3.0)
    return c1, c2, c3


def multi_output(x, k):
    values, indices = tf.nn.top_k(x, k, name="my_name")
    return values, indices


def int_constant(values):
    return tf.constant(values, dtype=np.int32)


def build_in_new_graph():
    graph = tf.Graph()
    with graph.as_default():
        t = tf.constant(42.0)
    return graph, t


def open_interactive():
    return tf.compat.v1.InteractiveSession()


def thread_limited_config(num_threads):
    return tf.compat.v1.ConfigProto(intra_op_parallelism_threads=num_threads,
                                    inter_op_parallelism_threads=num_threads)
