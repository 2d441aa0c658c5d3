"""Graded tests for n10 · TF 1 habits that break in TF 2 (extends the now track).

Each concept test puts one function in the situation where the TF 1 habit goes wrong (TensorFlow's
migration guide lists them) and names the habit in its one-line message. Eager tests: the harness
makes no graph for the "now" track; ``port_adam`` builds its own TF 1 graph to compare with
``tf.compat.v1.train.AdamOptimizer``. Measured on TF 2.12 (Keras 2) and 2.21 (Keras 3): the same trace
counts, errors and values on both. No equivalence test with k01: n10 ports no kNN function.

PYTEST_DONT_REWRITE: every assert here carries its own message, so pytest's assertion rewriting (about 2 s of
every run over all test files) would add nothing a learner reads.
"""
import re

import numpy as np
import pytest
import tensorflow as tf

from tfkata import load_kata

n10 = load_kata("n10_tf2_pitfalls")


def _is_tf_function(obj):
    return hasattr(obj, "get_concrete_function") and hasattr(obj, "experimental_get_tracing_count")


def _first_line(exc):
    """``Type: message`` in one line; for an error raised while tracing ("in user code: ... File ...") the
    message is the last line of TensorFlow's text."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [""]
    line = lines[-1] if lines[0] == "in user code:" else lines[0]
    name = type(exc).__name__
    return f"{name}: {line.removeprefix(name + ': ')[:120]}"


def _keras():
    import keras

    return keras


class _PlainSGD:
    """``var -= lr * grad``: an optimizer that creates no variable, so a step traces exactly once."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate

    def apply_gradients(self, grads_and_vars):
        for grad, var in grads_and_vars:
            var.assign_sub(self.learning_rate * grad)


def _linear_model(weights, bias):
    keras = _keras()
    model = keras.Sequential([keras.Input(shape=(len(weights),)), keras.layers.Dense(1)])
    model.layers[-1].kernel.assign(np.asarray(weights, np.float32).reshape(-1, 1))
    model.layers[-1].bias.assign(np.asarray([bias], np.float32))
    return model


def _batches(n, batch=4, dim=3, seed=0):
    rng = np.random.RandomState(seed)
    true_w = np.array([[1.5], [-2.0], [0.5]], np.float32)[:dim]
    out = []
    for _ in range(n):
        x = rng.normal(size=(batch, dim)).astype(np.float32)
        out.append((tf.constant(x), tf.constant(x @ true_w + 0.25)))
    return out


def _mse(y, pred):
    return tf.reduce_mean(tf.square(y - pred))


# --------------------------------------------------------------------------- unit tests
@pytest.mark.covers("make_logged_square")
def test_logged_square_logs_every_call(tmp_path):
    log_path = str(tmp_path / "square.log")
    square = n10.make_logged_square(log_path)
    assert _is_tf_function(square), f"make_logged_square should return a tf.function, got {type(square).__name__}"
    results = [float(square(tf.constant(v)).numpy()) for v in (1.0, 2.0, 3.0)]
    assert results == [1.0, 4.0, 9.0], f"make_logged_square: square(x) should return x * x, got {results} for 1, 2, 3"
    lines = (tmp_path / "square.log").read_text().splitlines() if (tmp_path / "square.log").exists() else []
    assert lines, (
        "make_logged_square: 3 calls wrote nothing to the log file: log with tf.print(..., output_stream='file://' + "
        "log_path) (without output_stream tf.print writes to stderr; a Python print runs only once per trace)"
    )
    assert len(lines) == 3, (
        f"make_logged_square: 3 calls with float32 scalars wrote {len(lines)} line(s) to the log {lines}: Python "
        "code in a tf.function (print, open(...).write, list.append) runs once per trace, not per call; log with tf.print(..., output_stream='file://' + log_path)"
    )
    for value, line in zip((1, 2, 3), lines):
        assert line == f"square {value}", (
            f"make_logged_square: the log line for x = {value} is {line!r}, expected 'square {value}': "
            "tf.print('square', x, ...) prints the label and the tensor's value at run time"
        )


@pytest.mark.covers("make_counter_step")
def test_counter_variable_made_once_outside_the_function():
    counter, step = n10.make_counter_step()
    assert _is_tf_function(step), f"make_counter_step: step should be a tf.function, got {type(step).__name__}"
    try:
        values = [int(step()) for _ in range(3)]
    except ValueError as exc:
        pytest.fail(
            f"make_counter_step: step() raised {_first_line(exc)}: a tf.Variable created inside the tf.function "
            "is the TF 1 habit; create it once, outside the tf.function, and close over it", pytrace=False)
    assert isinstance(counter, tf.Variable) and counter.dtype == tf.int64, (
        f"make_counter_step: counter should be an int64 tf.Variable, got {type(counter).__name__} "
        f"{getattr(counter, 'dtype', '')}"
    )
    if values == [0, 1, 2] and int(counter.numpy()) == 3:
        pytest.fail("make_counter_step: three calls returned [0, 1, 2] (one behind) and left the counter at 3, expected "
                    "1, 2, 3: step() must return the counter's value after the increment: return "
                    "counter.assign_add(1) (it gives the new value), not a value read before it", pytrace=False)
    if values and values == [values[0] + k for k in range(3)] and values[0] != 1 and int(counter.numpy()) == values[-1]:
        pytest.fail(f"make_counter_step: three calls returned {values}: each adds 1, but the counter starts at "
                    f"{values[0] - 1}, not 0: create it as tf.Variable(0, dtype=tf.int64)", pytrace=False)
    assert values == [1, 2, 3] and int(counter.numpy()) == 3, (
        f"make_counter_step: three calls returned {values} and left the counter at {int(counter.numpy())}, "
        "expected 1, 2, 3 and 3: only TensorFlow ops run on every call (Python code runs once per trace, a new "
        "variable starts again at 0); make ONE tf.Variable outside the tf.function and assign_add(1) to it"
    )
    again, step_again = n10.make_counter_step()
    first = int(step_again())
    assert first == 1 and int(counter.numpy()) == 3, (
        f"make_counter_step: a second make_counter_step() gave a step whose first call returned {first} (the first "
        f"counter is now at {int(counter.numpy())}): each call makes a counter of its own that starts at 0, a new "
        "tf.Variable inside make_counter_step, not one kept in a module-level global"
    )


