"""Graded tests for k02 · Variables and scopes.

TF 2 vs the 2018 slides: variables are now resource variables, so reading an uninitialised one
raises FailedPreconditionError saying "uninitialized" in different words than TF 1.x did
("Attempting to use uninitialized value"); the names and the reuse rules are unchanged.
"""
import math

import numpy as np
import pytest
import tensorflow as tf

from tfkata import load_kata

k02 = load_kata("k02_variables_scopes")


def test_variable_and_get_variable_names_and_shapes():
    v, w = k02.make_variables()
    assert (v.name, w.name) == ("v:0", "w:0"), f"expected names v:0 and w:0, got {v.name}, {w.name}"
    assert v.shape.as_list() == [2], f"v should have shape [2], got {v.shape}"
    assert w.shape.as_list() == [3, 4], f"w should have shape [3, 4], got {w.shape}"
    assert v.dtype.base_dtype == tf.float32 and w.dtype.base_dtype == tf.float32


def test_get_variable_default_initializer_is_glorot_uniform(sess):
    v, w = k02.make_variables()
    k02.initialize(sess)
    np.testing.assert_allclose(sess.run(v), [1.0, 2.0])
    values = sess.run(w)
    limit = math.sqrt(6.0 / (3 + 4))
    assert np.all(np.abs(values) <= limit), (
        f"glorot_uniform for [3, 4] stays within +-{limit:.3f}, got max |w| = {np.abs(values).max():.3f}: "
        "did you pass an initializer? The lesson is the default one."
    )
    assert np.unique(values).size == values.size, "w should be random, not constant"


def test_reading_uninitialised_variable_fails(sess):
    v, w = k02.make_variables()
    k02.initialize(sess, [v])
    np.testing.assert_allclose(sess.run(v), [1.0, 2.0])
    with pytest.raises(tf.errors.FailedPreconditionError, match="(?i)uninitiali[sz]ed"):
        sess.run(w)  # only v was initialised


def test_initialize_all(sess):
    v, w = k02.make_variables()
    k02.initialize(sess)
    assert sess.run(w).shape == (3, 4), "initialize(sess) with no list must initialise every variable"


def test_auto_renaming():
    first, second = k02.two_variables_named_y()
    assert (first.name, second.name) == ("y:0", "y_1:0"), (
        f"two variables both named 'y' become y:0 and y_1:0, got {first.name}, {second.name}"
    )


def test_get_variable_twice_without_reuse_fails():
    w = k02.shared_variable("shared")
    assert w.name == "shared/w:0", f"expected shared/w:0, got {w.name}"
    with pytest.raises(ValueError, match="already exists"):
        k02.shared_variable("shared")


def test_reuse_true_returns_the_same_variable():
    w = k02.shared_variable("shared")
    again = k02.shared_variable("shared", reuse=True)
    assert again is w, "variable_scope(reuse=True) + get_variable must return the existing variable"
    with pytest.raises(ValueError, match="does not exist"):
        k02.shared_variable("other", reuse=True)


def test_auto_reuse_creates_then_reuses():
    first = k02.shared_variable("auto", reuse=tf.compat.v1.AUTO_REUSE)
    second = k02.shared_variable("auto", reuse=tf.compat.v1.AUTO_REUSE)
    assert first is second and first.name == "auto/w:0"
    n_vars = len(tf.compat.v1.global_variables())
    assert n_vars == 1, f"AUTO_REUSE must not create a second variable, the graph has {n_vars}"


def test_name_scope_is_ignored_by_get_variable():
    v1, v2, a = k02.scope_names("name_scope")
    got = (v1.name, v2.name, a.name)
    assert got == ("var1:0", "my_scope/var2:0", "my_scope/Add:0"), (
        f"under tf.name_scope expected ('var1:0', 'my_scope/var2:0', 'my_scope/Add:0'), got {got}: "
        "get_variable ignores name_scope, tf.Variable and ops do not"
    )


def test_variable_scope_prefixes_everything():
    v1, v2, a = k02.scope_names("variable_scope")
    got = (v1.name, v2.name, a.name)
    assert got == ("my_scope/var1:0", "my_scope/var2:0", "my_scope/Add:0"), (
        f"under tf.compat.v1.variable_scope expected every name prefixed by my_scope/, got {got}"
    )


def test_scope_names_rejects_unknown_kind():
    with pytest.raises(ValueError, match="name_scope"):
        k02.scope_names("scope")


def test_mlp_variable_names_and_shapes():
    x = tf.compat.v1.placeholder(tf.float32, [None, 5])
    out = k02.mlp(x, [8, 3])
    assert out.shape.as_list() == [None, 3], f"expected output shape [None, 3], got {out.shape}"
    got = {v.name: v.shape.as_list() for v in tf.compat.v1.global_variables()}
    expected = {"layer1/W:0": [5, 8], "layer1/b:0": [8], "layer2/W:0": [8, 3], "layer2/b:0": [3]}
    assert got == expected, f"expected variables {expected}, got {got}"


def test_mlp_reuse_and_values(sess):
    x = tf.compat.v1.placeholder(tf.float32, [None, 2])
    with tf.compat.v1.variable_scope("net"):
        out = k02.mlp(x, [4, 1])
    with tf.compat.v1.variable_scope("net", reuse=True):
        out_again = k02.mlp(x, [4, 1])
    assert len(tf.compat.v1.global_variables()) == 4, "calling mlp under reuse=True must create no variables"
    sess.run(tf.compat.v1.global_variables_initializer())
    feed = np.array([[1.0, -2.0], [0.5, 0.25]], np.float32)
    w1, b1, w2, b2 = sess.run(tf.compat.v1.global_variables())
    expected = np.maximum(feed @ w1 + b1, 0.0) @ w2 + b2  # hidden layer ReLU, last layer linear
    got, got_again = sess.run([out, out_again], {x: feed})
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg="relu(x W1 + b1) W2 + b2 expected")
    np.testing.assert_allclose(got_again, got, err_msg="the reused network must give the same output")


def test_increment_assigns_when_run(sess):
    var = tf.Variable(1.0)
    op = k02.increment(var, 2.5)
    sess.run(var.initializer)
    assert sess.run(var) == 1.0, "building the increment op must not change the variable"
    sess.run(op)
    sess.run(op)
    assert sess.run(var) == 6.0, f"two runs of increment(var, 2.5) from 1.0 give 6.0, got {sess.run(var)}"
