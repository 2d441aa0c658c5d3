"""tfkata/feedback/frames.py: the short report of a failure, built from real exceptions.

A made-up learner module (``katas/learner.py``) and test module (``tests/fake_test.py``) are written
to a temporary folder and imported from there, so their frames are "own" frames exactly as in a
real run; TensorFlow raises from inside its own code.
"""
import importlib.util
import textwrap

import pytest

from tfkata.tfsetup import import_tensorflow
from tfkata.feedback.facts import split_message
from tfkata.feedback.frames import learner_report

tf = import_tensorflow()

LEARNER = '''
import tensorflow as tf


def make_variables():
    return tf.compat.v1.Variable(1.0, name="w")


def read(sess, v):
    return sess.run(v * 2)


def feed_nothing(sess):
    x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
    return sess.run(x * 2)


def broken(n):
    if n == 0:
        raise ValueError("boom: something the table does not know")
    return broken(n - 1)


def returns_one():
    return 1.0
'''

TEST = '''
import tensorflow as tf


def test_read(learner):
    with tf.Graph().as_default():
        v = learner.make_variables()
        with tf.compat.v1.Session() as sess:
            return learner.read(sess, v)


def test_feed(learner):
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        return learner.feed_nothing(sess)


def test_value(learner):
    got = learner.returns_one()
    assert got == 5.0, f"expected 5.0 from returns_one, got {got}"


def test_recursion(learner):
    learner.broken(12)
'''


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "katas").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "katas" / "learner.py").write_text(textwrap.dedent(LEARNER))
    (tmp_path / "tests" / "fake_test.py").write_text(textwrap.dedent(TEST))
    learner = _load(tmp_path / "katas" / "learner.py", "tfkata_tb_learner")
    tests = _load(tmp_path / "tests" / "fake_test.py", "tfkata_tb_tests")
    return tmp_path, learner, tests


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report(root, excinfo, **kw):
    text = learner_report(excinfo, target_dir=root / "katas", tests_dir=root / "tests", **kw)
    print(text)
    lines = text.splitlines()
    assert len(lines) <= 25, f"{len(lines)} lines"
    for noise in ("site-packages", "Original stack trace", 'File "', "_pytest"):
        assert noise not in text, f"{noise!r} shown:\n{text}"
    return lines


def test_uninitialised_variable_report(repo):
    root, learner, tests = repo
    with pytest.raises(tf.errors.FailedPreconditionError) as info:
        tests.test_read(learner)
    lines = report(root, info)
    assert lines[0].startswith("variable 'w' is used before it is initialised")
    assert lines[1] == "  tests/fake_test.py:9 in test_read"
    assert lines[2] == "    return learner.read(sess, v)"
    assert lines[3] == "  katas/learner.py:10 in read"
    assert lines[4] == "    return sess.run(v * 2)"
    assert lines[5].startswith("  (") and "inside TensorFlow hidden: pytest --tb=long shows them)" in lines[5]
    assert lines[6].startswith("FailedPreconditionError: Could not find variable w.")
    assert len(lines) == 7


def test_unfed_placeholder_report_cuts_tf_dumps(repo):
    root, learner, tests = repo
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        tests.test_feed(learner)
    assert len(str(info.value).splitlines()) > 15  # what TF prints: stack copies and node dumps
    lines = report(root, info.value)  # the exception itself works as well as ExceptionInfo
    assert lines[0].startswith("placeholder 'x' (float, shape [?,3]) got no value")
    assert "  katas/learner.py:15 in feed_nothing" in lines
    assert lines[-1] == "InvalidArgumentError: You must feed a value for placeholder tensor 'x' with dtype float and shape [?,3]"


def test_assertion_message_first_without_introspection_noise(repo):
    root, learner, tests = repo
    with pytest.raises(AssertionError) as info:
        tests.test_value(learner)
    # the way pytest's assertion rewriting words it (the test module here is not rewritten)
    exc = AssertionError("expected 5.0 from returns_one, got 1.0\nassert 1.0 == 5.0")
    exc.__traceback__ = info.value.__traceback__
    lines = report(root, exc)
    assert lines[0] == "expected 5.0 from returns_one, got 1.0"
    assert lines[1] == "  tests/fake_test.py:19 in test_value"
    assert "assert 1.0 == 5.0" not in lines, "the test's sentence says it; pytest's introspection is noise"
    bare = AssertionError("assert 1.0 == 5.0")  # a bare assert has nothing else to say: keep it
    bare.__traceback__ = info.value.__traceback__
    assert "assert 1.0 == 5.0" in "\n".join(report(root, bare))
    plain = report(root, info)
    assert plain[0] == "expected 5.0 from returns_one, got 1.0" and plain[-1].startswith("    assert got == 5.0")


