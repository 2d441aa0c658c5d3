"""Graded tests for k01 · Graphs and sessions.

Each test runs in a fresh default tf.Graph (the harness's autouse fixture), so the op names are the
ones the 2018 slides print. Where TensorFlow 2 differs from the slides, a comment says so.
"""
import numpy as np
import pytest
import tensorflow as tf

from tfkata import load_kata

k01 = load_kata("k01_graph_session")


def test_define_add_builds_symbolic_tensors():
    a, b, c = k01.define_add()
    for t, name in ((a, "a"), (b, "b"), (c, "c")):
        assert isinstance(t, tf.Tensor), f"{name} should be a symbolic tf.Tensor, got {type(t).__name__}"
    assert c.graph is tf.compat.v1.get_default_graph(), "c must be built in the default graph"
    # Nothing has been computed: c is a node whose inputs are a and b.
    assert [i.name for i in c.op.inputs] == [a.name, b.name], (
        f"c should be the sum of a and b, its inputs are {[i.name for i in c.op.inputs]}"
    )


def test_define_add_runs_to_five(sess):
    a, b, c = k01.define_add()
    got = sess.run([a, b, c])
    assert got == [3.0, 2.0, 5.0], f"expected a, b, c = 3.0, 2.0, 5.0 after Session.run, got {got}"


def test_evaluate_runs_and_keeps_structure():
    x = tf.constant(4.0)
    y = x * 2.5
    assert k01.evaluate(y) == 10.0
    got = k01.evaluate([x, [y, x + 1.0]])
    assert got[0] == 4.0 and got[1][0] == 10.0 and got[1][1] == 5.0, (
        f"evaluate([x, [y, x+1]]) should keep the nesting and give [4.0, [10.0, 5.0]], got {got}"
    )


def test_evaluate_closes_its_session():
    x = tf.constant(1.0)
    k01.evaluate(x)
    assert tf.compat.v1.get_default_session() is None, (
        "evaluate left a default session open: open it with `with tf.compat.v1.Session() as sess:`"
    )


def test_constant_names():
    tensors = k01.name_constants()
    assert len(tensors) == 3, f"expected 3 constants, got {len(tensors)}"
    names = [t.name for t in tensors]
    assert names == ["Const:0", "variable_b:0", "Const_1:0"], (
        f"expected names ['Const:0', 'variable_b:0', 'Const_1:0'], got {names}: only the second "
        "constant gets name='variable_b'"
    )


def test_constant_values(sess):
    assert sess.run(list(k01.name_constants())) == [1.0, 2.0, 3.0]


def test_multi_output_names(sess):
    x = tf.constant([1.0, 5.0, 3.0, 4.0])
    values, indices = k01.multi_output(x, 2)
    assert (values.name, indices.name) == ("my_name:0", "my_name:1"), (
        f"expected the two outputs of one op named my_name ('my_name:0', 'my_name:1'), "
        f"got {values.name!r}, {indices.name!r}"
    )
    assert values.op is indices.op, "values and indices must be two outputs of the same op"
    v, i = sess.run([values, indices])
    np.testing.assert_array_equal(v, [5.0, 4.0])
    np.testing.assert_array_equal(i, [1, 3])


def test_int_constant_dtype(sess):
    t = k01.int_constant([1, 2, 3])
    assert t.dtype == tf.int32, f"expected dtype tf.int32, got {t.dtype}"
    assert t.dtype == np.int32, "a tf.DType compares equal to its numpy type"
    np.testing.assert_array_equal(sess.run(t), [1, 2, 3])


def test_new_graph_is_separate():
    default = tf.compat.v1.get_default_graph()
    graph, tensor = k01.build_in_new_graph()
    assert isinstance(graph, tf.Graph) and graph is not default, "build_in_new_graph must make a new tf.Graph"
    assert tensor.graph is graph, "the constant must be built inside `with graph.as_default():`"
    assert not default.get_operations(), (
        f"the default graph should stay empty, it has {[op.name for op in default.get_operations()]}"
    )
    with tf.compat.v1.Session(graph=graph) as s:
        assert s.run(tensor) == 42.0
    tf.constant(0.0)  # give the default graph an op, so a session on it can start
    with tf.compat.v1.Session() as s, pytest.raises(ValueError, match="not an element of this graph"):
        s.run(tensor)  # a session on the default graph cannot run another graph's tensor


def test_interactive_session_adds_nodes_after_opening():
    a = tf.constant(1.0)
    session = k01.open_interactive()
    try:
        assert isinstance(session, tf.compat.v1.InteractiveSession), (
            f"expected a tf.compat.v1.InteractiveSession, got {type(session).__name__}"
        )
        assert a.eval() == 1.0
        b = a + 1.0  # a node added after the session was opened
        assert b.eval() == 2.0, "an InteractiveSession runs nodes added after it was opened"
    finally:
        session.close()


@pytest.mark.parametrize("n", [1, 2])
def test_thread_limited_config(n):
    config = k01.thread_limited_config(n)
    assert isinstance(config, tf.compat.v1.ConfigProto), f"expected a ConfigProto, got {type(config).__name__}"
    got = (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads)
    assert got == (n, n), f"expected intra- and inter-op threads = {n}, got {got}"
    with tf.compat.v1.Session(config=config) as s:
        assert s.run(tf.constant(2.0) * 3.0) == 6.0
