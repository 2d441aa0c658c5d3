"""Graded tests for n03 · Arguments and GradientTape (the TF 2 twin of k03).

Eager tests (the harness makes no graph for the "now" track). Unit tests first; then the
equivalence tests, which run the same target's k03 (its model and ``sgd_minimize`` in a TF 1 session)
from the same start on the same samples and require the same k and b after every step (they wait
until k03 passes); then the training run. Measured on TF 2.12 and 2.21 (CPU): the reference n03 and
k03 agree to the bit over 100 steps (max |n - k| = 0).

PYTEST_DONT_REWRITE: every assert here carries its own message, so pytest's assertion rewriting (about 2 s of
every run over all test files) would add nothing a learner reads.
"""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfkata import fresh_graph, load_kata
from tfkata.differential import Case, compare, eager_outputs, reference
from tfkata.feedback.facts import first_line as _first_line
from tfkata.testing import numpy_global_rng_kept

n03 = load_kata("n03_gradient_tape")
k03 = load_kata("k03_placeholders_training")

# As in k03: max(|k - 3|, |b + 1|) after 100 steps at learning rate 0.5 was at most 0.0148 over 8 starts
# x 3 data seeds; 0.05 leaves more than 3x headroom.
TOLERANCE = 0.05
# Equivalence: k and b are float32 numbers near 3 and -1 (one ulp at 3 is 2.4e-7); the reference agrees
# to the bit, a learner's port may differ by rounding (e.g. (k x + b - y)^2 written as (y - b - k x)^2).
EQUIV_TOL = 1e-5


def _as_float(value, what):
    assert value is not None, f"{what} is None"
    shape = np.shape(value)
    assert shape == (), (
        f"{what} should be a scalar (shape []), got shape {list(shape)}: a scalar in gives a scalar out, so no "
        "reshape, tf.expand_dims or [...] around the result"
    )
    return float(np.asarray(value))


def _call(fn, *args):
    """fn(*args); an exception other than a stub's comes back as the result, unchained from this frame."""
    try:
        return fn(*args), None
    except NotImplementedError as exc:
        if str(exc).startswith("n03:"):
            raise  # a stub: the harness shows it as TODO
        return None, exc
    except (TypeError, ValueError, AttributeError) as exc:
        return None, exc


# --------------------------------------------------------------------------- unit tests
@pytest.mark.covers("sum_of")
def test_sum_of_takes_the_value_as_an_argument():
    for values in ([1.0, 2.0, 3.5], np.arange(10, dtype=np.float32), tf.constant([0.25] * 4)):
        got = n03.sum_of(values)
        want = float(np.sum(np.asarray(values, np.float32)))
        assert isinstance(got, tf.Tensor) and got.dtype == tf.float32, (
            f"sum_of should return a float32 tf.Tensor, got {type(got).__module__}.{type(got).__name__} "
            f"{getattr(got, 'dtype', '')}: keep the result a tensor (no .numpy(), no np.sum)"
        )
        mean = " (the mean: tf.reduce_mean averages, tf.reduce_sum adds)" if float(got) == pytest.approx(want / len(values)) else ""
        assert float(got) == want, f"sum_of({np.asarray(values).tolist()}) should be {want}, got {float(got)}{mean}"
    got = n03.sum_of(np.array([0.1, -0.25, 3.0]))  # numpy's default float is float64
    assert not isinstance(got, tf.Tensor) or got.dtype == tf.float32, (
        f"sum_of on a float64 numpy array gave a {got.dtype.name} tensor: tf.reduce_sum keeps the dtype it is given; "
        "convert x to float32 first, tf.convert_to_tensor(x, dtype=tf.float32)"
    )


def _why_no_derivative(monkeypatch, fn, x):
    """Why ``derivative(fn, x)`` came back None, from a second call that watches the learner's tapes."""
    tapes, inside = [], []  # every tf.GradientTape made; per call of fn: was a tape's `with` block open?

    class WatchingTape(tf.GradientTape):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.open, self.watched = False, 0
            tapes.append(self)

        def __enter__(self):
            self.open = True
            return super().__enter__()

        def __exit__(self, *exc):
            self.open = False
            return super().__exit__(*exc)

        def watch(self, tensor):
            self.watched += 1
            return super().watch(tensor)

    def spy(value):
        inside.append(any(tape.open for tape in tapes))
        return fn(value)

    monkeypatch.setattr(tf, "GradientTape", WatchingTape)
    try:
        n03.derivative(spy, x)
    except Exception:  # noqa: BLE001 -- only the tapes are of interest here
        pass
    monkeypatch.undo()
    if tapes and inside and not any(inside):
        return ("fn(x) ran outside the `with tf.GradientTape() as tape:` block (before it opened or after it ended), so "
                "the tape recorded nothing: "
                "compute y = fn(x) inside the with block (indented under it), after tape.watch(x)")
    if tapes and inside and not any(tape.watched for tape in tapes):
        return ("the tape watches only trainable variables, and x is a constant: call tape.watch(x) (x as a float32 "
                "tensor) inside the with block before y = fn(x)")
    return ("the tape watches only trainable variables; call tape.watch(x) on the constant (as a float32 tensor) "
            "before computing fn(x) inside the tape")