@pytest.mark.covers("train_steps")
def test_train_steps_traces_one_step():
    model = _linear_model([0.1, -0.2, 0.3], 0.0)
    calls, graphs = [], []

    def loss_fn(y, pred):
        calls.append(tf.executing_eagerly())  # the body of a tf.function runs once per trace
        graph = tf.compat.v1.get_default_graph()  # the trace's FuncGraph (kept: no id is reused)
        graphs.extend([] if any(graph is g for g in graphs) else [graph])
        return _mse(y, pred)

    batches = _batches(5)
    losses = n10.train_steps(model, loss_fn, _PlainSGD(0.1), batches)
    assert isinstance(losses, list) and len(losses) == 5 and all(isinstance(v, float) for v in losses), (
        f"train_steps should return a list of 5 Python floats for 5 batches, got {losses!r}"
    )
    assert not any(calls), (
        f"train_steps: the loss ran eagerly on {sum(calls)} of {len(calls)} calls: make the step a tf.function"
    )
    assert not (len(graphs) == 1 and len(calls) > 1), (
        f"train_steps: the step traced once but computed the loss {len(calls)} times in it: compute it once, under "
        "the tape, and return that loss (the one the gradients came from, before apply_gradients)"
    )
    assert len(calls) == 1, (
        f"train_steps: 5 batches of the same shape traced the step {len(calls)} times: a tf.function built "
        "inside the loop traces again every step (the TF 1 habit of building ops per step); build it once, "
        "before the loop"
    )
    assert losses[-1] < losses[0], (
        f"train_steps: the loss did not go down ({losses[0]:.4f} -> {losses[-1]:.4f}): apply the gradients "
        "of the loss to model.trainable_variables with optimizer.apply_gradients"
    )


def _scaled_linear_model(weights, bias):
    """``x @ (kernel * scale) + bias``, then an identity Dense(1) without bias: ``scale`` (a [1, 1] one) is
    NON-trainable, so model.variables is [kernel, bias, scale, dense kernel] (layer by layer, Keras 2 and 3)
    while model.trainable_variables has no scale: zipping the gradients with the first gives the dense
    kernel's gradient to scale (same shape: no error, a silent wrong step)."""
    keras = _keras()

    class ScaledLinear(keras.layers.Layer):
        def build(self, input_shape):
            d = int(input_shape[-1])
            self.scale = self.add_weight(name="scale", shape=(1, 1), initializer="ones", trainable=False)
            self.kernel = self.add_weight(name="kernel", shape=(d, 1), initializer="zeros")
            self.bias = self.add_weight(name="bias", shape=(1,), initializer="zeros")

        def call(self, x):
            return tf.matmul(x, self.kernel * self.scale) + self.bias

    model = keras.Sequential([keras.Input(shape=(len(weights),)), ScaledLinear(), keras.layers.Dense(1, use_bias=False)])
    layer, out = model.layers[0], model.layers[1]
    out.kernel.assign(np.ones((1, 1), np.float32))
    layer.kernel.assign(np.asarray(weights, np.float32).reshape(-1, 1))
    layer.bias.assign(np.asarray([bias], np.float32))
    return model, layer


def _pinball(y, pred):
    """Asymmetric: an over-estimate costs 3 times an under-estimate, so loss_fn(pred, y) != loss_fn(y, pred)."""
    return tf.reduce_mean(3.0 * tf.nn.relu(pred - y) + tf.nn.relu(y - pred))


