# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run k02        (or: pytest tests/test_k02_variables_scopes.py)
# Generated from solutions/k02_variables_scopes.py by `python -m tfkata.stubs k02`; `kata reset k02` restores it.
"""k02 · Variables and scopes (基础知识：变量与作用域).

Variables are the graph's state: they keep their value between ``Session.run`` calls, but only
after an initializer has run. ``tf.Variable`` takes an initial value; ``get_variable`` takes a name,
a shape and an initializer, and looks the variable up by its full name, which is what lets a
``variable_scope`` share weights (``reuse``). ``name_scope`` only prefixes op names: get_variable
ignores it. Every function builds in the default graph (a fresh one in the tests).
"""
import tensorflow as tf


def make_variables():
    """Create ``v = tf.Variable([1.0, 2.0], name="v")`` and ``w``, a float32 ``get_variable`` named
    ``"w"`` of shape ``[3, 4]`` with no initializer given (so the default, glorot_uniform).

    Returns ``(v, w)``.
    """
    raise NotImplementedError("k02: make_variables")


def initialize(sess, variables=None):
    """Initialise variables in ``sess``: all global variables when ``variables`` is None, otherwise
    only the ones in the list (each variable has its own ``initializer`` op).

    Returns nothing (what it returns is not used).
    """
    raise NotImplementedError("k02: initialize")


def two_variables_named_y():
    """Create two ``tf.Variable`` objects (values 1.0 and 2.0) that are both given the name ``"y"``.

    Returns both. TensorFlow makes the names unique instead of failing: ``y:0`` and ``y_1:0``.
    """
    raise NotImplementedError("k02: two_variables_named_y")


def shared_variable(scope, reuse=None):
    """``get_variable("w", shape=[2])`` (zeros initializer) inside ``variable_scope(scope, reuse=reuse)``.

    Returns the variable, named ``<scope>/w:0``. What ``reuse`` does is the lesson:
    None creates it (ValueError if it exists), True returns the existing one (ValueError if there is
    none), ``tf.compat.v1.AUTO_REUSE`` creates it the first time and returns it afterwards.
    """
    raise NotImplementedError("k02: shared_variable")


def scope_names(kind):
    """Inside a scope named ``"my_scope"`` of the given ``kind`` (``"name_scope"`` for
    ``tf.name_scope``, ``"variable_scope"`` for ``tf.compat.v1.variable_scope``) create
    ``v1 = get_variable("var1", shape=[1])``, ``v2 = tf.Variable(1.0, name="var2")`` (shape [] is
    fine) and ``a = tf.add(v1, v2)``.

    Returns ``(v1, v2, a)``. Any other ``kind`` raises ValueError naming the two valid kinds.
    Slide's result: name_scope gives ``var1:0``, ``my_scope/var2:0``, ``my_scope/Add:0``;
    variable_scope gives ``my_scope/var1:0``, ``my_scope/var2:0``, ``my_scope/Add:0``.
    """
    raise NotImplementedError("k02: scope_names")


def mlp(x, layer_sizes):
    """A multi-layer perceptron on ``x`` [B, D] (float32) with one ``variable_scope`` per layer.

    Layer i (1-based) lives in scope ``"layer{i}"`` with ``W`` = get_variable("W", [in, out]) (default
    initializer) and ``b`` = get_variable("b", [out]) initialised to zeros, so the variables are
    ``layer1/W``, ``layer1/b``, ``layer2/W``, ... ``h = relu(h @ W + b)`` for every layer but the
    last, which stays linear. Returns the output [B, layer_sizes[-1]]. Called again inside an outer
    ``variable_scope(..., reuse=True)`` it must reuse the same variables. The caller decides about
    sharing: the layer scopes set no reuse of their own, so a second call without reuse raises
    ``ValueError`` (the variables already exist), as two networks in one scope should.
    """
    raise NotImplementedError("k02: mlp")


def increment(var, amount):
    """An op that adds ``amount`` to the variable ``var`` each time it runs (``tf.compat.v1.assign``).

    ``amount`` has ``var``'s shape and dtype (a Python number when ``var`` is a scalar). Returns the op
    (or the assigned tensor); building it changes nothing until a session runs it.
    """
    raise NotImplementedError("k02: increment")