@pytest.mark.covers("derivative")
def test_derivative_of_a_constant_point(monkeypatch):
    cases = ((lambda x: x * x, 3.0, 6.0, "x^2 at 3"), (tf.sin, 0.5, math.cos(0.5), "sin at 0.5"),
             (lambda x: 4.0 * x - 1.0, tf.constant(2.0), 4.0, "4x - 1 at a tf.constant 2"))
    for fn, x, want, what in cases:
        got, error = _call(n03.derivative, fn, x)
        if error is not None and "not tf.Tensor" in str(error):
            pytest.fail(
                f"derivative of {what} (x a Python {type(x).__name__}): tape.watch needs a tensor: convert x first, "
                f"x = tf.convert_to_tensor(x, dtype=tf.float32) (it raised {type(error).__name__}: "
                f"{str(error).splitlines()[0][:100]})"
            )
        if error is not None and "Tensor conversion requested dtype" in str(error):
            pytest.fail(f"derivative of {what}: convert x to float32, tf.convert_to_tensor(x, dtype=tf.float32): a "
                        f"float32 tensor x cannot be converted to another dtype (it raised {type(error).__name__}: "
                        f"{str(error).splitlines()[0][:100]})", pytrace=False)
        assert error is None, f"derivative of {what} raised {type(error).__name__}: {str(error).splitlines()[0][:150]}"
        if got is None:
            pytest.fail(f"derivative of {what} came back None: {_why_no_derivative(monkeypatch, fn, x)}")
        near = " (close, not exact: a finite difference? take the exact gradient with tf.GradientTape)" if abs(
            float(got) - want) < 1e-2 * max(1.0, abs(want)) else ""
        assert abs(float(got) - want) < 1e-5, f"derivative of {what} should be {want:.6f}, got {float(got):.6f}{near}"
        if not isinstance(got, tf.Tensor):
            pytest.fail(f"derivative of {what}: return the gradient as the tape gives it, a float32 tensor, got "
                        f"{_kind(got)} (no .numpy(), no float())", pytrace=False)
        assert got.dtype == tf.float32, (
            f"derivative of {what}: expected a float32 scalar tensor (the docstring's dtype), got {got.dtype.name}: "
            "convert x to float32, tf.convert_to_tensor(x, dtype=tf.float32), and return tape.gradient(y, x) as it is, "
            "no cast"
        )
    seen = []
    n03.derivative(lambda x: seen.append(type(x)) or x * x, 3.0)
    assert not any(issubclass(t, tf.Variable) for t in seen), (
        "derivative: fn got a tf.Variable: x is a constant point, not a variable (a new variable per call, and one "
        "a tf.function cannot make): convert it, x = tf.convert_to_tensor(x, dtype=tf.float32), and tape.watch(x)"
    )
    assert len(seen) == 1, (
        f"derivative called fn {len(seen)} times for one point: call it ONCE, inside the tape, and ask the tape for "
        "the gradient (tape.gradient(y, x)); a finite difference, (fn(x + h) - fn(x - h)) / 2h, calls it twice and "
        "only approximates the derivative"
    )


@pytest.mark.covers("LinearModel")
def test_linear_model_variables_and_value():
    model = n03.LinearModel(2.0, 0.5)
    names = sorted(v.name for v in model.trainable_variables)
    if names != ["b:0", "k:0"]:
        kinds = {name: getattr(model, name, None) for name in ("k", "b")}
        constants = [name for name, value in kinds.items() if not isinstance(value, tf.Variable)]
        frozen = [name for name, value in kinds.items() if isinstance(value, tf.Variable) and not value.trainable]
        if constants:
            what = f"{constants[0]} is not a tf.Variable" if len(constants) == 1 else "k and b are not tf.Variables"
            why = (f"{what} (a tf.constant cannot be trained): make k and b tf.Variable(k_init, dtype=tf.float32, "
                   "name='k') and likewise b")
        elif frozen:
            why = (f"{' and '.join(frozen)} was made with trainable=False, so the tape and the optimizer skip it: "
                   "leave trainable at its default (True)")
        else:
            why = "make k and b tf.Variables named 'k' and 'b' on the module (self.k, self.b)"
        pytest.fail(f"LinearModel's trainable variables should be k:0 and b:0, got {names}: {why}")
    assert model.k.dtype == tf.float32 and model.k.shape == [], f"k should be a float32 scalar, got {model.k.dtype} {model.k.shape}"
    whole = n03.LinearModel(3, -1)  # integer start values
    dtypes = [getattr(whole, name).dtype.name for name in ("k", "b")]
    assert dtypes == ["float32", "float32"], (
        f"LinearModel(3, -1) made k, b as {dtypes[0]}, {dtypes[1]}: integer start values give integer variables unless "
        "you say dtype=tf.float32 in tf.Variable(k_init, dtype=tf.float32, name='k')"
    )
    assert (float(model.k.numpy()), float(model.b.numpy())) == (2.0, 0.5), "k and b should start at k_init, b_init"
    got = _as_float(model(1.5), "LinearModel(2, 0.5)(1.5)")
    swapped = " = b * x + k: k and b are swapped in __call__, return self.k * x + self.b" if got == 0.5 * 1.5 + 2 else ""
    assert got == 3.5, f"LinearModel(2, 0.5)(1.5) should be k * x + b = 2 * 1.5 + 0.5 = 3.5, got {got}{swapped}"
    again = _as_float(model(0.0), "LinearModel(2, 0.5)(0.0)")
    assert again != got, (
        f"LinearModel(2, 0.5)(0.0) gave {again:g}, what the call before gave for x = 1.5: __call__ must compute "
        "self.k * x + self.b from the x of THIS call every time; keep no result from an earlier call"
    )
    assert again == 0.5, f"LinearModel(2, 0.5)(0.0) should be k * 0 + b = 0.5, got {again:g}"
    got = np.asarray(model(tf.constant([0.0, 1.0])))
    np.testing.assert_allclose(got, [0.5, 2.5], err_msg="the model should work on a vector of x too")
    named = n03.LinearModel(1.0, 2.0, name="my_model").name
    assert named == "my_model", (
        f"LinearModel(1.0, 2.0, name='my_model').name should be 'my_model', got {named!r}: pass the name on, "
        "super().__init__(name=name)"
    )