def test_unknown_error_shows_its_own_message_once(repo):
    root, learner, tests = repo
    with pytest.raises(ValueError) as info:
        tests.test_recursion(learner)
    lines = report(root, info)
    assert lines[0] == "ValueError: boom: something the table does not know"
    assert sum("boom" in line for line in lines) == 2  # the headline and the raise line, no repeat
    assert any("more of your frames" in line for line in lines)  # 13 frames of broken() are capped
    assert lines[-1] == '    raise ValueError("boom: something the table does not know")'


def test_message_first_wins(repo):
    root, learner, tests = repo
    with pytest.raises(tf.errors.FailedPreconditionError) as info:
        tests.test_read(learner)
    lines = report(root, info, message_first="TODO k02: initialize is not written yet (katas/k02.py:30)")
    assert lines[0] == "TODO k02: initialize is not written yet (katas/k02.py:30)"
    assert lines[-1].startswith("FailedPreconditionError: Could not find variable w.")


def test_split_message_of_a_graph_execution_error(repo):
    root, learner, tests = repo
    with pytest.raises(tf.errors.FailedPreconditionError) as info:
        tests.test_read(learner)
    head, rest = split_message(info.value)
    assert head.startswith("Could not find variable w.") and rest == []


# --------------------------------------------------------------------------- the first line's rules
@pytest.mark.parametrize("call", [
    lambda np: np.testing.assert_allclose([1.0, 2.0], [1.0, 3.0], err_msg="mlp: the last layer must be linear"),
    lambda np: np.testing.assert_array_equal([1, 2], [1, 3], err_msg="mlp: the last layer must be linear"),
    lambda np: np.testing.assert_array_almost_equal([1.0, 2.0], [1.0, 3.0], err_msg="mlp: the last layer must be linear"),
])
def test_numpy_line_never_comes_first(call):
    """np.testing puts 'Not equal to tolerance' / 'Arrays are not equal' first and the test's sentence
    second: the learner sees the test's sentence first, with numpy's count and largest difference."""
    import numpy as np

    with pytest.raises(AssertionError) as info:
        call(np)
    head, rest = split_message(info.value)
    assert head.startswith("mlp: the last layer must be linear (1 of 2 differ, max |diff| 1"), head
    assert any("Arrays are not" in l or "Not equal to tolerance" in l for l in rest), rest


def test_numpy_without_a_sentence_still_does_not_lead():
    import numpy as np

    with pytest.raises(AssertionError) as info:
        np.testing.assert_allclose([1.0, 2.0], [1.0, 3.0, 4.0])
    head, _ = split_message(info.value)
    assert head == "the values differ from the expected ones (shapes (2,), (3,) differ)", head


def test_folded_lines_keep_the_final_error_line():
    from tfkata.feedback.frames import MAX_MESSAGE_LINES, _clip

    lines = [f"context {i}" for i in range(12)] + ["    ValueError: Input 0 of layer 'dense' is incompatible", "tail"]
    out = _clip(lines)
    assert len(out) <= MAX_MESSAGE_LINES + 1 and out[-1].strip().startswith("ValueError: Input 0"), out
    assert "more lines" in out[-2], out


def test_first_problem_is_the_failure_not_an_earlier_todo():
    from tfkata.results import Run, TestResult, Todo

    tests = [TestResult("t::a", "test_a", "k07", "todo", covers=["bucketed_batches"],
                        todo=Todo("k07", "bucketed_batches", "katas/k07_seq2seq.py", 10)),
             TestResult("t::b", "test_b", "k07", "fail", covers=["masked_loss"], message="masked_loss: ...")]
    run = Run("katas", tests=tests)
    assert run.first_problem.name == "test_b"
    assert Run("katas", tests=tests[:1]).first_problem.name == "test_a"