@pytest.mark.covers("train_steps")
def test_train_steps_takes_y_first_and_steps_only_trainable_variables():
    weights, bias = [0.9, 0.4, -0.7], 0.6
    model, layer = _scaled_linear_model(weights, bias)
    batches = _batches(3)
    x0, y0 = (b.numpy() for b in batches[0])
    pred0 = x0 @ np.asarray(weights, np.float32).reshape(-1, 1) + bias
    first = float(np.mean(3.0 * np.maximum(pred0 - y0, 0) + np.maximum(y0 - pred0, 0)))
    swapped = float(np.mean(3.0 * np.maximum(y0 - pred0, 0) + np.maximum(pred0 - y0, 0)))
    assert abs(swapped - first) > 0.05, "test self-check: the two argument orders must differ"
    before = [v.numpy().copy() for v in model.trainable_variables]
    try:
        losses = n10.train_steps(model, _pinball, _PlainSGD(0.05), batches)
    except (ValueError, TypeError, AttributeError) as exc:
        if "none" not in str(exc).lower():
            raise
        pytest.fail(f"train_steps: a gradient came back None ({_first_line(exc)[:100]}): the model has a non-trainable "
                    "variable (scale), whose gradient the tape gives as None; take and apply the gradients of "
                    "model.trainable_variables, not model.variables", pytrace=False)
    assert isinstance(losses, list) and len(losses) == 3, f"train_steps should return 3 losses for 3 batches, got {losses!r}"
    untouched = all(np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))
    if untouched and abs(losses[0] - first) >= 1e-4:
        pytest.fail(f"train_steps: the model it was given did not change, and the first loss ({losses[0]:.5f}) is not "
                    f"that model's ({first:.5f}): it trained another model: is a step from an earlier call (kept in a "
                    "module-level global) reused? Make the tf.function inside train_steps, for the model given",
                    pytrace=False)
    flat = pred0.reshape(-1)  # a [B] prediction against y [B, 1] broadcasts to [B, B]
    broadcast = float(np.mean(3.0 * np.maximum(flat[None, :] - y0, 0) + np.maximum(y0 - flat[None, :], 0)))
    assert abs(losses[0] - first) < 1e-4, (
        f"train_steps: the first loss should be loss_fn(y, model(x)) = {first:.5f}, got {losses[0]:.5f}"
        + (" = loss_fn(model(x), y): y comes first, the prediction second (as every Keras loss takes "
           "(y_true, y_pred)); this test's loss is not symmetric" if abs(losses[0] - swapped) < 1e-4 else
           f" = the loss of a [B] prediction against y [B, 1], broadcast to [B, B] pairs: pass model(x) as it is "
           "([B, 1], like y), no squeeze or reshape" if abs(losses[0] - broadcast) < 1e-4 else "")
    )
    scale = layer.scale.numpy()
    assert np.array_equal(scale, np.ones_like(scale)), (
        f"train_steps changed the non-trainable variable scale (ones -> {[round(float(v), 4) for v in scale.ravel()]}): apply the "
        "gradients to model.trainable_variables, the list you took them of (model.variables also holds the "
        "non-trainable ones, so zip pairs each gradient with the wrong variable)"
    )


@pytest.mark.covers("train_steps")
def test_train_steps_steps_on_each_batch_in_turn():
    weights, bias = [0.3, -0.6, 0.8], -0.1
    batches = _batches(4, seed=3)
    w = np.asarray(weights, np.float32).reshape(-1, 1)
    want = [float(np.mean((y.numpy() - (x.numpy() @ w + bias)) ** 2)) for x, y in batches]
    assert len({round(v, 3) for v in want}) == 4, "test self-check: the four batches must give four different losses"
    losses = n10.train_steps(_linear_model(weights, bias), _mse, _PlainSGD(0.0), batches)
    assert isinstance(losses, list) and len(losses) == 4, f"train_steps should return 4 losses for 4 batches, got {losses!r}"
    if not np.allclose(losses, want, rtol=1e-4, atol=1e-5):
        same = [i for i, (x, y) in enumerate(batches) if np.allclose(losses, want[i], rtol=1e-4, atol=1e-5)]
        why = (f": every step saw batch {same[0]} — pass each batch's x and y into the step as arguments, "
               "step(x, y) for x, y in batches (a tf.function that closes over a batch keeps that batch)" if same else
               ": step i computes loss_fn(y, model(x)) on batch i, in the order given")
        pytest.fail(f"train_steps: with a learning rate of 0 the losses should be each batch's own loss "
                    f"{[round(v, 4) for v in want]}, got {[round(float(v), 4) for v in losses]}{why}", pytrace=False)


@pytest.mark.covers("train_steps")
def test_train_steps_on_a_model_not_built_yet():
    keras = _keras()
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.layers.Dense(1)])  # no Input: its weights appear at its first call
    problem = None
    try:
        losses = n10.train_steps(model, _mse, _PlainSGD(0.1), _batches(1, batch=8, seed=5) * 6)  # one batch, 6 steps
    except (ValueError, TypeError, AttributeError) as exc:
        problem = f"it raised {type(exc).__name__}: {str(exc).strip().splitlines()[0][:100]}"
    else:
        print(f"train_steps on an unbuilt model: losses {losses}")
        if not (isinstance(losses, list) and len(losses) == 6 and losses[-1] < 0.5 * losses[0]):
            problem = f"the losses {losses!r} did not fall: nothing was trained"
    if problem:
        pytest.fail("train_steps on a keras.Sequential not built yet (its weights appear at its first call): "
                    f"{problem}: read model.trainable_variables inside the step, after model(x) ran, not before "
                    "the first call", pytrace=False)


@pytest.mark.covers("make_maybe_update")
def test_maybe_update_runs_only_the_chosen_update():
    v = tf.Variable([1.0, 2.0])
    maybe_update = n10.make_maybe_update(v)
    assert _is_tf_function(maybe_update), (
        f"make_maybe_update should return a tf.function, got {type(maybe_update).__name__}"
    )
    delta = tf.constant([10.0, 20.0])
    got = maybe_update(delta, tf.constant(False)).numpy().tolist()
    after = v.numpy().tolist()
    assert after == [1.0, 2.0], (
        f"make_maybe_update: with apply=False v went from [1.0, 2.0] to {after}: a tf.function prunes nothing "
        "(the TF 1 habit of an update that runs only when fetched), every assign in its body runs; put "
        "v.assign_add(delta) inside the `if apply:` branch"
    )
    assert got == [1.0, 2.0], f"make_maybe_update: with apply=False it should return v unchanged, got {got}"
    got = maybe_update(delta, tf.constant(True)).numpy().tolist()
    assert v.numpy().tolist() == [11.0, 22.0] and got == [11.0, 22.0], (
        f"make_maybe_update: with apply=True v should become [11.0, 22.0] and be returned, got v = "
        f"{v.numpy().tolist()}, returned {got}: "
        + ("v became delta itself: add it, v.assign_add(delta), not v.assign(delta)" if v.numpy().tolist() == [10.0, 20.0]
           else "add delta when apply is True and return v's value after")
    )
    # A delta that is not finite, not applied: an assign that runs anyway (adding delta * 0, or delta masked by
    # tf.where after the add) shows, since inf * 0 is nan.
    w = tf.Variable([1.0, 2.0])
    guarded = n10.make_maybe_update(w)
    guarded(tf.constant([np.inf, 0.0]), tf.constant(False))
    assert w.numpy().tolist() == [1.0, 2.0], (
        f"make_maybe_update: with apply=False and delta [inf, 0.0], v went from [1.0, 2.0] to {w.numpy().tolist()}: "
        "the assign ran although apply was False (adding delta * 0 still runs it, and inf * 0 is nan): put "
        "v.assign_add(delta) inside the `if apply:` branch, so it runs only when applied"
    )