@pytest.mark.covers("LinearModel")
def test_linear_model_is_differentiable():
    model = n03.LinearModel(2.0, 0.5)
    x = tf.constant(1.5)
    with tf.GradientTape() as tape:
        y = model(x)
    grads = tape.gradient(y, [model.k, model.b])
    got = [None if g is None else round(float(g), 6) for g in grads]
    assert got == [1.5, 1.0], (
        f"LinearModel.__call__: under a GradientTape, model(1.5) should give the gradients d/dk = x = 1.5 and d/db = 1, "
        f"got {got}: compute k * x + b from the variables themselves, self.k * x + self.b (a .numpy() value or a "
        "constant leaves the tape, so nothing can train k and b)")

@pytest.mark.covers("square_error", "LinearModel")
def test_square_error_value():
    model = n03.LinearModel(2.0, 0.5)
    try:
        loss = n03.square_error(model, 1.5, 2.0)
    except tf.errors.InvalidArgumentError as exc:
        pytest.fail(f"square_error(LinearModel(2, 0.5), x=1.5, y=2): on scalars it raised InvalidArgumentError "
                    f"({_first_line(exc)[:90]})"
                    + (": a Keras loss such as keras.losses.MeanSquaredError averages over the last axis, which a "
                       "scalar does not have" if "reduction dimension" in str(exc) else "")
                    + ": return tf.square(model(x) - y), one scalar", pytrace=False)
    assert not tf.is_tensor(loss) or loss.dtype == tf.float32, (
        f"square_error: expected a float32 scalar tensor (the docstring's dtype), got {loss.dtype.name}: no cast"
    )
    got = _as_float(loss, "square_error")
    why = {1.5: " (the absolute error |k x + b - y|): square the difference, tf.square(model(x) - y)",
           -0.5: " (model(x) - y**2): square the whole difference, tf.square(model(x) - y), not y alone"}
    why = next((text for value, text in why.items() if got == pytest.approx(value)), ": tf.square(model(x) - y)")
    assert got == pytest.approx(2.25), (
        f"square_error(LinearModel(2, 0.5), x=1.5, y=2) should be (k x + b - y)^2 = (3.5 - 2)^2 = 2.25, got {got}{why}"
    )


@pytest.mark.covers("square_error")
def test_square_error_is_differentiable():
    model = n03.LinearModel(2.0, 0.5)
    try:
        with tf.GradientTape() as tape:
            loss = n03.square_error(model, 1.5, 1.0)
        grads = tape.gradient(loss, [model.k, model.b])
    except (TypeError, ValueError, AttributeError) as exc:  # tape.gradient of a numpy value
        grads = exc
    want = (2 * 2.5 * 1.5, 2 * 2.5)  # d/dk (k x + b - y)^2 = 2 r x, d/db = 2 r, with r = 3.5 - 1
    if not isinstance(grads, list) or any(g is None for g in grads):
        got = type(grads).__name__ if isinstance(grads, Exception) else "None"
        pytest.fail(
            f"square_error under a tf.GradientTape gives no gradient for k and b (got {got}): square_error must stay a "
            "TensorFlow op: .numpy() (or float(), np.square) leaves the graph, so no gradient reaches k and b; "
            "return tf.square(model(x) - y)"
        )
    got = tuple(float(g) for g in grads)
    assert got == pytest.approx(want, rel=1e-6), (
        f"the gradients of square_error for k and b should be 2 (k x + b - y) x = {want[0]} and 2 (k x + b - y) = {want[1]}, "
        f"got {got}: the loss is (model(x) - y)^2 as a TensorFlow op"
    )


def _raised(what, error):
    """One line for an error raised inside sgd_step: the likely cause and its fix first, TensorFlow's words after."""
    text = str(error)
    raised = f"{type(error).__name__}: {text.splitlines()[0][:120] if text else ''}"
    if "No gradients" in text or "None" in text:
        return (f"{what}: no gradients: compute the loss INSIDE `with tf.GradientTape() as tape:` (loss = loss_fn() "
                f"indented under it) so the tape can differentiate it (it raised {raised})")
    if isinstance(error, AttributeError) or "Updating a `Tensor`" in text:
        return (f"{what}: apply_gradients takes (gradient, variable) pairs: zip(grads, variables), in that order "
                f"(it raised {raised})")
    return f"{what} raised {raised}"


def _quadratic():
    k = tf.Variable(1.0, name="k")
    b = tf.Variable(-2.0, name="b")
    return k, b, lambda: tf.square(3.0 * k + b - 4.0)  # d/dk = 2*3*(3k+b-4), d/db = 2*(3k+b-4)