def test_blame_goes_to_the_function_that_raised_or_the_one_the_message_names(tmp_path):
    """`Stuck? kata hint` names the function the failure is about: the kata function its message starts with,
    else the deepest public function of the kata in the traceback (not its caller), else the covered function
    the first line names first."""
    from tfkata import registry
    from tfkata.feedback.classify import blamed_function

    k06 = registry.get("k06")
    target = tmp_path / "katas"
    target.mkdir()
    (target / f"{k06.module}.py").write_text(textwrap.dedent('''
        def top_output(state):
            raise ValueError("boom")

        def run_stack(x):
            return top_output(x)
    '''))
    spec = importlib.util.spec_from_file_location("blame_k06", target / f"{k06.module}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(ValueError) as info:
        module.run_stack(1)
    assert blamed_function(info.tb, "ValueError: boom", k06, ["run_stack", "top_output"], target) == "top_output"
    line = "run_dynamic: with sequence_length the outputs past each length must be 0"
    assert blamed_function(None, line, k06, ["run_static", "run_dynamic", "make_cell"], target) == "run_dynamic"
    assert blamed_function(None, "wrong", k06, ["run_static", "run_dynamic"], target) == "run_static"
    # another kata function counts when named as code, never as a plain word (n04: "... and train the other")
    assert blamed_function(None, "the cell from `make_cell` is wrong", k06, ["run_static"], target) == "make_cell"
    assert blamed_function(None, "call make_cell('lstm') first", k06, ["run_static"], target) == "make_cell"
    n04 = registry.get("n04")
    line = "validation must be the FIRST 5000 training digits and train the other 55,000"
    assert "train" in n04.hints and blamed_function(None, line, n04, ["mnist_splits"], target) == "mnist_splits"
    # A message that starts with a kata function's name is about it, whatever raised inside: the test's
    # check of run_static fired in top_output's frame (say, a stand-in it called).
    for line in ("run_static: outputs are one per step", "run_static(cell, x): outputs are one per step",
                 "run_static, in a tf.function: outputs are one per step"):
        assert blamed_function(info.tb, line, k06, ["top_output", "run_static"], target) == "run_static", line
    assert blamed_function(info.tb, "Model.call: boom", k06, ["run_stack"], target) == "top_output", (
        "a leading name that is no kata function is not a lead")


def test_a_training_failure_is_about_the_function_its_curve_implicates(tmp_path):
    """A training test's message ends with the curve's reading (tfkata.feedback.curves) given its kata's
    suspects: "Stuck?" names the function to read first, not the test's first covered function."""
    import math

    from tfkata import registry
    from tfkata.feedback.classify import blamed_function
    from tfkata.feedback.curves import explain_curve

    k04 = registry.get("k04")
    covers = ["train", "evaluate", "read_data_sets", "build_cnn", "build_training"]
    suspects = {"rate": "build_training", "init": "build_cnn", "loop": "train", "eval": "evaluate"}
    for losses, expected in (([2.3, 1.0, float("nan")], "build_training"), ([math.log(10)] * 8, "build_cnn"),
                             ([1.7] * 8, "train")):
        line = f"validation accuracy after 600 steps is 0.1000, expected >= 0.97: " + explain_curve(
            losses, n_classes=10, suspects=suspects)
        assert blamed_function(None, line, k04, covers, tmp_path) == expected, line


def test_autograph_and_keras_wrappers_give_way_to_the_real_error():
    """'in user code:' (AutoGraph) is never the headline: the error line inside it is."""
    @tf.function
    def scale(x):
        return x * tf.Variable(2.0)

    with pytest.raises(ValueError) as info:
        scale(tf.constant(1.0))
        scale(tf.constant([1.0, 2.0]))
    head, _ = split_message(info.value)
    assert head.startswith("tf.function only supports singleton tf.Variables"), head


def test_a_frame_autograph_converted_is_the_original_functions():
    """Inside a tf.function a kata function runs as its AutoGraph copy (``tf__name`` in a generated file): that
    frame names it (n08's attention_teacher_forced inside make_attention_train_step's step)."""
    from tfkata.feedback.facts import autograph_original

    assert autograph_original("/tmp/__autograph_generated_filex1y2.py", "tf__attention_teacher_forced") == (
        "attention_teacher_forced")
    assert autograph_original("/repo/katas/n08_keras_attention.py", "tf__x") is None
    assert autograph_original("/tmp/__autograph_generated_filex1y2.py", "inner") is None
