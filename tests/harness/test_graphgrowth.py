"""tfkata.graphgrowth: a TF 1 kata function that builds ops inside its Session.run loop fails, naming it."""
import pytest

from tfkata import graphgrowth
from tfkata.tfsetup import import_tensorflow

tf = import_tensorflow()


def _loop(build_in_loop: bool, steps: int = 6):
    with tf.Graph().as_default():
        x = tf.compat.v1.Variable(1.0)
        double = x.assign(x * 2.0)
        init = tf.compat.v1.global_variables_initializer()
        with tf.compat.v1.Session() as sess:
            sess.run(init)
            for _ in range(steps):
                sess.run(tf.compat.v1.global_variables_initializer() if build_in_loop else double)
            return sess.run(x)


def test_a_loop_that_builds_an_op_at_every_step_fails_naming_the_function():
    with pytest.raises(graphgrowth.GraphGrew) as info:
        with graphgrowth.watching("train"):
            _loop(build_in_loop=True)
    line = str(info.value)
    assert line.startswith("train: built new ops between its Session.run calls, before 6 of its 8 runs"), line
    assert "before the loop" in line


def test_a_graph_built_first_and_ops_built_between_phases_pass():
    with graphgrowth.watching("train"):
        assert _loop(build_in_loop=False) == 64.0
    # two phases: a few ops between them is not a loop that builds
    assert graphgrowth.growth_problem("train", [5, 9, 9, 9, 9, 9, 12, 12, 12]) is None
    assert graphgrowth.growth_problem("train", [5, 6, 7]) is None
    assert graphgrowth.growth_problem("train", [5, 6, 7, 8]) is not None


def test_the_functions_own_error_comes_through():
    with pytest.raises(ZeroDivisionError):
        with graphgrowth.watching("train"):
            _loop(build_in_loop=True)
            1 / 0