@pytest.mark.covers("sgd_step")
def test_sgd_step_is_one_gradient_step():
    k, b, quadratic = _quadratic()
    calls = []

    def loss_fn():
        calls.append(1)
        return quadratic()

    optimizer = keras.optimizers.SGD(learning_rate=0.05)
    loss, error = _call(n03.sgd_step, loss_fn, [k, b], optimizer)
    assert error is None, _raised("sgd_step", error)
    updates = int(optimizer.iterations.numpy())
    assert updates <= 1, (
        f"sgd_step: one call applied the optimizer {updates} times (its iterations count): call "
        "optimizer.apply_gradients ONCE per step"
    )
    residual = 3.0 * 1.0 - 2.0 - 4.0
    want = (1.0 - 0.05 * 6.0 * residual, -2.0 - 0.05 * 2.0 * residual)  # loss 9 before, 0 after
    got = (float(k.numpy()), float(b.numpy()))
    if got == (1.0, -2.0):
        pytest.fail("sgd_step changed nothing: apply the tape's gradients with optimizer.apply_gradients")
    if got[0] < 1.0:  # the gradient for k is negative here: a step along -gradient raises k
        pytest.fail(f"sgd_step went uphill: one SGD step should give k, b = {want}, got {got}: apply the gradient "
                    "itself, apply_gradients(zip(grads, variables)) -- the optimizer subtracts it")
    used = (got[0] - 1.0) / (-6.0 * residual)  # the learning rate that moved k so far
    assert got == pytest.approx(want, rel=1e-6), (
        f"sgd_step: one SGD step (learning rate 0.05) should give k, b = ({want[0]:.4g}, {want[1]:.4g}), got "
        f"({got[0]:.4g}, {got[1]:.4g})"
        + (f": that is a step of learning rate {used:.4g}, not the optimizer's 0.05"
           + (", and the optimizer counted no update: let it apply them, optimizer.apply_gradients(zip(grads, "
              "variables)), no assign_sub by hand" if updates == 0 else "")
           if not np.isclose(used, 0.05, rtol=1e-3) else
           f": {'k' if got[0] == 1.0 else 'b'} did not move: take and apply the gradients of EVERY variable in "
           "variables" if 1.0 in got[:1] or got[1] == -2.0 else "")
    )
    assert updates == 1, (
        "sgd_step: the step is right, but the optimizer it was given counted no update (its iterations stayed 0): "
        "apply the gradients with THAT optimizer, optimizer.apply_gradients(zip(grads, variables)), not with a new "
        "optimizer of your own, nor by assign_sub by hand"
    )
    assert _as_float(loss, "the returned loss") == pytest.approx(residual ** 2), (
        f"sgd_step should return the loss before the update, {residual ** 2}, got {float(np.asarray(loss))}: return "
        "the loss computed inside the tape, not loss_fn() called again after apply_gradients"
    )
    assert isinstance(loss, tf.Tensor) and loss.dtype == tf.float32 and loss.shape.rank == 0, (
        f"sgd_step should return the loss as it is, a float32 scalar tensor, got "
        + (f"a tensor of dtype {loss.dtype.name} and shape {loss.shape}" if isinstance(loss, tf.Tensor) else
           f"a numpy {type(loss).__name__} (from .numpy())" if isinstance(loss, (np.ndarray, np.generic)) else
           f"a {type(loss).__name__}")
        + ": no float() or .numpy() (the caller converts it)"
    )
    assert len(calls) == 1, (
        f"sgd_step called loss_fn {len(calls)} times in one step: call it ONCE, inside the tape, and return that "
        "loss (each call may draw a new batch or dropout mask, and costs a forward pass)"
    )


@pytest.mark.covers("sgd_step")
def test_sgd_step_trains_only_the_variables_given():
    k, b, loss_fn = _quadratic()
    _, error = _call(n03.sgd_step, loss_fn, [k], keras.optimizers.SGD(learning_rate=0.1))
    assert error is None, _raised("sgd_step(loss_fn, [k], ...)", error)
    assert float(b.numpy()) == -2.0, "with variables=[k] only k may change (the tape's gradients for [k] only)"
    assert float(k.numpy()) != 1.0, "k should have been updated"


