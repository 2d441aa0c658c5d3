"""tfkata/tracebacks.py: the short report of a failure, built from real exceptions.

A made-up learner module (``katas/learner.py``) and test module (``tests/fake_test.py``) are written
to a temporary folder and imported from there, so their frames are "own" frames exactly as in a
real run; TensorFlow raises from inside its own code.
"""
import importlib.util
import textwrap

import pytest

from tfkata.tfsetup import import_tensorflow
from tfkata.tracebacks import learner_report, split_message

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