def _regularized_model():
    keras = _keras()
    inner = keras.Sequential([keras.Input(shape=(4,)),
                              keras.layers.Dense(2, kernel_regularizer=keras.regularizers.l2(0.01),
                                                 bias_regularizer=keras.regularizers.l1(0.5), name="inner_dense")],
                             name="inner")
    model = keras.Sequential([keras.Input(shape=(3,)),
                              keras.layers.Dense(4, kernel_regularizer=keras.regularizers.l2(0.1), name="first"),
                              inner])
    rng = np.random.RandomState(1)
    for var in model.weights:
        var.assign(rng.uniform(-1.0, 1.0, size=var.shape).astype(np.float32))
    first, dense = model.get_layer("first"), inner.get_layer("inner_dense")
    expected = (0.1 * np.sum(np.square(first.kernel.numpy())) + 0.01 * np.sum(np.square(dense.kernel.numpy()))
                + 0.5 * np.sum(np.abs(dense.bias.numpy())))
    return model, float(expected)


@pytest.mark.covers("regularization_loss")
def test_regularization_loss_sums_model_losses():
    model, expected = _regularized_model()
    got = n10.regularization_loss(model)
    assert isinstance(got, tf.Tensor) and got.dtype == tf.float32 and got.shape == [], (
        f"regularization_loss: expected a float32 scalar TENSOR, got {type(got).__name__} {got!r:.80}: return "
        "tf.add_n(model.losses) as it is (float() or .numpy() of it leaves TensorFlow, and gradients with it)"
    )
    value = float(np.asarray(got))
    assert value != 0.0, (
        f"regularization_loss: got 0.0 for a model with L2 on two kernels and L1 on a bias (expected {expected:.5f}): "
        "TF 2 keeps no collections, get_collection(REGULARIZATION_LOSSES) is empty eagerly; sum model.losses"
    )
    assert abs(value - expected) <= 1e-5 * max(1.0, abs(expected)), (
        f"regularization_loss: got {value:.5f}, expected {expected:.5f} (0.1*sum(W1**2) + 0.01*sum(W2**2) + "
        "0.5*sum|b2|, the second layer inside a nested model): "
        + (f"that is the mean of the {len(model.losses)} penalties; add them up, tf.add_n(model.losses)"
           if model.losses and abs(value - expected / len(model.losses)) <= 1e-5 * max(1.0, abs(expected)) else
           "sum every entry of model.losses, nested layers included")
    )


@pytest.mark.covers("regularization_loss")
def test_regularization_loss_without_regularizers_is_zero():
    model = _linear_model([1.0, 2.0], 0.5)
    try:
        got = n10.regularization_loss(model)
    except (ValueError, TypeError, IndexError) as exc:
        pytest.fail(f"regularization_loss: a model without regularizers raised {_first_line(exc)}: model.losses is "
                    "empty then and tf.add_n needs at least one tensor; return tf.constant(0.0)", pytrace=False)
    assert isinstance(got, tf.Tensor), (
        f"regularization_loss: a model without regularizers should give the float32 scalar TENSOR 0.0, got the "
        f"{type(got).__name__} {got!r}: return tf.constant(0.0), so the caller gets one type either way"
    )
    assert got.dtype == tf.float32 and got.shape == [] and float(got) == 0.0, (
        f"regularization_loss: a model without regularizers should give the float32 scalar 0.0, got {got!r}"
    )


@pytest.mark.covers("unique_tensors")
def test_unique_tensors_keys_by_reference():
    a, b = tf.constant([1.0, 2.0]), tf.constant([1.0, 2.0])  # equal values, two tensors
    c, d = tf.constant(5.0), tf.constant(5.0)
    v = tf.Variable(3.0)
    try:
        got = n10.unique_tensors([a, b, c, a, v, d, b, v, c])
    except TypeError as exc:
        pytest.fail(f"unique_tensors raised {_first_line(exc)}: TF 2 tensors are unhashable (no set, no dict key); "
                    "key by t.ref()", pytrace=False)
    except ValueError as exc:
        pytest.fail(f"unique_tensors raised {_first_line(exc)}: `t in a_list` compares tensors with ==, element by "
                    "element; key by t.ref() instead", pytrace=False)
    names = {id(a): "a", id(b): "b", id(c): "c", id(d): "d", id(v): "v"}
    kept = [names.get(id(t), repr(t)) for t in got]
    assert kept == ["a", "b", "c", "v", "d"], (
        f"unique_tensors([a, b, c, a, v, d, b, v, c]) kept {kept}, expected ['a', 'b', 'c', 'v', 'd'] (a == b and "
        "c == d in value, but they are different tensors): dedupe by t.ref(), the object, in first-seen order, "
        "and return the tensors themselves"
    )


