"""tfkata.returned: a kata function returning None where every path of its reference returns a value fails at
once, naming the function (a forgotten ``return``); a function whose reference may return None is never asked."""
import ast
import textwrap

import pytest

from tfkata import returned


def _valued(source: str) -> bool:
    return returned.always_returns_value(ast.parse(textwrap.dedent(source)).body[0])


@pytest.mark.parametrize("source", [
    "def f(x):\n    return x + 1\n",
    "def f(x):\n    if x:\n        return 1\n    else:\n        return 2\n",
    "def f(x):\n    if x:\n        return 1\n    return 2\n",
    "def f(x):\n    if not x:\n        raise ValueError(x)\n    return x\n",
    "def f(x):\n    with open(x) as h:\n        return h.read()\n",
    "def f(x):\n    try:\n        return g(x)\n    finally:\n        close()\n",
    "def f(x):\n    def inner():\n        return None\n    return inner\n",   # the inner function's return is its own
    "def f(x):\n    def gen():\n        yield 1\n    return gen()\n",
])
def test_functions_that_always_return_a_value(source):
    assert _valued(source)


@pytest.mark.parametrize("source", [
    "def f(x):\n    print(x)\n",                                         # no return at all
    "def f(x):\n    if x:\n        return 1\n",                           # falls off the end when x is falsy
    "def f(x):\n    if x:\n        return 1\n    return None\n",          # None is one of its answers
    "def f(x):\n    for i in x:\n        return i\n",                     # an empty x falls through
    "def f(x):\n    yield x\n",                                           # a generator
    "def f(x):\n    if x:\n        return\n    return 2\n",               # a bare return
    "def f(x):\n    while True:\n        if x():\n            return 1\n",  # a loop: not followed
    "def f(x):\n    with tf.GradientTape() as tape:\n        y = x * x\n    return tape.gradient(y, x)\n",  # unwatched: None
])
def test_functions_that_may_return_none(source):
    assert not _valued(source)


def test_the_loader_names_a_function_that_forgot_its_return(monkeypatch):
    from tfkata.loader import load_kata

    k06 = load_kata("k06")
    module = k06._load()

    def top_output(outputs, state):
        state[-1] if isinstance(state, tuple) else state  # noqa: B018 - computed, never returned

    top_output.__module__ = module.__name__
    monkeypatch.setattr(module, "top_output", top_output)
    with pytest.raises(returned.ReturnedNone, match="^top_output: returned None, where it must return what its docstring says: is a `return` missing"):
        k06.top_output(None, (1, 2))


def test_a_function_whose_reference_may_return_none_is_not_asked(monkeypatch):
    from tfkata.loader import load_kata

    n09 = load_kata("n09")
    module = n09._load()

    def first_bad_op(fn, *args):
        return None  # n09's reference: None when no op is bad

    first_bad_op.__module__ = module.__name__
    monkeypatch.setattr(module, "first_bad_op", first_bad_op)
    assert n09.first_bad_op(lambda: None) is None


def test_a_function_that_refuses_some_arguments_is_told_it_may_raise_instead(monkeypatch):
    from tfkata.loader import load_kata

    k06 = load_kata("k06")
    module = k06._load()

    def make_cell(kind, num_units):
        return {"lstm": lambda: None}.get(kind, lambda: None)()  # an unknown kind gives None, never ValueError

    make_cell.__module__ = module.__name__
    monkeypatch.setattr(module, "make_cell", make_cell)
    with pytest.raises(returned.ReturnedNone, match=r"^make_cell: returned None, where it must return what its "
                       r"docstring says \(or raise, for an argument its docstring says it refuses"):
        k06.make_cell("gru_typo", 4)


def test_top_output_is_not_told_it_may_raise():
    """top_output's reference raises nothing: its line does not offer raising as the fix."""
    from tfkata.paths import reference_file

    assert "top_output" not in returned.refusing_in(reference_file("k06_rnn_api"))
    assert "make_cell" in returned.refusing_in(reference_file("k06_rnn_api"))
