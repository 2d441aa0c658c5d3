"""Graded tests for k02 · Variables and scopes.

TF 2 vs the 2018 slides: variables are now resource variables, so reading an uninitialised one
raises FailedPreconditionError saying "uninitialized" in different words than TF 1.x did
("Attempting to use uninitialized value"); the names and the reuse rules are unchanged.

PYTEST_DONT_REWRITE: every assert here carries its own message, so pytest's assertion rewriting (about 2 s of
every run over all test files) would add nothing a learner reads.
"""
import math
import re

import numpy as np
import pytest
import tensorflow as tf

from tfkata import load_kata
from tfkata.differential import Case, compare, graph_outputs, reference
from tfkata.loader import fresh_graph
from tfkata.feedback.facts import first_line

k02 = load_kata("k02_variables_scopes")


def _from_variable_store(name, like):
    """What get_variable finds under ``name`` with reuse=True, or None when the store has no such variable."""
    with tf.compat.v1.variable_scope(tf.compat.v1.get_variable_scope(), reuse=True):
        try:
            return tf.compat.v1.get_variable(name, dtype=like.dtype.base_dtype)
        except ValueError:
            return None


def _read_after_initialize(sess, fetches, variables=None):
    """Call the learner's initialize, then read ``fetches``; an uninitialised read fails with the lesson."""
    counting = _CountingSession(sess)
    if variables is None:
        call = "initialize(sess)"
        fix = "sess.run(tf.compat.v1.global_variables_initializer())"
    else:
        call = f"initialize(sess, [{', '.join(v.op.name for v in variables)}])"
        fix = "sess.run([v.initializer for v in variables])"
    try:
        k02.initialize(counting) if variables is None else k02.initialize(counting, variables)
    except tf.errors.FailedPreconditionError as exc:
        error = first_line(exc)
    else:
        error = None
    if error is not None:  # outside the except block: no chained TensorFlow traceback
        pytest.fail(f"{call} itself read a variable that has no value yet ({error[:80]}): sess.run(variables) FETCHES "
                    f"their values; initialising means running their initializer ops, {fix}", pytrace=False)
    try:
        return sess.run(fetches)
    except tf.errors.FailedPreconditionError as exc:
        error = first_line(exc)
    left = {n.decode() if isinstance(n, bytes) else str(n) for n in sess.run(tf.compat.v1.report_uninitialized_variables())}
    missed = [v.op.name for v in variables or () if v.op.name in left]
    if counting.runs and missed:  # outside the except block: no chained TensorFlow traceback
        why = ("yours initialised none of them: running v.initial_value (or the variables) only computes values, the "
               "initializer op assigns them" if len(missed) == len(variables) else "yours skipped some: a range one short?")
        pytest.fail(f"{call} ran the session but left {missed} uninitialised: run the initializer of every variable "
                    f"in the list, {fix} ({why})")
    if counting.runs and variables is None:  # outside the except block: no chained TensorFlow traceback
        pytest.fail(f"{call} ran the session but left {sorted(left)} uninitialised: with no list, initialise every "
                    f"GLOBAL variable, {fix} (a local_variables_initializer covers none of them)", pytrace=False)
    pytest.fail(
        f"{call} must RUN the initializer op in the session: {fix}. Building the op only adds it to the "
        f"graph; afterwards a variable was still uninitialised (TensorFlow: {error})"
    )


class _CountingSession:
    """The session, counting the learner's sess.run calls."""

    def __init__(self, sess):
        self._sess, self.runs = sess, 0

    def run(self, *args, **kwargs):
        self.runs += 1
        return self._sess.run(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._sess, name)


def _expect_value_error(call, pattern, message):
    """``call()`` must raise ValueError matching ``pattern``; otherwise fail with ``message``."""
    try:
        call()
    except ValueError as exc:
        if re.search(pattern, str(exc)):
            return
        message += f" (it raised ValueError, but not that one: {first_line(exc)})"
    except Exception as exc:  # noqa: BLE001 - another error (a dict lookup's KeyError): this message, not its own
        message += f" (it raised {type(exc).__name__}: {first_line(exc)}; check the argument and raise ValueError yourself)"
    else:
        message += " (it raised nothing)"
    pytest.fail(message)


# --------------------------------------------------------------------------- make_variables
@pytest.mark.covers("make_variables")
def test_variable_and_get_variable_names_and_shapes():
    v, w = k02.make_variables()
    assert (v.name, w.name) == ("v:0", "w:0"), f"make_variables: expected names v:0 and w:0, got {v.name}, {w.name}"
    assert v.shape.as_list() == [2], f"make_variables: v should have shape [2], got {v.shape}"
    assert w.shape.as_list() == [3, 4], f"make_variables: w should have shape [3, 4], got {w.shape}"
    dtypes = (v.dtype.base_dtype.name, w.dtype.base_dtype.name)
    assert dtypes == ("float32", "float32"), f"make_variables: v and w should be float32, got {dtypes}"