@pytest.mark.covers("static_dims")
def test_static_dims_are_plain_ints():
    try:
        got = n10.static_dims(tf.TensorShape([2, None, 3]))
    except AttributeError as exc:
        pytest.fail(f"static_dims raised {_first_line(exc)}: TF 1's Dimension.value is gone, in TF 2 a dimension is "
                    "already an int (or None): shape.as_list()", pytrace=False)
    assert got == [2, None, 3] and all(d is None or type(d) is int for d in got), (
        f"static_dims(TensorShape([2, None, 3])) should be [2, None, 3] with Python ints, got {got!r}"
        + (f": a {type(got).__name__}, not a list; return a list, shape.as_list()" if isinstance(got, (tuple, tf.TensorShape))
           and list(got) == [2, None, 3] else "")
    )
    assert n10.static_dims(tf.TensorShape([])) == [], "static_dims of a scalar's shape should be []"
    empty = n10.static_dims(tf.TensorShape([0, 3]))
    assert empty == [0, 3], (
        f"static_dims(TensorShape([0, 3])) should be [0, 3], got {empty!r}: a dimension of 0 is known (an empty axis), "
        "only None is unknown: keep 0 as 0 (test `d is None`, never `d or None`), e.g. return shape.as_list()"
    )
    try:
        unknown = n10.static_dims(tf.TensorShape(None))
    except ValueError as exc:
        pytest.fail(f"static_dims(TensorShape(None)) raised {_first_line(exc)}: for an unknown rank (shape.rank is "
                    "None) return None instead of calling as_list()", pytrace=False)
    assert unknown is None, f"static_dims of an unknown rank should be None, got {unknown!r}"


@pytest.mark.covers("gradient_of")
def test_gradient_of_uses_a_tape():
    x = tf.constant([1.0, -2.0, 0.5])
    try:
        grad = n10.gradient_of(lambda t: tf.reduce_sum(t ** 3), x)
    except RuntimeError as exc:
        pytest.fail(f"gradient_of raised {_first_line(exc)}: tf.gradients works only while building a TF 1 graph; "
                    "record f(x) on a tf.GradientTape", pytrace=False)
    assert grad is not None, (
        "gradient_of returned None: a tape follows variables on its own, not a constant x; call tape.watch(x)"
    )
    assert isinstance(grad, tf.Tensor) and grad.dtype == x.dtype, (
        f"gradient_of: expected a tf.Tensor of x's dtype (float32), got {type(grad).__name__}"
        f"{' ' + str(getattr(grad, 'dtype', '')) if hasattr(grad, 'dtype') else ''}: "
        + ("return tape.gradient(y, x) as it is, in x's dtype: no cast" if isinstance(grad, tf.Tensor) else
           "return tape.gradient(y, x) as it is, not its .numpy()")
    )
    got = np.asarray(grad)
    expected = 3 * np.square(x.numpy())
    assert got.shape == (3,) and np.allclose(got, expected, atol=1e-6), (
        f"gradient_of(sum(x**3)) at x = [1, -2, 0.5] should be 3x**2 = {expected.tolist()}, got {got.tolist()}"
        + (": all zeros, the tape recorded nothing that links f(x) to x: call f(x) inside the `with "
           "tf.GradientTape() as tape:` block, after tape.watch(x)" if got.shape == (3,) and not got.any() else "")
    )


def _tf1_adam_steps(w0, grads):
    """Variable values after each step of tf.compat.v1.train.AdamOptimizer() (its defaults) in a TF 1 graph."""
    with tf.Graph().as_default():
        var = tf.compat.v1.Variable(w0)
        grad = tf.compat.v1.placeholder(tf.float32, w0.shape)
        train = tf.compat.v1.train.AdamOptimizer().apply_gradients([(grad, var)])
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            out = []
            for g in grads:
                sess.run(train, {grad: g})
                out.append(sess.run(var))
    return np.stack(out)


def _keras_adam_steps(optimizer, w0, grads):
    var = tf.Variable(w0)
    out = []
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g), var)])
        out.append(var.numpy())
    return np.stack(out)


ADAM_GRADS = np.array([[1e-6, -3e-6, 1.0, -0.5], [2e-6, -1e-6, 0.5, -0.5], [1e-6, 4e-6, -1.0, 0.25]], np.float32)


TF1_ADAM_DEFAULTS = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}


def _num(value):
    """0.001, 0.999, 1e-8: a float as one writes it (no '1e-08')."""
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + m.group(1).replace("+", "") + m.group(2), f"{value:g}")


def _adam_settings_that_differ(optimizer):
    """'beta_2 is 0.99 (set beta_2=0.999)' for each Adam setting in the optimizer's config that differs from
    TF 1's AdamOptimizer defaults; '' when they all agree or the config cannot be read."""
    try:
        config = optimizer.get_config()
    except Exception:
        return ""
    wrong = []
    for key, want in TF1_ADAM_DEFAULTS.items():
        try:
            value = float(config[key])
        except (KeyError, TypeError, ValueError):
            continue
        if abs(value - want) > 1e-6 * want:
            wrong.append(f"{key} is {_num(value)} (set {key}={_num(want)})")
    return ", ".join(wrong)


ADAM_EXTRAS_OFF = {"amsgrad": False, "weight_decay": None, "clipnorm": None, "clipvalue": None, "global_clipnorm": None,
                   "use_ema": False}