@pytest.mark.covers("train_linear_regression")
def test_train_linear_regression_makes_one_model_and_optimizer(monkeypatch):
    made = {"SGD": [], "LinearModel": []}  # every one constructed during the run (kept alive: none counted twice)

    def counting(cls, key):
        real_init = cls.__init__

        def init(self, *args, **kwargs):
            made[key].append(self)
            real_init(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", init)

    counting(keras.optimizers.SGD, "SGD")
    counting(n03.LinearModel, "LinearModel")
    calls = {"traced": 0, "eager": 0}
    real_call = n03.LinearModel.__call__

    def call(self, *args, **kwargs):  # its Python runs once per trace inside a tf.function, every call eagerly
        calls["eager" if tf.executing_eagerly() else "traced"] += 1
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(n03.LinearModel, "__call__", call)
    steps = 4
    try:
        n03.train_linear_regression(steps=steps, learning_rate=0.1, seed=1)
        error = None
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 -- e.g. Keras 3's optimizer meeting another model's variables
        error = exc
    # exactly one of each, as the docstring says (none made is no training at all)
    assert len(made["LinearModel"]) == 1, (
        f"train_linear_regression made {len(made['LinearModel'])} LinearModels for {steps} steps: "
        + ("every step started again from k_init, b_init; create the model once, before the loop (LinearModel(k_init, "
           "b_init) before `for`), and train that one" if made["LinearModel"] else
           "make LinearModel(k_init, b_init) before the loop and train it")
    )
    assert len(made["SGD"]) == 1, (
        f"train_linear_regression made {len(made['SGD'])} SGD optimizers for {steps} steps: "
        + ("create the optimizer once, outside the loop (keras.optimizers.SGD(learning_rate) before `for`), and pass the "
           "same one to every sgd_step -- an optimizer keeps state across steps (its iterations count, momentum, Adam's "
           "moments)" if made["SGD"] else
           "make keras.optimizers.SGD(learning_rate) before the loop and pass it to every sgd_step")
    )
    if made["SGD"]:
        rate = float(np.asarray(made["SGD"][0].learning_rate))
        assert rate == pytest.approx(0.1), (
            f"train_linear_regression(learning_rate=0.1) trained with an SGD of learning rate {rate:g}: pass the "
            "argument on, keras.optimizers.SGD(learning_rate=learning_rate)"
        )
    if error is not None:
        raise error
    assert calls["traced"] <= 2, (
        f"train_linear_regression traced a tf.function {calls['traced']} times in {steps} steps (the model was called "
        "while tracing): the docstring's loop runs eagerly, calling sgd_step(lambda: square_error(model, x, y), ...) "
        "each step; a tf.function around it traces again at every step (a new lambda, new Python numbers each time)"
    )
    if made["SGD"]:
        iterations = int(made["SGD"][0].iterations)
        assert iterations == steps, (
            f"train_linear_regression(steps={steps}): the SGD optimizer counted {iterations} updates: one "
            "apply_gradients per step, on that one optimizer, for the steps argument's number of steps"
        )


def _train_again(**kwargs):
    """train_linear_regression(**kwargs) in a process where it ran before: an optimizer kept from an earlier call
    meets this call's new model, which Keras 3 refuses inside sgd_step; told as train_linear_regression's."""
    try:
        return n03.train_linear_regression(**kwargs)
    except (ValueError, KeyError) as exc:  # Keras 3: ValueError "Unknown variable"; Keras 2: KeyError "cannot recognize"
        if not any(words in str(exc) for words in ("nknown variable", "originally built", "cannot recognize variable")):
            raise
        pytest.fail(
            f"train_linear_regression: its optimizer met the variables of another model ({_first_line(exc)[:120]}): "
            "an optimizer kept from an earlier call (a module-level global, a default argument) was built for that "
            "call's model; make keras.optimizers.SGD(learning_rate=learning_rate) inside train_linear_regression, "
            "once per call", pytrace=False)


@pytest.mark.covers("train_linear_regression")
def test_train_linear_regression_is_seeded_and_short():
    with numpy_global_rng_kept(
        "train_linear_regression changed numpy's global random state (np.random.seed / np.random.*): draw from your "
        "own generator, rng = np.random.RandomState(seed), and leave the global one alone"
    ):
        first = _train_again(steps=5, seed=3, k_init=0.2, b_init=0.1)
    second = _train_again(steps=5, seed=3, k_init=0.2, b_init=0.1)
    assert len(first[2]) == 5, f"expected one loss per step, got {len(first[2])}"
    not_float = [(name, type(v).__name__) for name, v in (("k", first[0]), ("b", first[1]),
                                                          *((f"losses[{i}]", v) for i, v in enumerate(first[2])))
                 if not isinstance(v, float)]
    assert not not_float, (
        f"train_linear_regression: return Python floats, got {not_float[0][0]} as {not_float[0][1]}"
        + (f" (and {len(not_float) - 1} more)" if len(not_float) > 1 else "")
        + ": float(...) each value (float(loss), float(model.k))"
    )
    assert first == second, "the same seed must give the same run (use np.random.RandomState(seed))"
    rng = np.random.RandomState(3)
    x = rng.random_sample()
    y = 3.0 * x - 1.0 + 0.0001 * rng.standard_normal()
    want = (0.2 * x + 0.1 - y) ** 2
    r = 0.2 * x + 0.1 - y  # the loss after the first update, on the same sample
    after = ((0.2 - 0.5 * 2 * r * x) * x + (0.1 - 0.5 * 2 * r) - y) ** 2
    from_zero = (0.0 * x + 0.0 - y) ** 2  # the first loss of a model that ignored k_init, b_init (LinearModel())
    swapped = (0.1 * x + 0.2 - y) ** 2  # LinearModel(b_init, k_init)
    seed0 = np.random.RandomState(0)  # the first sample of another seed (seed ignored)
    x0 = seed0.random_sample()
    unseeded = (0.2 * x0 + 0.1 - (3.0 * x0 - 1.0 + 0.0001 * seed0.standard_normal())) ** 2
    assert first[2][0] == pytest.approx(want, rel=1e-5), (
        f"train_linear_regression: the first loss should be (k_init x + b_init - y)^2 = {want:.6f} for the first sample "
        f"(x = rng.random_sample(), then y from rng.standard_normal()), got {first[2][0]:.6f}"
        + (": that is the loss AFTER the update; record the loss sgd_step returns (computed before it), not "
           "square_error called again after the step" if first[2][0] == pytest.approx(after, rel=1e-4) else
           ": that is the loss of k = b = 0, so the model ignored k_init and b_init: make it with "
           "LinearModel(k_init, b_init)" if first[2][0] == pytest.approx(from_zero, rel=1e-5) else
           ": that is the loss of k = b_init, b = k_init: the two are swapped, LinearModel(k_init, b_init)"
           if first[2][0] == pytest.approx(swapped, rel=1e-5) else
           ": that is the first sample of seed 0, and this test passed seed=3: draw from "
           "np.random.RandomState(seed), the argument" if first[2][0] == pytest.approx(unseeded, rel=1e-5) else "")
    )

    def loop(samples):  # the 5 steps in float64 numpy from (0.2, 0.1), learning rate 0.5 (the default)
        k, b = 0.2, 0.1
        for x, y in samples:
            residual = k * x + b - y
            k, b = k - 0.5 * 2 * residual * x, b - 0.5 * 2 * residual
        return k, b

    k, b = loop(_samples(5, 3))
    same = loop(_samples(1, 3) * 5)  # a generator made anew each step draws the first sample every time
    if max(abs(first[0] - k), abs(first[1] - b)) >= 1e-4 and max(abs(first[0] - same[0]), abs(first[1] - same[1])) < 1e-4:
        pytest.fail("train_linear_regression: every step trains on the SAME sample: make rng = "
                    "np.random.RandomState(seed) once, before the loop, not inside it (a new generator starts the same "
                    f"sequence again): after 5 steps k, b should be ({k:.5f}, {b:.5f}), got ({first[0]:.5f}, "
                    f"{first[1]:.5f})", pytrace=False)
    diff = max(abs(first[0] - k), abs(first[1] - b))
    if diff >= 1e-4 and max(abs(first[1] - k), abs(first[0] - b)) < 1e-4:
        pytest.fail(f"train_linear_regression: k and b are swapped: after 5 steps k, b should be ({k:.5f}, {b:.5f}), "
                    f"it returned ({first[0]:.5f}, {first[1]:.5f}): return (k, b, losses), k first", pytrace=False)
    frozen = [name for name, got, start in (("k", first[0], 0.2), ("b", first[1], 0.1)) if abs(got - start) < 1e-7]
    assert not frozen, (
        f"train_linear_regression: {' and '.join(frozen)} never moved from its start in 5 steps (k, b = "
        f"({first[0]:.5f}, {first[1]:.5f}), expected ({k:.5f}, {b:.5f})): train both, sgd_step(..., "
        "[model.k, model.b], optimizer) (or model.trainable_variables)"
    )
    assert diff < 1e-4, (
        f"after 5 SGD steps at learning rate 0.5 from (0.2, 0.1), k, b should be ({k:.5f}, {b:.5f}), got "
        f"({first[0]:.5f}, {first[1]:.5f}): one sgd_step per sample on square_error, SGD(learning_rate)"
    )


# --------------------------------------------------------------------------- equivalence with k03
MAPPING = (
    "k03 placeholders x, y -> arguments; sgd_minimize(loss) -> GradientTape + SGD.apply_gradients "
    "on [k, b]; k and b start at k03's initial values"
)


def _samples(steps, seed):
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(steps):
        x = rng.random_sample()
        out.append((x, 3.0 * x - 1.0 + 0.0001 * rng.standard_normal()))
    return out


def _k03_trajectory(steps, learning_rate, seed):
    """The learner's k03 model + sgd_minimize in a TF 1 session: start, (k, b) after each step, losses."""
    with fresh_graph():
        x, y, k, b, loss = k03.linear_regression_model()
        op = k03.sgd_minimize(loss, learning_rate)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            start = tuple(float(v) for v in sess.run([k, b]))
            after, losses = [], []
            for data_x, data_y in _samples(steps, seed):
                loss_value, _ = sess.run([loss, op], {x: data_x, y: data_y})
                losses.append(float(loss_value))
                after.append(tuple(float(v) for v in sess.run([k, b])))
    return start, after, losses


def _n03_trajectory(step, start, steps, learning_rate, seed):
    """``step(loss_fn, variables, optimizer)`` applied along the same samples from ``start``."""
    model = n03.LinearModel(*start)
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    after, losses = [], []
    for data_x, data_y in _samples(steps, seed):
        loss = step(lambda: n03.square_error(model, data_x, data_y), [model.k, model.b], optimizer)
        losses.append(float(np.asarray(loss)))
        after.append((float(model.k.numpy()), float(model.b.numpy())))
    return after, losses


def _compare(n_after, k_after):
    """(max |n - k| over all steps, None) or (diff, one line naming the mapping and the first bad step)."""
    diffs = [max(abs(nk - kk), abs(nb - kb)) for (nk, nb), (kk, kb) in zip(n_after, k_after)]
    worst = max(diffs) if diffs else math.inf
    if len(n_after) != len(k_after) or worst > EQUIV_TOL:
        bad = next((i for i, d in enumerate(diffs) if d > EQUIV_TOL), len(diffs))
        n_kb = n_after[bad] if bad < len(n_after) else None
        k_kb = k_after[bad] if bad < len(k_after) else None
        return worst, (
            f"port {MAPPING}: after step {bad + 1} k03 has (k, b) = {k_kb}, the TF 2 step has {n_kb} "
            f"(max |n - k| {worst:.3g} > {EQUIV_TOL}); the same start, samples and learning rate must "
            "give the same updates"
        )
    return worst, None


@pytest.mark.needs("k03")
@pytest.mark.covers("sgd_step", "LinearModel", "square_error")
def test_each_step_equals_k03():
    steps, lr, seed = 20, 0.5, 0
    start, k_after, k_losses = _k03_trajectory(steps, lr, seed)
    n_after, n_losses = _n03_trajectory(n03.sgd_step, start, steps, lr, seed)
    worst, message = _compare(n_after, k_after)
    print(f"n03 sgd_step vs k03 sgd_minimize, {steps} steps from {start}: max |n - k| = {worst:.3g}")
    assert message is None, message
    loss_diff = max(abs(a - b) for a, b in zip(n_losses, k_losses))
    assert loss_diff <= EQUIV_TOL * 10, f"the losses differ from k03's by up to {loss_diff:.3g}: {MAPPING}"


def _uphill_step(loss_fn, variables, optimizer):
    with tf.GradientTape() as tape:
        loss = loss_fn()
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients([(-g, v) for g, v in zip(grads, variables)])
    return loss


def _k_only_step(loss_fn, variables, optimizer):
    with tf.GradientTape() as tape:
        loss = loss_fn()
    optimizer.apply_gradients([(tape.gradient(loss, variables[0]), variables[0])])
    return loss


@pytest.mark.needs("k03")
@pytest.mark.covers("sgd_step", "LinearModel", "square_error")
def test_wrong_ports_of_k03_are_rejected():
    steps, lr, seed = 5, 0.5, 0
    start, k_after, _ = _k03_trajectory(steps, lr, seed)
    _, message = _compare(_n03_trajectory(n03.sgd_step, start, steps, lr, seed)[0], k_after)
    assert message is None, message  # the learner's port is accepted, the wrong ones are not
    for step, what in ((_uphill_step, "with the gradient's sign flipped"), (_k_only_step, "that trains k only")):
        n_after, _ = _n03_trajectory(step, start, steps, lr, seed)
        _, message = _compare(n_after, k_after)
        assert message is not None and MAPPING in message, f"the equivalence check accepted a port {what}"


# --------------------------------------------------------------------------- differential checks (reference)
# The learner's function against solutions/ on generated cases, smallest first (tfkata.differential): the net
# behind the concept tests above for mistakes nobody listed. Each run returns what the function determines.
REF = reference("n03")


def _kind(value):
    """'a tf.Tensor (float32)' for a tensor, else 'a numpy.float32', 'a float' (what a function promised to return)."""
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return f"a tf.Tensor ({value.dtype.name})"
    module = type(value).__module__
    return f"a {'' if module == 'builtins' else module + '.'}{type(value).__name__}"


def _run_sum_of(mod, case):
    result = mod.sum_of(case.args)
    return {"returns": _kind(result), "value": eager_outputs(lambda: result)}


SUM_OF_CASES = [
    Case("the list [2.5]", [2.5]),
    Case("the list [1.0, -2.0, 3.5]", [1.0, -2.0, 3.5]),
    Case("a float64 numpy array [0.1, -0.25, 3.0] (numpy's default float)", np.array([0.1, -0.25, 3.0])),
    Case("an empty list []", []),
    Case("a float32 tf.constant of 6 entries with negatives", tf.constant([-1.0, 2.0, -3.0, 4.0, 0.5, -0.5])),
]


@pytest.mark.differential
@pytest.mark.covers("sum_of")
def test_sum_of_matches_reference():
    compare("sum_of", n03, REF, SUM_OF_CASES, _run_sum_of,
            hint="convert x to a float32 tensor, then tf.reduce_sum: a float32 scalar tensor for any vector")


def _run_derivative(mod, case):
    fn, x = case.args
    result = mod.derivative(fn, x)
    return {"returns": _kind(result), "value": eager_outputs(lambda: result)}


DERIVATIVE_CASES = [
    Case("x^2 at the float -1.5", (lambda x: x * x, -1.5)),
    Case("tanh at the float32 constant 0.0", (tf.tanh, tf.constant(0.0))),
    Case("x^3 - 2x at the numpy float32 2.0", (lambda x: x ** 3 - 2.0 * x, np.float32(2.0))),
    Case("exp(-x) * x at the float 0.75", (lambda x: tf.exp(-x) * x, 0.75)),
    Case("sin(40 x) at the float 0.3 (a steep curve)", (lambda x: tf.sin(40.0 * x), 0.3)),
]


@pytest.mark.differential
@pytest.mark.covers("derivative")
def test_derivative_matches_reference():
    compare("derivative", n03, REF, DERIVATIVE_CASES, _run_derivative, atol=1e-6, rtol=1e-6,
            hint="a float32 tensor x, tape.watch(x), y = fn(x) inside the tape, tape.gradient(y, x)")


def _run_linear_model(mod, case):
    k_init, b_init, x = case.args

    def call():
        model = mod.LinearModel(k_init, b_init)
        return {"trainable variables": sorted(f"{v.name} {v.dtype.name} {v.shape}" for v in model.trainable_variables),
                "k, b": [model.k, model.b], "model(x)": model(x)}

    return eager_outputs(call)


LINEAR_MODEL_CASES = [
    Case("LinearModel(2.0, 0.5) on x = 1.5", (2.0, 0.5, 1.5)),
    Case("LinearModel(3, -1) (integer starting values) on x = [0.5, -2.0] float32", (3, -1, tf.constant([0.5, -2.0]))),
    Case("LinearModel(-0.5, 0.25) on a float32 x of shape [2, 3]", (-0.5, 0.25, tf.constant([[1.0, -2.0, 0.0], [3.0, 0.5, -1.0]]))),
]


@pytest.mark.differential
@pytest.mark.covers("LinearModel")
def test_linear_model_matches_reference():
    compare("LinearModel", n03, REF, LINEAR_MODEL_CASES, _run_linear_model,
            hint="two float32 scalar tf.Variables named k and b (dtype=tf.float32 whatever the start values), k * x + b")


def _run_square_error(mod, case):
    k, b, x, y = case.args

    def call():
        model = REF.LinearModel(k, b)  # the reference model: only square_error differs
        with tf.GradientTape() as tape:
            loss = mod.square_error(model, x, y)
        return {"loss": loss, "d/dk, d/db": tape.gradient(loss, [model.k, model.b])}

    return eager_outputs(call)


SQUARE_ERROR_CASES = [
    Case("k = 2, b = 0.5, x = 1.5, y = 1.0", (2.0, 0.5, 1.5, 1.0)),
    Case("k = -1, b = 0.25, x = 0.5, y = 3.0 (a negative residual)", (-1.0, 0.25, 0.5, 3.0)),
    Case("k = 3, b = -1, x = 0.2, y = -0.4 (an exact fit)", (3.0, -1.0, 0.2, -0.4)),
    Case("k = 0.5, b = 2, x and y float32 tf.constants -2.0 and 1.5", (0.5, 2.0, tf.constant(-2.0), tf.constant(1.5))),
]


@pytest.mark.differential
@pytest.mark.covers("square_error")
def test_square_error_matches_reference():
    compare("square_error", n03, REF, SQUARE_ERROR_CASES, _run_square_error,
            hint="tf.square(model(x) - y), a TensorFlow op the tape can differentiate")


def _run_sgd_step(mod, case):
    lr, momentum, train_b, steps = case.args

    def call():
        k = tf.Variable(1.0, name="k")
        b = tf.Variable(-2.0, name="b")
        optimizer = keras.optimizers.SGD(learning_rate=lr, momentum=momentum)
        variables = [k, b] if train_b else [k]
        losses, after = [], []
        for _ in range(steps):
            losses.append(mod.sgd_step(lambda: tf.square(3.0 * k + b - 4.0) + 0.5 * b * b, variables, optimizer))
            after.append([tf.identity(k), tf.identity(b)])
        return {"losses": losses, "k, b after each step": after}

    return eager_outputs(call)


SGD_STEP_CASES = [
    Case("one step of SGD(0.05) on [k, b] for (3k + b - 4)^2 + b^2 / 2 from k = 1, b = -2", (0.05, 0.0, True, 1)),
    Case("one step of SGD(0.05) on [k] only (b stays)", (0.05, 0.0, False, 1)),
    Case("three steps of SGD(0.02, momentum=0.9) on [k, b] (the optimizer keeps a velocity)", (0.02, 0.9, True, 3)),
]


@pytest.mark.differential
@pytest.mark.covers("sgd_step")
def test_sgd_step_matches_reference():
    compare("sgd_step", n03, REF, SGD_STEP_CASES, _run_sgd_step,
            hint="loss_fn() inside the tape, tape.gradient(loss, variables), optimizer.apply_gradients(zip(grads, "
                 "variables)), return the loss")


def _run_train(mod, case):
    return eager_outputs(lambda: mod.train_linear_regression(**case.args))


TRAIN_CASES = [
    Case("steps=1 with the defaults (learning_rate 0.5, seed 0, start 0, 0)", dict(steps=1)),
    Case("steps=3, learning_rate=0.1, seed=5, k_init=-1.0, b_init=2.0",
         dict(steps=3, learning_rate=0.1, seed=5, k_init=-1.0, b_init=2.0)),
    Case("steps=4, learning_rate=0.9, seed=2, k_init=0.5, b_init=-0.5",
         dict(steps=4, learning_rate=0.9, seed=2, k_init=0.5, b_init=-0.5)),
]


@pytest.mark.differential
@pytest.mark.covers("train_linear_regression")
def test_train_linear_regression_matches_reference():
    compare("train_linear_regression", n03, REF, TRAIN_CASES, _run_train,
            hint="LinearModel(k_init, b_init) and SGD(learning_rate) once; per step x = rng.random_sample(), then y "
                 "with rng.standard_normal(), one sgd_step; return (k, b, losses) as Python floats")


@pytest.mark.needs("k03")
@pytest.mark.training
@pytest.mark.timeout(60)
@pytest.mark.covers("train_linear_regression", "LinearModel", "square_error", "sgd_step")
def test_train_linear_regression_equals_k03():
    start, k_after, k_losses = _k03_trajectory(100, 0.5, 0)
    k, b, losses = n03.train_linear_regression(steps=100, learning_rate=0.5, seed=0, k_init=start[0], b_init=start[1])
    worst, message = _compare([(k, b)], [k_after[-1]])
    loss_diff = max(abs(a - c) for a, c in zip(losses, k_losses)) if len(losses) == 100 else math.inf
    print(f"n03 vs k03 after 100 steps from {start}: max |n - k| = {worst:.3g}, losses max |diff| = {loss_diff:.3g}")
    assert len(losses) == 100, f"expected one loss per step, got {len(losses)}"
    assert message is None, message
    assert loss_diff <= EQUIV_TOL * 10, f"the 100 losses differ from k03's by up to {loss_diff:.3g}: {MAPPING}"


@pytest.mark.training
@pytest.mark.points(3)
@pytest.mark.timeout(60)
@pytest.mark.covers("train_linear_regression", "LinearModel", "square_error", "sgd_step")
def test_train_linear_regression_learns_k3_b_minus1():
    k, b, losses = n03.train_linear_regression(steps=100, learning_rate=0.5, seed=0, k_init=0.8, b_init=0.9)
    err = max(abs(k - 3.0), abs(b + 1.0))
    print(f"k = {k:.4f}, b = {b:.4f} after 100 steps (max error {err:.4f}, tolerance {TOLERANCE})")
    assert len(losses) == 100, f"expected one loss per step, got {len(losses)}"
    assert err <= TOLERANCE, (
        f"expected k ~ 3 and b ~ -1 within {TOLERANCE}, got k = {k:.4f}, b = {b:.4f}: one sample per step, "
        "y = 3x - 1 + small noise, learning rate 0.5, 100 steps"
    )
    assert losses[-1] < losses[0] / 100, f"the loss should fall: first {losses[0]:.3g}, last {losses[-1]:.3g}"