@pytest.mark.covers("make_variables")
def test_w_comes_from_get_variable():
    v, w = k02.make_variables()
    assert isinstance(v, tf.Variable), f"make_variables: v should be a tf.Variable, got {type(v).__name__}"
    found = _from_variable_store("w", w)
    assert found is w, (
        "make_variables: w must be made by tf.compat.v1.get_variable('w', shape=[3, 4]); get_variable with "
        "reuse=True could not find it by name (a tf.Variable named 'w' is not in the variable store)"
    )


@pytest.mark.covers("make_variables")
def test_get_variable_default_initializer_is_glorot_uniform(sess):
    v, w = k02.make_variables()
    sess.run(tf.compat.v1.global_variables_initializer())
    got_v = sess.run(v)
    assert got_v.tolist() == [1.0, 2.0], f"make_variables: v should start at [1.0, 2.0], got {got_v.tolist()}"
    values = sess.run(w)
    limit = math.sqrt(6.0 / (3 + 4))
    assert np.unique(values).size == values.size, (
        f"make_variables: w should start random (glorot_uniform), got {np.unique(values).size} distinct values "
        "among 12: give get_variable no initializer, the lesson is the default one"
    )
    assert np.all(np.abs(values) <= limit), (
        f"make_variables: glorot_uniform for [3, 4] stays within +-{limit:.3f}, got max |w| = "
        f"{np.abs(values).max():.3f}: give get_variable no initializer, the lesson is the default one"
    )


@pytest.mark.covers("make_variables")
def test_w_follows_glorot_uniform_over_many_graph_seeds():
    """Twelve values fit many initializers; 240 (20 graph seeds) tell glorot_uniform on +-sqrt(6 / 7) apart:
    uniform (std limit / sqrt(3)), centred, reaching near the limit and never past it."""
    values = []
    for seed in range(20):
        with tf.Graph().as_default():
            tf.compat.v1.set_random_seed(seed)
            _, w = k02.make_variables()
            with tf.compat.v1.Session() as s:
                s.run(w.initializer)
                values.append(s.run(w).ravel())
    fits, seen = _glorot_uniform(np.concatenate(values), 3, 4)
    assert fits, (
        f"make_variables: over 20 graph seeds w's 240 start values have {seen}: "
        "another initializer was given; give get_variable none, the lesson is the default one"
    )