@pytest.mark.covers("port_adam")
def test_port_adam_is_a_plain_keras_adam():
    optimizer = n10.port_adam()
    kind = type(optimizer)
    assert kind.__name__ == "Adam" and kind.__module__.split(".")[0] in ("keras", "tf_keras"), (
        f"port_adam should return a Keras Adam (keras.optimizers.Adam(...)), got {kind.__module__}.{kind.__name__}: "
        "the TF 1 optimizer is what is being ported, not the answer")
    try:
        config = optimizer.get_config()
    except Exception:  # noqa: BLE001 - a config that cannot be read is told by the steps test
        return
    extras = [f"{key}={config[key]!r}" for key, off in ADAM_EXTRAS_OFF.items()
              if key in config and config[key] != off and not (key == "weight_decay" and not config[key])]
    assert not extras, (
        f"port_adam: the Keras Adam has {', '.join(extras)}: TF 1's AdamOptimizer has no AMSGrad, weight decay, "
        "clipping or moving average, so leave those at Keras' defaults (off); set only learning_rate, the betas and "
        "epsilon (they may show only on some gradients or weights, not on the few steps a test takes)")


@pytest.mark.covers("port_adam")
def test_port_adam_steps_like_tf1_adam():
    w0 = np.zeros(4, np.float32)
    expected = _tf1_adam_steps(w0, ADAM_GRADS)
    got = _keras_adam_steps(n10.port_adam(), w0, ADAM_GRADS)
    diff = float(np.max(np.abs(got - expected)))
    if diff > 1e-7:
        wrong = _adam_settings_that_differ(n10.port_adam())
        if wrong:
            pytest.fail(f"port_adam: the Keras Adam steps differ from tf.compat.v1.train.AdamOptimizer()'s by {diff:.2e}: "
                        f"{wrong}; TF 1's defaults are learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8",
                        pytrace=False)
    assert diff <= 1e-7, (
        f"port_adam: after 3 steps on gradients of 1e-6 to 1 the Keras variable differs from "
        f"tf.compat.v1.train.AdamOptimizer()'s by {diff:.2e} (Keras {got[0].tolist()} vs TF 1 {expected[0].tolist()} "
        "after step 1): the TF 1 defaults are learning_rate=0.001 and epsilon=1e-8, Keras' epsilon is 1e-7"
    )


@pytest.mark.covers("make_reader")
def test_reader_keeps_one_iterator():
    read = n10.make_reader(tf.data.Dataset.range(10, 15))
    assert _is_tf_function(read), f"make_reader should return a tf.function, got {type(read).__name__}"
    got = [int(read()) for _ in range(3)]
    if got != [10, 11, 12] and len(set(got)) == 3 and set(got) <= set(range(10, 15)):
        pytest.fail(f"make_reader: three calls read {got} from range(10, 15), three different elements but not "
                    "[10, 11, 12]: read the dataset as it is given, in its order (no shuffle, no reordering)",
                    pytrace=False)
    assert got == [10, 11, 12], (
        f"make_reader: three calls read {got} from range(10, 15), expected [10, 11, 12]: iter(dataset) inside the "
        "tf.function makes a new iterator on every call; make one iterator outside and call next on it"
    )
    other = n10.make_reader(tf.data.Dataset.range(20, 23))
    try:
        second = int(other())
    except (tf.errors.OutOfRangeError, StopIteration):
        second = "OutOfRangeError (an iterator already at its end)"
    assert second == 20, (
        f"make_reader: a second make_reader(range(20, 23)) read {second} on its first call, expected 20: it kept "
        "the iterator of the first dataset: make the iterator in make_reader on each call (iter(dataset) of the "
        "dataset it is given), not once in a module-level global"
    )


@pytest.mark.covers("make_reader")
def test_reader_ends_where_the_dataset_ends():
    read = n10.make_reader(tf.data.Dataset.range(10, 13))
    got = [int(read()) for _ in range(3)]
    try:
        extra = int(read())
    except (tf.errors.OutOfRangeError, StopIteration):
        extra = None
    assert extra is None, (
        f"make_reader: range(10, 13) read {got}, then a 4th call gave {extra}: the dataset has 3 elements, so the "
        "4th call must fail (tf.errors.OutOfRangeError), as next on its iterator does: read the dataset as given, "
        "no repeat()"
    )


# --------------------------------------------------------------------------- differential checks (reference)
# The learner's function against solutions/ on generated cases, smallest first (tfkata.differential).
# Every n10 function has a determined result; what is compared is what its docstring promises: values,
# dtypes, trace counts, log lines, which objects are kept.
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from tfkata.differential import Case, compare, eager_outputs, reference  # noqa: E402


def _dtype(t):
    return tf.as_dtype(tf.convert_to_tensor(t).dtype).name


def _run_logged_square(mod, case):
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "square.log"
        square = mod.make_logged_square(str(log))
        results = [square(tf.constant(v, dtype=dtype)) for v, dtype in case.args]
        lines = log.read_text().splitlines() if log.exists() else []
    return {"results": eager_outputs(lambda: results, keras=False), "dtypes": [_dtype(r) for r in results],
            "log lines": lines}


LOGGED_SQUARE_CASES = [
    Case("one call with the float32 scalar 3.0", [(3.0, tf.float32)]),
    Case("float32 scalars 1.0, -2.5, 1.0 (the same signature three times)",
         [(1.0, tf.float32), (-2.5, tf.float32), (1.0, tf.float32)]),
    Case("a float32 scalar, then a float32 vector [1.5, -2.0, 0.0], then a float64 scalar",
         [(2.0, tf.float32), ([1.5, -2.0, 0.0], tf.float32), (-0.5, tf.float64)]),
]


