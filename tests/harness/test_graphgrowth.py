"""tfkata.graphgrowth: a TF 1 kata function that builds ops inside its Session.run loop fails, naming it."""
import pytest

from tfkata import graphgrowth, registry
from tfkata.tfsetup import import_tensorflow

tf = import_tensorflow()


def _loop(build_in_loop: bool, steps: int = 6):
    """Build in the default graph (a test sets a new one around the watched call), then loop."""
    x = tf.compat.v1.Variable(1.0)
    double = x.assign(x * 2.0)
    init = tf.compat.v1.global_variables_initializer()
    with tf.compat.v1.Session() as sess:
        sess.run(init)
        for _ in range(steps):
            sess.run(tf.compat.v1.global_variables_initializer() if build_in_loop else double)
        return sess.run(x)


def _evaluate_building_an_op_per_batch(batches: int = 3):
    n = tf.compat.v1.placeholder(tf.float32, [])
    with tf.compat.v1.Session() as sess:
        return sum(sess.run(tf.identity(n), {n: float(i)}) for i in range(batches))


def test_a_loop_that_builds_an_op_at_every_step_is_named_after_the_call():
    graphgrowth.forget()
    with tf.Graph().as_default(), graphgrowth.watching("train"):
        _loop(build_in_loop=True)
    line = graphgrowth.take()
    assert line and line.startswith("train: built new ops between its Session.run calls, before 7 of its 8 runs"), line
    assert "an initializer was built in the loop" in line, line  # what was built, in words
    assert "before the loop" in line and graphgrowth.take() is None  # taken once
    with tf.Graph().as_default():  # three batches, an op built before each: the one before the first counts too
        with graphgrowth.watching("evaluate"):
            _evaluate_building_an_op_per_batch(3)
    line = graphgrowth.take()
    assert line.startswith("evaluate: built new ops") and "new ops Identity x3" in line, line


def test_the_plugin_fails_a_test_that_passed_its_own_checks_and_leaves_a_failing_tests_own_message(monkeypatch):
    from tfkata import plugin

    class Outcome:  # what pluggy's hookwrapper is sent: the call's exception info, if any
        def __init__(self, excinfo):
            self.excinfo, self.forced = excinfo, None

        def force_exception(self, exc):
            self.forced = exc

    real = plugin.kata_of  # this test's own item stays what it is (a harness test, not a graded one)
    monkeypatch.setattr(plugin, "kata_of", lambda item: registry.get("k04") if item is None else real(item))
    for excinfo, failed_by_growth in ((None, True), ("its own failure", False)):
        graphgrowth._pending[:] = ["train: built new ops between its Session.run calls"]
        hook = plugin.pytest_runtest_call_graph_growth(None)
        next(hook)
        outcome = Outcome(excinfo)
        with pytest.raises(StopIteration):
            hook.send(outcome)
        assert (outcome.forced is not None) is failed_by_growth
        assert not failed_by_growth or str(outcome.forced).startswith("train: built new ops")
        assert graphgrowth.take() is None  # taken either way: nothing left for the next test


def test_a_graph_built_first_and_ops_built_between_phases_pass():
    graphgrowth.forget()
    with tf.Graph().as_default(), graphgrowth.watching("train"):
        assert _loop(build_in_loop=False) == 64.0
    assert graphgrowth.take() is None
    # two phases: a few ops between them is not a loop that builds
    g, h = 1, 2
    assert graphgrowth.growth_problem("train", [(g, 5), (g, 9), (g, 9), (g, 9), (g, 12), (g, 12), (g, 12)]) is None
    assert graphgrowth.growth_problem("train", [(g, 5), (g, 6), (g, 7)]) is None
    assert graphgrowth.growth_problem("train", [(g, 5), (g, 6), (g, 7), (g, 8)]) is not None
    # runs on two graphs, one after the other, are not compared with each other
    assert graphgrowth.growth_problem("train", [(g, 5), (h, 90), (g, 5), (h, 90), (g, 5), (h, 90)]) is None


def test_a_long_loop_that_builds_is_stopped_inside_the_loop():
    with pytest.raises(graphgrowth.GraphGrew) as info, tf.Graph().as_default(), graphgrowth.watching("train"):
        _loop(build_in_loop=True, steps=10_000)
    assert "before 200 of its 200 runs" in str(info.value) and "before it was stopped" in str(info.value), str(info.value)


def test_the_functions_own_error_comes_through():
    with pytest.raises(ZeroDivisionError), tf.Graph().as_default(), graphgrowth.watching("train"):
        _loop(build_in_loop=True)
        1 / 0