def _glorot_uniform(values, fan_in: int, fan_out: int) -> tuple[bool, str]:
    """Whether many start values look like glorot_uniform's for [fan_in, fan_out] (uniform on +-sqrt(6 / (in + out)):
    std limit / sqrt(3), centred, reaching near the limit and never past it), and what they look like."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    std, mean, top = float(values.std()), float(values.mean()), float(np.abs(values).max())
    fits = top <= limit + 1e-6 and top >= 0.85 * limit and abs(mean) < 0.1 and 0.85 < std / (limit / math.sqrt(3)) < 1.15
    return fits, (f"mean {mean:.3f}, std {std:.3f} and max |w| {top:.3f}; glorot_uniform for [{fan_in}, {fan_out}] is "
                  f"uniform on +-{limit:.3f} (mean 0, std {limit / math.sqrt(3):.3f})")


# --------------------------------------------------------------------------- initialize
@pytest.mark.covers("initialize", "make_variables")
def test_initialize_all(sess):
    v, w = k02.make_variables()
    got_v, got_w = _read_after_initialize(sess, [v, w])
    assert got_v.tolist() == [1.0, 2.0] and got_w.shape == (3, 4), (
        f"initialize(sess) must initialise every variable: got v = {got_v.tolist()}, w of shape {got_w.shape}"
    )


@pytest.mark.covers("initialize", "make_variables")
def test_initialize_all_includes_non_trainable_variables(sess):
    v, w = k02.make_variables()
    step = tf.compat.v1.Variable(0, trainable=False, name="global_step")
    k02.initialize(sess)
    left = sorted(n.decode() if isinstance(n, bytes) else str(n)
                  for n in sess.run(tf.compat.v1.report_uninitialized_variables()))
    assert "global_step" not in left, (
        f"initialize(sess) must initialise ALL global variables, non-trainable ones too: "
        f"global_step (trainable=False) was left uninitialised (still uninitialised: {left}); "
        "run tf.compat.v1.global_variables_initializer(), not the initializers of trainable_variables()"
    )
    assert sess.run(step) == 0, "initialize(sess): global_step should start at its initial value 0"


@pytest.mark.covers("initialize", "make_variables")
def test_initialize_only_the_listed_variables(sess):
    v, w = k02.make_variables()
    got_v = _read_after_initialize(sess, v, [v])
    assert got_v.tolist() == [1.0, 2.0], f"initialize(sess, [v]): v should be [1.0, 2.0], got {got_v.tolist()}"
    uninitialised = sess.run(tf.compat.v1.report_uninitialized_variables())
    names = sorted(n.decode() if isinstance(n, bytes) else str(n) for n in uninitialised)
    assert names == ["w"], (
        f"initialize(sess, [v]) must initialise only v, leaving w uninitialised; still uninitialised: {names}: "
        "with a list, run only those variables' initializers ([v.initializer for v in variables]), "
        "not global_variables_initializer()"
    )


@pytest.mark.covers("initialize", "make_variables")
def test_initialize_every_listed_variable(sess):
    v, w = k02.make_variables()
    got_v, got_w = _read_after_initialize(sess, [v, w], [w, v])  # two, in another order than made
    assert got_v.tolist() == [1.0, 2.0] and got_w.shape == (3, 4), (
        f"initialize(sess, [w, v]): v should be [1.0, 2.0] and w [3, 4], got {got_v.tolist()} and {got_w.shape}"
    )


@pytest.mark.covers("initialize", "make_variables")
@pytest.mark.restraint
def test_initialize_an_empty_list_initialises_nothing(sess):
    v, w = k02.make_variables()
    k02.initialize(sess, [])
    left = sorted(n.decode() if isinstance(n, bytes) else str(n)
                  for n in sess.run(tf.compat.v1.report_uninitialized_variables()))
    done = sorted({"v", "w"} - set(left))
    assert left == ["v", "w"], (
        f"initialize(sess, []): an empty list must initialise nothing, yet it initialised {done}: test "
        "`if variables is None` (None means all; `if not variables` also takes the empty list, which is falsy, "
        "for None)"
    )


@pytest.mark.covers("initialize")
def test_initialize_resets_variables_already_set(sess):
    v = tf.compat.v1.Variable(1.0, name="v")
    u = tf.compat.v1.Variable(7.0, name="u")
    for variables in (None, [v]):
        sess.run([v.initializer, u.initializer])
        sess.run(tf.compat.v1.assign(v, 5.0))
        k02.initialize(sess, variables)
        got = float(sess.run(v))
        assert got == 1.0, (
            f"initialize(sess{'' if variables is None else ', [v]'}) on a variable set to 5.0 since its last "
            f"initialisation should give it its initial value 1.0 again, got {got}: run the initializers every time "
            "(an initializer resets), do not skip the variables that are already initialised"
        )


@pytest.mark.covers("initialize")
def test_initialize_covers_variables_made_after_an_earlier_call(sess):
    tf.compat.v1.Variable(1.0, name="v")
    k02.initialize(sess)
    tf.compat.v1.Variable(2.0, name="u")  # made after the first call
    k02.initialize(sess)
    left = sorted(n.decode() if isinstance(n, bytes) else str(n)
                  for n in sess.run(tf.compat.v1.report_uninitialized_variables()))
    assert not left, (
        f"initialize(sess): {left} made after an earlier initialize(sess) stayed uninitialised: build "
        "tf.compat.v1.global_variables_initializer() on every call (it covers the variables that exist when it is "
        "built), not one kept from an earlier call"
    )


@pytest.mark.covers("initialize", "make_variables")
def test_reading_uninitialised_variable_fails(sess):
    v, w = k02.make_variables()
    _read_after_initialize(sess, v, [v])
    try:
        sess.run(w)  # only v was initialised: reading w is the error TF 1 users met daily
    except tf.errors.FailedPreconditionError:
        pass
    else:
        pytest.fail("initialize(sess, [v]) initialised w too: reading w should fail as uninitialised; with a list, run "
                    "only those variables' initializers ([v.initializer for v in variables])", pytrace=False)


# --------------------------------------------------------------------------- two_variables_named_y
def _two_variables_named_y():
    """k02.two_variables_named_y(), with get_variable's "already exists" told as this function's own lesson."""
    try:
        return k02.two_variables_named_y()
    except ValueError as exc:
        if "already exists" not in str(exc):
            raise
    pytest.fail("two_variables_named_y: make BOTH with tf.Variable(..., name='y'): tf.Variable renames the second "
                "to y_1, while get_variable refuses a name that exists (it raised 'Variable y already exists')")


@pytest.mark.covers("two_variables_named_y")
def test_auto_renaming(sess):
    first, second = _two_variables_named_y()
    for var, which in ((first, "first"), (second, "second")):
        assert isinstance(var, tf.Variable), (
            f"two_variables_named_y: the {which} should be a tf.Variable, got {type(var).__name__}"
        )
    assert (first.name, second.name) == ("y:0", "y_1:0"), (
        f"two_variables_named_y: two variables both created with name='y' become y:0 and y_1:0, "
        f"got {first.name}, {second.name}"
    )
    sess.run([first.initializer, second.initializer])
    got = sess.run([first, second])
    assert got == [1.0, 2.0], f"two_variables_named_y: expected the values 1.0 and 2.0, got {got}"


@pytest.mark.covers("two_variables_named_y")
def test_auto_renamed_variables_hold_floats():
    first, second = _two_variables_named_y()
    dtypes = [v.dtype.base_dtype.name for v in (first, second)]
    assert dtypes == ["float32", "float32"], (
        f"two_variables_named_y: the values 1.0 and 2.0 make float32 variables, got {dtypes}: write tf.Variable(1.0, "
        "name='y'), not tf.Variable(1, ...) (an int makes an int32 variable)"
    )


@pytest.mark.covers("two_variables_named_y")
def test_auto_renaming_again_in_a_graph_that_has_them():
    # A second call in the same graph: both get fresh unique names (y_2, y_3). A hard-coded name='y_1' looks right
    # in a fresh graph and gives y_1_1 here.
    _two_variables_named_y()
    first, second = _two_variables_named_y()
    assert (first.name, second.name) == ("y_2:0", "y_3:0"), (
        f"two_variables_named_y called twice in one graph: the second call should give y_2:0 and y_3:0 (TensorFlow "
        f"makes names unique), got {first.name}, {second.name}: give BOTH variables name='y' and let TensorFlow "
        "rename the second"
    )


# --------------------------------------------------------------------------- shared_variable
@pytest.mark.covers("shared_variable")
def test_shared_variable_name_shape_and_zeros(sess):
    w = k02.shared_variable("shared")
    assert w.name == "shared/w:0", f"shared_variable('shared'): expected the name shared/w:0, got {w.name}"
    assert w.shape.as_list() == [2], f"shared_variable: expected shape [2], got {w.shape}"
    sess.run(w.initializer)
    got = sess.run(w)
    assert got.tolist() == [0.0, 0.0], (
        f"shared_variable: w should start at zeros (initializer=tf.compat.v1.zeros_initializer()), got {got.tolist()}"
    )
    try:
        other = k02.shared_variable("s").name
    except ValueError as exc:  # made w in a fixed scope again
        other = f"ValueError '{first_line(exc)[:60]}'"
    assert other == "s/w:0", (
        f"shared_variable('s') after shared_variable('shared'): expected a new variable s/w:0, got {other}: open "
        "variable_scope(scope, reuse=reuse) with the scope argument, not a fixed name"
    )


@pytest.mark.covers("shared_variable")
def test_get_variable_twice_without_reuse_fails():
    w = k02.shared_variable("shared")
    assert w.name == "shared/w:0", f"shared_variable('shared'): expected shared/w:0, got {w.name}"
    _expect_value_error(
        lambda: k02.shared_variable("shared"),
        "already exists",
        "shared_variable('shared') a second time with reuse=None must raise ValueError '... already exists': "
        "pass reuse through to variable_scope and create w with get_variable (not tf.Variable)",
    )


@pytest.mark.covers("shared_variable")
def test_reuse_true_returns_the_same_variable():
    w = k02.shared_variable("shared")
    try:
        again = k02.shared_variable("shared", reuse=True)
    except ValueError as exc:
        if "already exists" not in str(exc):
            raise
        again = None
    assert again is not None, (
        "shared_variable('shared', reuse=True) raised '... already exists': pass reuse through, "
        "tf.compat.v1.variable_scope(scope, reuse=reuse), so get_variable looks the variable up"
    )
    assert again is w, (
        "shared_variable('shared', reuse=True) must return the variable created before: "
        "with tf.compat.v1.variable_scope(scope, reuse=reuse): get_variable('w', ...)"
    )
    _expect_value_error(
        lambda: k02.shared_variable("other", reuse=True),
        "does not exist",
        "shared_variable('other', reuse=True) must raise ValueError '... does not exist': "
        "reuse=True only looks variables up, it never creates one",
    )


@pytest.mark.covers("shared_variable")
def test_auto_reuse_creates_then_reuses():
    try:
        first = k02.shared_variable("auto", reuse=tf.compat.v1.AUTO_REUSE)
    except ValueError as exc:
        as_true = "does not exist" in str(exc)
    else:
        as_true = False
    if as_true:  # outside the except block: no chained traceback
        pytest.fail("shared_variable('auto', reuse=tf.compat.v1.AUTO_REUSE) opened its scope with reuse=True, so w "
                    "could not be created: pass reuse to variable_scope(scope, reuse=reuse) unchanged (AUTO_REUSE "
                    "is truthy: bool(reuse) or `if reuse: reuse = True` turn it into True)", pytrace=False)
    second = k02.shared_variable("auto", reuse=tf.compat.v1.AUTO_REUSE)
    assert first.name == "auto/w:0", f"shared_variable('auto', AUTO_REUSE): expected auto/w:0, got {first.name}"
    n_vars = len(tf.compat.v1.global_variables())
    assert first is second and n_vars == 1, (
        f"shared_variable with reuse=AUTO_REUSE twice must create ONE variable and return it twice; the graph "
        f"has {n_vars}: pass reuse through to variable_scope"
    )


# --------------------------------------------------------------------------- scope_names
@pytest.mark.covers("scope_names")
def test_name_scope_is_ignored_by_get_variable():
    v1, v2, a = k02.scope_names("name_scope")
    got = (v1.name, v2.name, a.name)
    if v1.name == "my_scope/var1:0":
        if _from_variable_store("my_scope/var1", v1) is v1:
            cause = (
                "get_variable found var1 under my_scope/, so the scope opened for kind 'name_scope' is a "
                "variable_scope: open tf.name_scope('my_scope') there (get_variable ignores name_scope)"
            )
        else:
            cause = (
                "var1 is not in get_variable's store: make it with tf.compat.v1.get_variable('var1', shape=[1]), "
                "which ignores tf.name_scope (tf.Variable takes the prefix)"
            )
    elif got[:2] == ("var1:0", "my_scope/var2:0") and a.op.type in ("AddV2", "Add") and a.op.name.endswith("/add"):
        cause = "v1 + v2 makes an op named 'add'; tf.add(v1, v2) names it 'Add', as the slide prints"
    else:
        cause = "get_variable ignores tf.name_scope, tf.Variable and ops do not"
    assert got == ("var1:0", "my_scope/var2:0", "my_scope/Add:0"), (
        f"scope_names('name_scope'): expected ('var1:0', 'my_scope/var2:0', 'my_scope/Add:0'), got {got}: {cause}"
    )


@pytest.mark.covers("scope_names")
def test_variable_scope_prefixes_everything():
    v1, v2, a = k02.scope_names("variable_scope")
    got = (v1.name, v2.name, a.name)
    assert got == ("my_scope/var1:0", "my_scope/var2:0", "my_scope/Add:0"), (
        f"scope_names('variable_scope'): expected every name prefixed by my_scope/, got {got}"
    )
    assert _from_variable_store("my_scope/var1", v1) is v1, (
        "scope_names: v1 must be made by tf.compat.v1.get_variable('var1', shape=[1]) (get_variable could not find it)"
    )


@pytest.mark.covers("scope_names")
@pytest.mark.parametrize("kind", ["scope", "name_scopes", "var_scope", "Variable_Scope"])
def test_scope_names_rejects_unknown_kind(kind):
    _expect_value_error(
        lambda: k02.scope_names(kind),
        "name_scope",
        f"scope_names({kind!r}) must raise ValueError naming the valid kinds 'name_scope' and 'variable_scope' "
        "(exactly these two strings: no prefix match, no other spelling)",
    )
    made = [op.name for op in tf.compat.v1.get_default_graph().get_operations()]
    assert not made, (
        f"scope_names({kind!r}) raised, but only after building {len(made)} ops ({', '.join(made[:3])}, ...): check "
        "kind BEFORE creating anything, so a wrong kind leaves the graph as it was"
    )


# --------------------------------------------------------------------------- mlp
@pytest.mark.covers("mlp")
def test_mlp_variable_names_and_shapes():
    x = tf.compat.v1.placeholder(tf.float32, [None, 5])
    out = k02.mlp(x, [8, 3])
    assert out.shape.as_list() == [None, 3], f"mlp(x [B, 5], [8, 3]): expected output shape [None, 3], got {out.shape}"
    got = {v.name: v.shape.as_list() for v in tf.compat.v1.global_variables()}
    expected = {"layer1/W:0": [5, 8], "layer1/b:0": [8], "layer2/W:0": [8, 3], "layer2/b:0": [3]}
    assert got == expected, (
        f"mlp: expected the variables {expected}, got {got}: variable_scope(f'layer{{i}}') with i from 1, "
        "W of shape [in, out], b of shape [out]"
    )


@pytest.mark.covers("mlp")
def test_mlp_reuse_and_values(sess):
    sizes = (6, 4)
    x = tf.compat.v1.placeholder(tf.float32, [None, 3])
    with tf.compat.v1.variable_scope("net"):
        out = k02.mlp(x, list(sizes))
    with tf.compat.v1.variable_scope("net", reuse=True):
        out_again = k02.mlp(x, list(sizes))
    n_vars = len(tf.compat.v1.global_variables())
    assert n_vars == 4, (
        f"mlp called again under variable_scope('net', reuse=True) must create no variables; the graph has {n_vars} "
        "(expected 4): make W and b with get_variable, not tf.Variable"
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    var = {v.op.name: v for v in tf.compat.v1.global_variables()}
    biases = sess.run([var["net/layer1/b"], var["net/layer2/b"]])
    assert not any(b.any() for b in biases), "mlp: b should start at zeros (initializer=tf.compat.v1.zeros_initializer())"
    for i, fan_in, fan_out in ((1, 3, 6), (2, 6, 4)):
        w0 = sess.run(var[f"net/layer{i}/W"])
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        assert np.unique(w0).size == w0.size and np.abs(w0).max() <= limit, (
            f"mlp: layer{i}/W should start random within +-{limit:.3f} (get_variable's default initializer, "
            f"glorot_uniform), got {np.unique(w0).size} distinct values among {w0.size}, max |W| "
            f"{np.abs(w0).max():.3f}: give W no initializer (equal weights never break the symmetry between units)"
        )
    rng = np.random.RandomState(0)
    for i, size in enumerate(sizes, start=1):  # non-zero biases, so a missing `+ b` shows
        sess.run(var[f"net/layer{i}/b"].assign(rng.uniform(-0.5, 0.5, size).astype(np.float32)))
    w1, b1, w2, b2 = sess.run([var["net/layer1/W"], var["net/layer1/b"], var["net/layer2/W"], var["net/layer2/b"]])
    feed = rng.randn(5, 3).astype(np.float32)
    expected = np.maximum(feed @ w1 + b1, 0.0) @ w2 + b2  # hidden layer ReLU, last layer linear
    got, got_again = sess.run([out, out_again], {x: feed})
    assert got.shape == expected.shape, f"mlp: expected an output of shape {expected.shape}, got {got.shape}"
    if not np.allclose(got, expected, rtol=1e-4, atol=1e-5):
        variants = {
            "the last layer must stay linear (no ReLU on the output)": np.maximum(expected, 0.0),
            "the hidden layer needs the ReLU: h = relu(h @ W + b)": (feed @ w1 + b1) @ w2 + b2,
            "each layer must add its bias: h @ W + b": np.maximum(feed @ w1, 0.0) @ w2,
        }
        hint = next((h for h, ref in variants.items() if np.allclose(got, ref, rtol=1e-4, atol=1e-5)),
                    "expected relu(x W1 + b1) W2 + b2")
        diff = np.abs(got - expected)
        where = np.unravel_index(diff.argmax(), diff.shape)
        pytest.fail(f"mlp: wrong output (max |diff| {diff.max():.3g} at {tuple(int(i) for i in where)}): {hint}")
    assert np.allclose(got_again, got, rtol=1e-6, atol=1e-7), "mlp: the reused network must give the same output"


@pytest.mark.covers("mlp")
def test_mlp_weights_follow_glorot_uniform_over_many_graph_seeds():
    """A few values fit many initializers (a truncated normal of stddev 0.1 stays inside glorot's bound); 20 graph
    seeds of both layers' W tell glorot_uniform, get_variable's default, apart."""
    values = {1: [], 2: []}
    for seed in range(20):
        with tf.Graph().as_default():
            tf.compat.v1.set_random_seed(seed)
            k02.mlp(tf.compat.v1.placeholder(tf.float32, [None, 3]), [6, 4])
            weights = {v.op.name: v for v in tf.compat.v1.global_variables()}
            with tf.compat.v1.Session() as s:
                s.run(tf.compat.v1.global_variables_initializer())
                for i in values:
                    values[i].append(s.run(weights[f"layer{i}/W"]).ravel())
    for i, (fan_in, fan_out) in ((1, (3, 6)), (2, (6, 4))):
        fits, seen = _glorot_uniform(np.concatenate(values[i]), fan_in, fan_out)
        assert fits, (
            f"mlp: over 20 graph seeds layer{i}/W's start values have {seen}: another initializer was given (the "
            "slides' truncated normal?); the docstring asks for get_variable's default initializer: give W none"
        )


@pytest.mark.covers("mlp")
def test_mlp_twice_without_reuse_raises():
    x = tf.compat.v1.placeholder(tf.float32, [None, 3])
    k02.mlp(x, [4, 2])
    try:
        k02.mlp(x, [4, 2])
    except ValueError as exc:
        assert "already exists" in str(exc), f"mlp: the second call raised ValueError, but not 'already exists': {exc}"
        return
    shared = len(tf.compat.v1.global_variables()) == 4
    pytest.fail(f"mlp called twice in one scope without reuse must raise ValueError (layer1/W already exists); it "
                f"{'silently shared the first call' if shared else 'made new'} variables: the caller decides about "
                "sharing (an outer variable_scope(..., reuse=True)), so open the layer scopes with no reuse of their "
                "own (no AUTO_REUSE)", pytrace=False)


@pytest.mark.covers("mlp")
def test_mlp_relu_on_every_hidden_layer(sess):
    sizes = (5, 6, 2)  # two hidden layers: both need the ReLU, only the last layer stays linear
    x = tf.compat.v1.placeholder(tf.float32, [None, 3])
    out = k02.mlp(x, list(sizes))
    var = {v.op.name: v for v in tf.compat.v1.global_variables()}
    names = [f"layer{i}/{p}" for i in range(1, 4) for p in ("W", "b")]
    assert sorted(var) == sorted(names), (
        f"mlp(x, [5, 6, 2]): expected the variables {names}, got {sorted(var)}: one variable_scope(f'layer{{i}}') "
        "per layer"
    )
    rng = np.random.RandomState(1)
    values = {n: rng.uniform(-1.0, 1.0, var[n].shape.as_list()).astype(np.float32) for n in names}
    sess.run([var[n].assign(values[n]) for n in names])
    feed = rng.randn(4, 3).astype(np.float32)
    relu = lambda h: np.maximum(h, 0.0)  # noqa: E731

    def forward(activate):
        h = feed
        for i in range(1, 4):
            h = h @ values[f"layer{i}/W"] + values[f"layer{i}/b"]
            h = relu(h) if i in activate else h
        return h

    expected = forward({1, 2})
    got = sess.run(out, {x: feed})
    if np.shape(got) == expected.shape and np.allclose(got, expected, rtol=1e-4, atol=1e-5):
        return
    variants = {
        "only layer1 had the ReLU: apply relu on every layer but the last (layer2 too, with three layers)": {1},
        "only the last hidden layer had the ReLU: apply relu on every layer but the last (layer1 too)": {2},
        "the last layer must stay linear (relu on every layer but the last)": {1, 2, 3},
    }
    hint = next((h for h, act in variants.items()
                 if np.shape(got) == expected.shape and np.allclose(got, forward(act), rtol=1e-4, atol=1e-5)),
                "expected relu(relu(x W1 + b1) W2 + b2) W3 + b3: relu on every layer but the last")
    pytest.fail(f"mlp(x, [5, 6, 2]) with three layers: wrong output: {hint}")


# --------------------------------------------------------------------------- increment
@pytest.mark.covers("increment")
def test_increment_assigns_when_run(sess):
    var = tf.Variable(1.0)
    op = k02.increment(var, 2.5)
    sess.run(var.initializer)
    assert sess.run(var) == 1.0, "increment: building the op must not change the variable (nothing runs yet)"
    sess.run(op)
    sess.run(op)
    got = sess.run(var)
    if got == 1.0:
        why = "var + amount alone computes a value and changes nothing"
    elif got == 2.5:
        why = "each run set var to amount (assign(var, amount)); it must add amount to var"
    elif got == 3.5:
        why = ("each run set var to its initial value + amount: add amount to the variable's CURRENT value "
               "(var + amount, or assign_add), not to var.initial_value")
    elif got != 6.0:
        why = f"each run added {(got - 1.0) / 2:g}, not amount = 2.5: add the argument amount, no constant"
    else:
        why = ""
    assert got == 6.0, (
        f"increment(var, 2.5): two runs from 1.0 must leave var = 6.0, got {got}: {why}; return "
        "tf.compat.v1.assign(var, var + amount) or tf.compat.v1.assign_add(var, amount)"
    )


@pytest.mark.covers("increment")
def test_increment_keeps_an_integer_variable_integer(sess):
    var = tf.Variable(np.array([1, 2, 3], np.int32))
    op = k02.increment(var, np.array([10, 0, -5], np.int32))
    sess.run(var.initializer)
    sess.run(op)
    got = sess.run(var)
    assert got.dtype == np.int32 and got.tolist() == [11, 2, -2], (
        f"increment on an int32 variable [1, 2, 3] with amount [10, 0, -5]: expected [11, 2, -2] (int32), got "
        f"{got.tolist()} ({got.dtype}): amount already has var's dtype, add it as it is (no cast to float)"
    )


# --------------------------------------------------------------------------- differential checks (reference)
# Yours against solutions/ on generated cases, smallest first (tfkata.differential). Skipped, with reason:
# make_variables and two_variables_named_y take no input (names, shapes and values are pinned exactly above,
# w's glorot draw is random).
REF = reference("k02")


def _run_initialize(mod, case):
    """Three variables; initialise the ones the case names (None: all); which stay uninitialised, and the
    values of the others."""
    with fresh_graph() as graph:
        made = {
            "a": tf.Variable([1.0, -2.0], name="a"),
            "b": tf.compat.v1.get_variable("b", [2, 3], initializer=tf.compat.v1.constant_initializer(0.5)),
            "c": tf.Variable(-3.0, name="c"),
        }
        with tf.compat.v1.Session(graph=graph) as s:
            mod.initialize(s, None if case.args is None else [made[n] for n in case.args])
            left = sorted(n.decode() for n in s.run(tf.compat.v1.report_uninitialized_variables()))
            return left, {n: s.run(v) for n, v in made.items() if n not in left}


INITIALIZE_CASES = [
    Case("variables=None (a, b, c in the graph)", None),
    Case("variables=[c] (of a, b, c)", ["c"]),
    Case("variables=[c, a] (of a, b, c)", ["c", "a"]),
    Case("variables=[] (an empty list: initialise nothing)", []),
]


@pytest.mark.differential
@pytest.mark.covers("initialize")
def test_initialize_matches_reference():
    compare("initialize", k02, REF, INITIALIZE_CASES, _run_initialize,
            hint="None means every global variable; a list, even an empty one, means exactly those (test `is None`)")


def _run_shared_variable(mod, case):
    """Call shared_variable for each (scope, reuse) in order: its name, which earlier call returned the same
    variable (or None), its value; or the error a call raised (the sequence stops there)."""
    with fresh_graph() as graph:
        got, seen = [], []
        for scope, reuse in case.args:
            try:
                w = mod.shared_variable(scope, reuse=reuse)
            except ValueError:
                got.append("ValueError")
                break
            same = next((i for i, v in enumerate(seen) if v is w), None)
            seen.append(w)
            got.append((w.name, w.shape.as_list(), same))
        with tf.compat.v1.Session(graph=graph) as s:
            s.run(tf.compat.v1.global_variables_initializer())
            return got, s.run(seen), len(tf.compat.v1.global_variables())


AUTO = tf.compat.v1.AUTO_REUSE
SHARED_VARIABLE_CASES = [
    Case("shared_variable('s')", [("s", None)]),
    Case("shared_variable('s', reuse=True) with nothing created", [("s", True)]),
    Case("shared_variable('s') then shared_variable('s', reuse=True)", [("s", None), ("s", True)]),
    Case("shared_variable('s') twice", [("s", None), ("s", None)]),
    Case("shared_variable('a'), shared_variable('b'), then ('a', reuse=True)", [("a", None), ("b", None), ("a", True)]),
    Case("shared_variable('s', AUTO_REUSE) three times", [("s", AUTO)] * 3),
    Case("shared_variable('outer/inner') then ('outer/inner', AUTO_REUSE)", [("outer/inner", None), ("outer/inner", AUTO)]),
]


@pytest.mark.differential
@pytest.mark.covers("shared_variable")
def test_shared_variable_matches_reference():
    compare("shared_variable", k02, REF, SHARED_VARIABLE_CASES, _run_shared_variable,
            hint="with tf.compat.v1.variable_scope(scope, reuse=reuse): get_variable('w', shape=[2], zeros initializer)")


def _run_scope_names(mod, case):
    with fresh_graph():
        try:
            v1, v2, a = mod.scope_names(case.args)
        except ValueError:
            return "ValueError"
        return [t.name for t in (v1, v2, a)], [t.shape.as_list() for t in (v1, v2, a)]


@pytest.mark.differential
@pytest.mark.covers("scope_names")
def test_scope_names_matches_reference():
    cases = [Case(f"kind = {k!r}", k) for k in ("name_scope", "variable_scope", "Variable_scope")]
    compare("scope_names", k02, REF, cases, _run_scope_names,
            hint="tf.name_scope prefixes tf.Variable and ops only; variable_scope prefixes get_variable too")


def _assign_by_name(sess, seed):
    """Give every global variable, in name order, values from one seeded generator (the same for both runs)."""
    rng = np.random.RandomState(seed)
    sess.run([v.assign(rng.uniform(-1.0, 1.0, v.shape.as_list()).astype(np.float32))
              for v in sorted(tf.compat.v1.global_variables(), key=lambda v: v.name)])


def _run_mlp(mod, case):
    x_value, sizes, twice = case.args
    with fresh_graph() as graph:
        x = tf.compat.v1.placeholder(tf.float32, [None, x_value.shape[1]])
        with tf.compat.v1.variable_scope("net"):
            outs = [mod.mlp(x, list(sizes))]
        if twice:
            with tf.compat.v1.variable_scope("net", reuse=True):
                outs.append(mod.mlp(x, list(sizes)))
        names = sorted((v.name, v.shape.as_list()) for v in tf.compat.v1.global_variables())
        with tf.compat.v1.Session(graph=graph) as s:
            s.run(tf.compat.v1.global_variables_initializer())
            _assign_by_name(s, 0)
            return names, s.run(outs, {x: x_value})


_rng = np.random.RandomState(3)
MLP_CASES = [
    Case("x of shape [1, 2] with layer_sizes [3] (one linear layer)", (_rng.randn(1, 2).astype(np.float32), [3], False)),
    Case("x of shape [2, 3] with layer_sizes [4, 2]", (_rng.randn(2, 3).astype(np.float32), [4, 2], False)),
    Case("x of shape [4, 3] with layer_sizes [5, 6, 2] (three layers)", (_rng.randn(4, 3).astype(np.float32), [5, 6, 2], False)),
    Case("x of shape [3, 5] with layer_sizes [4, 4, 3, 2], called again under reuse=True",
         (_rng.randn(3, 5).astype(np.float32), [4, 4, 3, 2], True)),
]


@pytest.mark.differential
@pytest.mark.covers("mlp")
def test_mlp_matches_reference():
    compare("mlp", k02, REF, MLP_CASES, _run_mlp,
            hint="layer i in variable_scope(f'layer{i}'), h = relu(h @ W + b) for every layer but the last")


def _run_increment(mod, case):
    start, amount, runs = case.args

    def build():
        var = tf.Variable(start)
        return var, mod.increment(var, amount)

    with fresh_graph() as graph:
        var, op = build()
        with tf.compat.v1.Session(graph=graph) as s:
            s.run(var.initializer)
            values = [s.run(var)]
            for _ in range(runs):
                s.run(op)
                values.append(s.run(var))
            return values


INCREMENT_CASES = [
    Case("var = 0.0, amount = 1.0, run once", (0.0, 1.0, 1)),
    # amount has var's shape and dtype (the docstring): assign(var, var + amount) and assign_add(var, amount) both pass
    Case("var = [1.0, -2.0, 3.0], amount = [-0.5, 1.5, 0.25], run 3 times",
         (np.array([1.0, -2.0, 3.0], np.float32), np.array([-0.5, 1.5, 0.25], np.float32), 3)),
    Case("var = [[1, 2], [3, 4], [5, 6]] (int32), amount = [[10, -10], [0, 5], [-3, 1]], run twice",
         (np.array([[1, 2], [3, 4], [5, 6]], np.int32), np.array([[10, -10], [0, 5], [-3, 1]], np.int32), 2)),
]


@pytest.mark.differential
@pytest.mark.covers("increment")
def test_increment_matches_reference():
    compare("increment", k02, REF, INCREMENT_CASES, _run_increment,
            hint="return tf.compat.v1.assign(var, var + amount) (or tf.compat.v1.assign_add(var, amount)): each run adds "
                 "amount once")