@pytest.mark.differential
@pytest.mark.covers("make_logged_square")
def test_make_logged_square_matches_reference():
    compare("make_logged_square", n10, reference("n10"), LOGGED_SQUARE_CASES, _run_logged_square,
            hint="tf.print('square', x, output_stream='file://' + log_path) inside the tf.function; return x * x")


def _run_counter(mod, case):
    counter, step = mod.make_counter_step()
    values = [step() for _ in range(case.args)]
    return {"returned": eager_outputs(lambda: values, keras=False), "dtypes": [_dtype(v) for v in values],
            "counter": counter.numpy(), "counter dtype": counter.dtype.name}


COUNTER_CASES = [Case("one call", 1), Case("four calls", 4)]


@pytest.mark.differential
@pytest.mark.covers("make_counter_step")
def test_make_counter_step_matches_reference():
    compare("make_counter_step", n10, reference("n10"), COUNTER_CASES, _run_counter,
            hint="counter = tf.Variable(0, dtype=tf.int64) outside; the tf.function returns counter.assign_add(1)")


def _run_train_steps(mod, case):
    weights, bias, n, batch, lr, use_keras = case.args
    model = _linear_model(weights, bias)
    optimizer = _keras().optimizers.SGD(lr) if use_keras else _PlainSGD(lr)
    losses = mod.train_steps(model, _mse, optimizer, _batches(n, batch=batch, dim=len(weights)))
    return {"losses": list(losses), "types": [type(v).__name__ for v in losses],
            "weights after": [v.numpy() for v in model.trainable_variables]}


TRAIN_STEPS_CASES = [
    Case("one batch of 1 row, D = 2, plain SGD 0.1", ([0.5, -0.5], 0.0, 1, 1, 0.1, False)),
    Case("3 batches of 4 rows, D = 3, negative weights, plain SGD 0.05", ([-0.3, 0.2, -1.0], 0.5, 3, 4, 0.05, False)),
    Case("2 batches of 5 rows, D = 3, keras.optimizers.SGD(0.1)", ([0.1, 0.1, 0.1], -0.2, 2, 5, 0.1, True)),
]


@pytest.mark.differential
@pytest.mark.covers("train_steps")
def test_train_steps_matches_reference():
    compare("train_steps", n10, reference("n10"), TRAIN_STEPS_CASES, _run_train_steps,
            hint="one @tf.function step: loss = loss_fn(y, model(x)) on a tape, apply its gradients; float(loss) per batch")


def _run_maybe_update(mod, case):
    start, calls = case.args
    v = tf.Variable(np.asarray(start, np.float32))
    maybe_update = mod.make_maybe_update(v)
    returned, after = [], []
    for delta, apply in calls:
        returned.append(maybe_update(tf.constant(delta, tf.float32), tf.constant(apply)).numpy())
        after.append(v.numpy())
    return {"returned": returned, "v after each call": after}


