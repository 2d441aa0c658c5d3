"""tfkata.rigged: a kata function returning an object that equals anything (a submission writing its own
grade) fails, wherever in the result the object sits; honest values, library types included, pass."""
import collections
from unittest import mock

import numpy as np
import pytest

from tfkata import rigged, untouched


class _Always:
    def __eq__(self, other):
        return True

    def __hash__(self):
        return 0


class _Honest:
    """A learner's own class with an ordinary __eq__."""
    def __init__(self, x):
        self.x = x

    def __eq__(self, other):
        return isinstance(other, _Honest) and other.x == self.x

    def __hash__(self):
        return hash(self.x)


Model = collections.namedtuple("Model", "x y")


@pytest.mark.parametrize("value, where", [
    (_Always(), "the result"), (mock.ANY, "the result"), ((1, _Always()), "result[1]"),
    ({"k": [0, mock.ANY]}, "result['k'][1]"), (Model(np.zeros(2), _Always()), "result[1]"),
])
def test_an_object_equal_to_anything_is_named_where_it_sits(value, where):
    with pytest.raises(rigged.RiggedResult) as info:
        rigged.check("f", value)
    assert str(info.value).startswith(f"f: returned an object that says it equals anything ({where}, of type "), info
    assert issubclass(rigged.RiggedResult, untouched.Failure) and not issubclass(rigged.RiggedResult, Exception)


@pytest.mark.parametrize("value", [None, 1, 2.5, "s", [1, [2]], {"a": np.ones(3)}, np.zeros((2, 3)),
                                   Model(1, 2), _Honest(3), (np.float32(1.0), True), object()])
def test_honest_values_pass(value):
    rigged.check("f", value)


def test_tensors_and_variables_are_not_asked():
    import tensorflow as tf

    rigged.check("f", (tf.constant([1.0, 2.0]), tf.Variable(1.0), tf.TensorShape([2, None])))


def test_the_loader_checks_what_a_kata_function_returns(monkeypatch):
    from tfkata.loader import load_kata

    k06 = load_kata("k06")
    module = k06._load()

    def top_output(outputs, state):
        return mock.ANY

    top_output.__module__ = module.__name__
    monkeypatch.setattr(module, "top_output", top_output)
    with pytest.raises(rigged.RiggedResult, match="^top_output: returned an object that says it equals anything"):
        k06.top_output(None, None)