MAYBE_UPDATE_CASES = [
    Case("v = 1.0, one call with apply=False", (1.0, [(5.0, False)])),
    Case("v = [1, -2], apply True, False, True with negative deltas",
         ([1.0, -2.0], [([-0.5, 3.0], True), ([100.0, 100.0], False), ([-3.0, 2.0], True)])),
    Case("v of shape [2, 3], apply False then True",
         ([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [([[1.0] * 3] * 2, False), ([[-1.0, 0.0, 1.0], [2.0, -2.0, 0.5]], True)])),
]


@pytest.mark.differential
@pytest.mark.covers("make_maybe_update")
def test_make_maybe_update_matches_reference():
    compare("make_maybe_update", n10, reference("n10"), MAYBE_UPDATE_CASES, _run_maybe_update,
            hint="`if apply: v.assign_add(delta)` inside the tf.function, then return v.read_value()")


def _run_regularization(mod, case):
    if case.args == "nested":
        model, _ = _regularized_model()
    else:
        keras = _keras()
        layers = [keras.layers.Dense(units, kernel_regularizer=keras.regularizers.l2(0.1) if reg == "l2" else None)
                  for units, reg in case.args]
        model = keras.Sequential([keras.Input(shape=(3,))] + layers)
        rng = np.random.RandomState(2)
        for var in model.weights:
            var.assign(rng.uniform(-1.0, 1.0, size=var.shape).astype(np.float32))
    got = mod.regularization_loss(model)
    return {"loss": eager_outputs(lambda: got, keras=False), "dtype": _dtype(got)}


REGULARIZATION_CASES = [
    Case("one Dense(2) without a regularizer", [(2, None)]),
    Case("Dense(4) with L2 0.1, then Dense(2) without", [(4, "l2")]),
    Case("three Dense layers, L2 0.1 on the first and the last", [(4, "l2"), (3, None), (2, "l2")]),
    Case("L2 on two kernels and L1 on a bias, the second layer inside a nested model", "nested"),
]


@pytest.mark.differential
@pytest.mark.covers("regularization_loss")
def test_regularization_loss_matches_reference():
    compare("regularization_loss", n10, reference("n10"), REGULARIZATION_CASES, _run_regularization,
            hint="the float32 sum of every entry of model.losses (nested layers included), tf.constant(0.0) when empty")


def _run_unique(mod, case):
    pool = {"a": tf.constant([1.0, 2.0]), "b": tf.constant([1.0, 2.0]), "c": tf.constant(5.0),
            "d": tf.constant(5.0), "i": tf.constant([[1, 2], [3, 4]]), "v": tf.Variable(3.0), "w": tf.Variable(3.0)}
    names = {id(t): name for name, t in pool.items()}
    got = mod.unique_tensors([pool[name] for name in case.args])
    return {"kept": [names.get(id(t), f"a new object ({type(t).__name__})") for t in got], "type": type(got).__name__}


UNIQUE_CASES = [
    Case("an empty list", []),
    Case("one tensor [a]", ["a"]),
    Case("[a, b, a] where a and b hold equal values", ["a", "b", "a"]),
    Case("[v, c, w, d, v, i, c, i] with equal-valued scalars and variables", ["v", "c", "w", "d", "v", "i", "c", "i"]),
]


@pytest.mark.differential
@pytest.mark.covers("unique_tensors")
def test_unique_tensors_matches_reference():
    compare("unique_tensors", n10, reference("n10"), UNIQUE_CASES, _run_unique,
            hint="keep a set of t.ref() seen; append each tensor itself the first time its ref is seen; return a list")


def _run_static_dims(mod, case):
    got = mod.static_dims(tf.TensorShape(case.args))
    return {"dims": repr(got), "types": None if got is None else [type(d).__name__ for d in got]}


STATIC_DIMS_CASES = [
    Case("TensorShape([]) of a scalar", []),
    Case("TensorShape([None])", [None]),
    Case("TensorShape([2, None, 3])", [2, None, 3]),
    Case("TensorShape([1, 4, 5, 6])", [1, 4, 5, 6]),
    Case("TensorShape(None), an unknown rank", None),
]


@pytest.mark.differential
@pytest.mark.covers("static_dims")
def test_static_dims_matches_reference():
    compare("static_dims", n10, reference("n10"), STATIC_DIMS_CASES, _run_static_dims,
            hint="None when shape.rank is None, else shape.as_list(): Python ints and None")


GRADIENT_FUNCTIONS = {
    "x ** 2": lambda x: x ** 2,
    "sum(x ** 3)": lambda x: tf.reduce_sum(x ** 3),
    "sum(sin(x) * x)": lambda x: tf.reduce_sum(tf.sin(x) * x),
    "sum(x @ x.T)": lambda x: tf.reduce_sum(tf.matmul(x, x, transpose_b=True)),
}


def _run_gradient(mod, case):
    name, x = case.args
    grad = mod.gradient_of(GRADIENT_FUNCTIONS[name], tf.constant(x, tf.float32))
    return {"gradient": None if grad is None else np.asarray(grad), "dtype": None if grad is None else _dtype(grad)}


GRADIENT_CASES = [
    Case("f = x ** 2 at the scalar x = 3", ("x ** 2", 3.0)),
    Case("f = sum(x ** 3) at x = [1, -2, 0.5]", ("sum(x ** 3)", [1.0, -2.0, 0.5])),
    Case("f = sum(sin(x) * x) at x of shape [2, 3]", ("sum(sin(x) * x)", [[0.0, 1.0, -1.0], [2.0, -0.5, 3.0]])),
    Case("f = sum(x @ x.T) at x of shape [3, 2]", ("sum(x @ x.T)", [[1.0, -1.0], [0.5, 2.0], [-3.0, 0.0]])),
]


@pytest.mark.differential
@pytest.mark.covers("gradient_of")
def test_gradient_of_matches_reference():
    compare("gradient_of", n10, reference("n10"), GRADIENT_CASES, _run_gradient,
            hint="with tf.GradientTape() as tape: tape.watch(x); y = f(x); return tape.gradient(y, x)")


def _run_adam(mod, case):
    w0, grads = case.args
    return {"variable after each step": _keras_adam_steps(mod.port_adam(), np.asarray(w0, np.float32),
                                                          np.asarray(grads, np.float32))}


ADAM_CASES = [
    Case("one step of a [1] variable from 0 with the gradient 1e-6", ([0.0], [[1e-6]])),
    Case("3 steps of a [4] variable, gradients from 1e-6 to 1", (np.zeros(4), ADAM_GRADS)),
    Case("2 steps of a [2, 2] variable from [[1, -1], [0.5, 2]], gradients 1e-3 to 10",
         ([[1.0, -1.0], [0.5, 2.0]], [[[1e-3, -10.0], [0.5, 2e-3]], [[-1e-3, 10.0], [0.25, 0.0]]])),
]


@pytest.mark.differential
@pytest.mark.covers("port_adam")
def test_port_adam_matches_reference():
    compare("port_adam", n10, reference("n10"), ADAM_CASES, _run_adam, atol=1e-7, rtol=1e-5,
            hint="keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8)")


def _run_reader(mod, case):
    dataset, calls = case.args
    read = mod.make_reader(dataset())
    return {"read": eager_outputs(lambda: [read() for _ in range(calls)], keras=False)}


READER_CASES = [
    Case("range(3), read once", (lambda: tf.data.Dataset.range(3), 1)),
    Case("range(10, 15), read 4 times", (lambda: tf.data.Dataset.range(10, 15), 4)),
    Case("(x, y) pairs from_tensor_slices, batched by 2, read 2 times",
         (lambda: tf.data.Dataset.from_tensor_slices((np.arange(12, dtype=np.float32).reshape(6, 2),
                                                      np.arange(6))).batch(2), 2)),
]


@pytest.mark.differential
@pytest.mark.covers("make_reader")
def test_make_reader_matches_reference():
    compare("make_reader", n10, reference("n10"), READER_CASES, _run_reader,
            hint="iterator = iter(dataset) once, outside; the tf.function returns next(iterator)")
