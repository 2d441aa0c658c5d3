"""Graded tests for n09 · tf.summary, tf.train.Checkpoint, tf.data and check_numerics (TF 2 twin of k09).

Order: the model and its step, tf.summary (event files read back value by value), checkpoints,
the Dataset API read eagerly, hunting a NaN, migrating k09's TF 1 checkpoint (unit tests, a few
seconds each); then the equivalence tests against the same target's k09 (``needs("k09")``: the
same batches from the same seeds, the same Adam steps from the same weights, the same predictions
from k09's own Saver checkpoint, and wrong ports rejected); the two short training runs last.

The harness runs every n09 test eagerly with numpy, random, tf and Keras seeds set (1234). Every
file goes to pytest's tmp_path. Data: a small slice of the bundled MNIST.

PYTEST_DONT_REWRITE: every assert here carries its own message, so pytest's assertion rewriting (about 2 s of
every run over all test files) would add nothing a learner reads.
"""
import math
import os

import numpy as np
import pytest

from tfkata import SEED, fresh_graph, load_kata
from tfkata.tfsetup import import_tensorflow
from tfkata.testing import mismatch as _mismatch, must_raise, mnist_images as _mnist_images, where_max as _where
from tfkata.testing import dataset_stages, logits_read_as_probabilities, mnist_flat, recording_argument
from tfkata.feedback.facts import first_line

tf = import_tensorflow()
import keras  # noqa: E402  (after the quiet TensorFlow import; Keras 3 on TF >= 2.16, Keras 2 before)

n09 = load_kata("n09_tf2_tools")
k09 = load_kata("k09_tools")

N_TRAIN, N_TEST = 512, 256
LAYERS = ("layer1", "layer2")
WEIGHTS = ("layer1/kernel", "layer1/bias", "layer2/kernel", "layer2/bias")


# =========================================================================== helpers
def _read_events(folder):
    """{step: {tag: value}} from the TF 2 event files in ``folder``: a scalar as a float, a histogram
    as its [buckets, 3] array (left edge, right edge, count). TF 2 stores both as tensors."""
    files = sorted(str(p) for p in folder.glob("events.out.tfevents.*"))
    assert files, (
        f"no event file in {folder}: make the writer with tf.summary.create_file_writer(that folder), write "
        "with it as the default (with writer.as_default():) and close it (close() flushes)"
    )
    steps = {}
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.HasField("tensor"):
                    array = tf.make_ndarray(value.tensor)
                    logged = float(array) if array.ndim == 0 else array
                else:  # a TF 1 summary (tf.compat.v1.summary) written through a TF 2 writer
                    logged = value.simple_value
                steps.setdefault(event.step, {})[value.tag] = logged
    return steps


def _written_twice(folder):
    """(tag, step, times) of the first summary written more than once at one step in ``folder``, else None."""
    import collections

    counts = collections.Counter()
    for path in sorted(str(p) for p in folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                counts[value.tag, event.step] += 1
    return next(((tag, step, n) for (tag, step), n in sorted(counts.items()) if n > 1), None)


def _numpy_sparse_ce(labels, logits):
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def _set_weights(model, weights):
    """weights: {'layer1/kernel': array, ...} -> the model's layers."""
    for layer in LAYERS:
        model.get_layer(layer).kernel.assign(weights[f"{layer}/kernel"])
        model.get_layer(layer).bias.assign(weights[f"{layer}/bias"])


def _weights_of(model):
    return {f"{layer}/{attr}": getattr(model.get_layer(layer), attr).numpy() for layer in LAYERS for attr in ("kernel", "bias")}


def _small_weights(input_dim=6, hidden=4, classes=3, seed=0):
    rng = np.random.RandomState(seed)
    return {
        "layer1/kernel": rng.uniform(-1, 1, (input_dim, hidden)).astype(np.float32),
        "layer1/bias": rng.uniform(-0.5, 0.5, hidden).astype(np.float32),
        "layer2/kernel": rng.uniform(-1, 1, (hidden, classes)).astype(np.float32),
        "layer2/bias": rng.uniform(-0.5, 0.5, classes).astype(np.float32),
    }


def _forward(weights, x):
    hidden = np.maximum(x @ weights["layer1/kernel"] + weights["layer1/bias"], 0.0)
    return hidden, hidden @ weights["layer2/kernel"] + weights["layer2/bias"]


# =========================================================================== the model and its step
@pytest.mark.covers("build_model")
def test_build_model_layers_and_initializers():
    model = n09.build_model(input_dim=784, hidden_dim=32, num_classes=10)
    assert isinstance(model, keras.Model), f"expected a keras.Sequential (a keras.Model), got {type(model).__name__}"
    got = [(layer.name, type(layer).__name__) for layer in model.layers]
    assert got == [("layer1", "Dense"), ("layer2", "Dense")], (
        f"expected two Dense layers named layer1 and layer2, got {got}: Dense(..., name='layer1')"
    )
    shapes = {name: tuple(w.shape) for name, w in _weights_of(model).items()}
    expected = {"layer1/kernel": (784, 32), "layer1/bias": (32,), "layer2/kernel": (32, 10), "layer2/bias": (10,)}
    assert shapes == expected, f"expected the weights {expected}, got {shapes}"
    weights = _weights_of(model)
    for layer in LAYERS:
        bias, kernel = weights[f"{layer}/bias"], weights[f"{layer}/kernel"]
        assert np.all(bias == np.float32(0.1)), (
            f"build_model: {layer}: every bias starts at 0.1 as k09's nn_layer (bias_initializer=keras.initializers.Constant(0.1)), "
            f"got values in [{bias.min():.3g}, {bias.max():.3g}]"
        )
        assert np.abs(kernel).max() <= 0.2 + 1e-6, (
            f"build_model: {layer}: a kernel weight of {np.abs(kernel).max():.3f} is beyond 2 standard deviations (0.2): use "
            "keras.initializers.TruncatedNormal(stddev=0.1) as k09's truncated_normal"
        )
    mean = float(weights["layer1/kernel"].mean())  # 25,088 draws: a centred initialiser's mean is within 0.002
    assert abs(mean) < 0.01, (
        f"build_model: layer1's kernel should be centred on 0, its mean is {mean:.3f}: "
        + ("TruncatedNormal(0.1) passes 0.1 as the MEAN, its first parameter: write TruncatedNormal(stddev=0.1)"
           if 0.08 < mean < 0.12 else "use keras.initializers.TruncatedNormal(stddev=0.1)")
    )
    std = float(weights["layer1/kernel"].std())
    # A normal(0, 0.1) truncated at 2 sigma has std 0.088; Keras's default glorot_uniform gives 0.049 here.
    assert 0.084 < std < 0.092, (
        f"build_model: layer1's kernel should have std about 0.088 (TruncatedNormal(stddev=0.1)), got {std:.4f}: "
        + ("that is a truncated normal of stddev 0.05, what the string 'truncated_normal' gives: pass "
           "keras.initializers.TruncatedNormal(stddev=0.1)" if 0.042 < std < 0.046 else
           "Keras's default glorot_uniform is not k09's initialiser" if 0.045 < std < 0.053 else
           "use keras.initializers.TruncatedNormal(stddev=0.1)")
    )
    x = np.random.RandomState(0).standard_normal((5, 784)).astype(np.float32)
    _set_weights(model, _small_weights(784, 32, 10))
    hidden, logits = _forward(_small_weights(784, 32, 10), x)
    problem = _mismatch(model(x, training=False), logits, atol=1e-4, rtol=1e-4)
    if problem is not None and _mismatch(model(x, training=False), np.maximum(logits, 0), atol=1e-4, rtol=1e-4) is None:
        problem = "the logits are never negative: layer2 must be linear (no activation), the loss applies the softmax"
    elif problem is not None:
        problem += ": layer1 is Dense(hidden_dim, activation='relu'), layer2 Dense(num_classes) without activation"
    assert problem is None, f"build_model: expected logits relu(x W1 + b1) W2 + b2: {problem}"


@pytest.mark.covers("evaluate")
def test_evaluate_loss_and_accuracy():
    weights = _small_weights()
    model = n09.build_model(input_dim=6, hidden_dim=4, num_classes=3)
    _set_weights(model, weights)
    rng = np.random.RandomState(1)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    y = rng.randint(0, 3, 40).astype(np.int64)
    _, logits = _forward(weights, x)
    ref_loss = _numpy_sparse_ce(y, logits)
    ref_acc = float(np.mean(np.argmax(logits, 1) == y))
    try:
        loss, accuracy = n09.evaluate(model, x, y)
    except (tf.errors.InvalidArgumentError, ValueError) as exc:
        if "[3]" not in str(exc) or "[40]" not in str(exc):
            raise
        error = first_line(exc)
    else:
        error = None
    if error is not None:  # outside the except block: no chained TensorFlow traceback
        pytest.fail(
            f"evaluate: take the argmax over axis 1, the classes (one predicted id per row: shape [40] here); "
            f"yours compared 3 values (one per class: the argmax over the batch axis 0) with 40 labels ({error})"
        )
    assert tf.is_tensor(loss) and loss.shape.ndims == 0 and loss.dtype == tf.float32, (
        f"evaluate should return float32 scalar tensors, got loss {loss!r}"
    )
    hint = "the mean over the batch of tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)"
    if np.isclose(float(loss), ref_loss * 40, rtol=1e-4):
        hint = "that is the SUM over the batch: take the mean"
    as_probabilities = float(np.mean(keras.losses.sparse_categorical_crossentropy(y, logits.astype(np.float32))))
    if np.isclose(float(loss), as_probabilities, rtol=1e-4):
        hint = ("that is Keras' sparse_categorical_crossentropy reading the logits as probabilities (its default, "
                "from_logits=False): pass from_logits=True, or use " + hint)
    assert np.isclose(float(loss), ref_loss, rtol=1e-5), f"evaluate: expected the loss {ref_loss:.5f}, got {float(loss):.5f}: {hint}"
    counted = " (that is the NUMBER of right rows: the accuracy is the fraction, their mean)" if np.isclose(
        float(accuracy), ref_acc * 40, atol=1e-4) else ""
    assert np.isclose(float(accuracy), ref_acc, atol=1e-6), (
        f"evaluate: expected the accuracy {ref_acc:.4f} (mean of argmax(logits, 1) == labels), got "
        f"{float(accuracy):.4f}{counted}"
    )
    assert tf.is_tensor(accuracy) and accuracy.shape.ndims == 0 and accuracy.dtype == tf.float32, (
        f"evaluate: the accuracy should be a float32 scalar tensor, like the loss, got "
        + (f"a {accuracy.dtype.name} tensor of shape {accuracy.shape.as_list()}" if tf.is_tensor(accuracy)
           else type(accuracy).__name__)
        + ": tf.reduce_mean(tf.cast(correct, tf.float32))"
    )



@pytest.mark.covers("evaluate")
def test_evaluate_runs_the_model_with_training_false():
    class Spy(keras.Model):  # records the training flag of every call (Dropout or BatchNorm would act on it)
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)
            self.flags = []

        def call(self, x, training=None):
            self.flags.append(training)
            return self.dense(x)

    model = Spy()
    x = np.random.RandomState(2).standard_normal((5, 6)).astype(np.float32)
    n09.evaluate(model, x, np.array([0, 1, 2, 0, 1], np.int64))
    assert model.flags and not any(model.flags), (
        f"evaluate ran the model with training={model.flags[-1] if model.flags else None!r}: evaluation runs it in "
        "inference mode, model(images, training=False) (with training=True, Dropout and BatchNormalization act as "
        "in training and the figures are not the model's)")


@pytest.mark.covers("make_optimizer")
def test_make_optimizer_is_k09s_adam():
    optimizer = n09.make_optimizer(learning_rate=5e-3)
    config = optimizer.get_config()
    assert type(optimizer).__name__ == "Adam", f"expected keras.optimizers.Adam, got {type(optimizer).__name__}"
    assert math.isclose(float(config["learning_rate"]), 5e-3, rel_tol=1e-6), (
        f"make_optimizer(learning_rate=5e-3): the learning rate should be the argument 5e-3, got "
        f"{float(config['learning_rate']):g}: keras.optimizers.Adam(learning_rate, ...)"
    )
    assert math.isclose(float(config["epsilon"]), 1e-8, rel_tol=1e-6), (
        f"make_optimizer: epsilon should be 1e-8, TF 1's AdamOptimizer default, got {config['epsilon']:g} (Keras's default is 1e-7): "
        "keras.optimizers.Adam(learning_rate, epsilon=1e-8) takes k09's steps"
    )
    assert math.isclose(float(config["beta_1"]), 0.9) and math.isclose(float(config["beta_2"]), 0.999), (
        f"beta_1 0.9 and beta_2 0.999 as k09, got {config['beta_1']}, {config['beta_2']}"
    )


@pytest.mark.covers("make_train_step")
def test_make_train_step_one_step():
    weights = _small_weights()
    rng = np.random.RandomState(2)
    x = rng.standard_normal((16, 6)).astype(np.float32)
    y = rng.randint(0, 3, 16).astype(np.int64)
    model = n09.build_model(input_dim=6, hidden_dim=4, num_classes=3)
    _set_weights(model, weights)
    step = n09.make_train_step(model, keras.optimizers.SGD(learning_rate=0.5))
    assert hasattr(step, "get_concrete_function"), (
        f"make_train_step should return a tf.function, got {type(step).__name__}: decorate the inner step with @tf.function"
    )
    loss = step(tf.constant(x), tf.constant(y))
    expected_loss = _numpy_sparse_ce(y, _forward(weights, x)[1])
    assert np.isclose(float(loss), expected_loss, rtol=1e-5), (
        f"make_train_step: the step should return the loss before the update {expected_loss:.5f} (mean sparse cross-entropy of the logits), "
        f"got {float(loss):.5f}"
    )
    # The SGD step's reference, with a tape of our own on a copy of the model.
    reference = n09.build_model(input_dim=6, hidden_dim=4, num_classes=3)
    _set_weights(reference, weights)
    with tf.GradientTape() as tape:
        ref_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=reference(x)))
    grads = tape.gradient(ref_loss, reference.trainable_variables)
    after = _weights_of(model)
    for name, var, grad in zip(WEIGHTS, reference.trainable_variables, grads):  # Sequential: layer1 k, b, layer2 k, b
        expected = var.numpy() - 0.5 * np.asarray(grad)
        problem = _mismatch(after[name], expected, atol=1e-5)
        assert problem is None, (
            f"after one SGD(0.5) step {name} is not the old value - 0.5 * its gradient ({problem}): apply the gradients "
            "of the loss with respect to model.trainable_variables, all of them"
        )
    loss2 = float(step(tf.constant(x), tf.constant(y)))
    assert loss2 < expected_loss, f"a second step should see a lower loss than {expected_loss:.4f}, got {loss2:.4f}"


# =========================================================================== TensorBoard (tf.summary)
@pytest.mark.covers("variable_summaries")
def test_variable_summaries_writes_each_value(tmp_path):
    values = np.array([[1.0, -2.0, 3.5], [0.5, 4.0, -1.0]], np.float32)
    var = tf.Variable(values)
    writer = tf.summary.create_file_writer(str(tmp_path))
    try:
        with writer.as_default():
            with tf.name_scope("layer1"), tf.name_scope("weights"):
                n09.variable_summaries(var, 3)
                var.assign(values * 2)
                n09.variable_summaries(var, 8)
    finally:
        writer.close()
    events = _read_events(tmp_path)
    assert sorted(events) == [3, 8], (
        f"expected summaries at the steps passed, 3 and 8, got steps {sorted(events)}: tf.summary.scalar(name, value, step=step)"
    )
    prefix = "layer1/weights/summaries/"
    expected_tags = {prefix + t for t in ("mean", "stddev", "max", "min", "histogram")}
    got_tags = set(events[3])
    assert got_tags == expected_tags, (
        f"variable_summaries: expected the tags {sorted(expected_tags)}, got {sorted(got_tags)}: the five summaries inside "
        "tf.name_scope('summaries'), named mean, stddev, max, min and histogram"
    )
    for step, v in ((3, values), (8, values * 2)):
        expected = {"mean": v.mean(), "stddev": v.std(), "max": v.max(), "min": v.min()}
        for name, value in expected.items():
            logged = events[step][prefix + name]
            hint = ""
            if name == "stddev" and np.isclose(logged, v.std(ddof=1), rtol=1e-4):
                hint = ": that is the SAMPLE stddev (n - 1); use the population stddev sqrt(mean((var - mean)^2))"
            elif name == "stddev" and np.isclose(logged, v.var(), rtol=1e-4):
                hint = ": that is the variance; take its square root"
            else:
                other = [k for k, w in expected.items() if k != name and np.isclose(logged, w, rtol=1e-5)]
                if other:
                    hint = f": that is the {other[0]} of var; summarise the right tensor under each tag"
            assert np.isclose(logged, value, rtol=1e-4), (
                f"variable_summaries at step {step}: the {name} summary should be {value:.5f}, got {logged:.5f}{hint}"
            )
        histogram = events[step][prefix + "histogram"]
        assert np.isclose(histogram[:, 2].sum(), v.size) and np.isclose(histogram[0, 0], v.min()) and np.isclose(
            histogram[-1, 1], v.max()
        ), (
            f"the histogram at step {step} should cover all {v.size} entries of var from {v.min()} to {v.max()}, got "
            f"{histogram[:, 2].sum():g} entries from {histogram[0, 0]:g} to {histogram[-1, 1]:g}: tf.summary.histogram('histogram', var, step)"
        )


@pytest.mark.covers("variable_summaries")
def test_variable_summaries_stddev_of_values_far_from_zero(tmp_path):
    values = np.array([1000.1, 1000.2, 1000.3, 1000.1], np.float32)
    writer = tf.summary.create_file_writer(str(tmp_path))
    try:
        with writer.as_default():
            n09.variable_summaries(tf.constant(values), 1)
    finally:
        writer.close()
    logged = {tag.split("/")[-1]: v for tag, v in _read_events(tmp_path).get(1, {}).items()}
    want = float(values.astype(np.float64).std())
    got = logged.get("stddev")
    if got is not None and np.isclose(got, want, rtol=1e-2):
        return
    # sqrt(E[x^2] - E[x]^2) in float32: the difference of two numbers near 1e6 is mostly rounding (or negative: nan)
    c = tf.constant(values)
    squares = float(tf.reduce_mean(tf.square(c)) - tf.square(tf.reduce_mean(c)))
    naive = float(tf.sqrt(tf.maximum(squares, 0.0)))
    cancelled = got is not None and (np.isclose(got, naive, rtol=1e-3) or (np.isnan(got) and squares < 0))
    cause = (": sqrt(mean(var^2) - mean^2) subtracts two numbers near 1e6 that float32 holds to about 0.06 (here "
             f"{squares:.3g} before the root); take sqrt(mean((var - mean)^2))") if cancelled else (
             ": the population stddev sqrt(mean((var - mean)^2)) of the values as they are, in float32")
    pytest.fail(f"variable_summaries: the stddev of values near 1000 with a small spread {values.tolist()} should be "
                f"{want:.4f}, got {got}{cause}", pytrace=False)


@pytest.mark.covers("open_writers")
def test_open_writers_one_folder_per_run(tmp_path):
    try:
        writers = n09.open_writers(str(tmp_path))
    except RuntimeError as exc:
        if "FileWriter" not in str(exc):
            raise
        pytest.fail("open_writers: tf.compat.v1.summary.FileWriter is k09's TF 1 writer and refuses eager code: TF 2 "
                    "writes with tf.summary.create_file_writer(os.path.join(log_dir, 'train')) (and 'test')",
                    pytrace=False)
    assert isinstance(writers, tuple) and len(writers) == 2, f"open_writers should return (train_writer, test_writer), got {writers!r}"
    train_writer, test_writer = writers
    assert isinstance(train_writer, tf.summary.SummaryWriter) and isinstance(test_writer, tf.summary.SummaryWriter), (
        f"expected two tf.summary.create_file_writer writers, got {type(train_writer).__name__} and "
        f"{type(test_writer).__name__} (tf.compat.v1.summary.FileWriter is k09's; TF 2 writes with create_file_writer)"
    )
    try:
        with train_writer.as_default():
            tf.summary.scalar("probe", 1.0, step=1)
        with test_writer.as_default():
            tf.summary.scalar("probe", 2.0, step=1)
    finally:
        train_writer.close()
        test_writer.close()
    for folder, value in (("train", 1.0), ("test", 2.0)):
        assert (tmp_path / folder).is_dir(), f"open_writers should write into <log_dir>/{folder}"
        logged = _read_events(tmp_path / folder)[1]["probe"]
        assert logged == value, f"the {folder} writer's file holds {logged}, expected {value}: are the writers swapped?"


@pytest.mark.covers("build_model")
def test_build_model_uses_its_size_arguments():
    model = n09.build_model(input_dim=4, hidden_dim=3, num_classes=2)
    shapes = {name: tuple(w.shape) for name, w in _weights_of(model).items()}
    expected = {"layer1/kernel": (4, 3), "layer1/bias": (3,), "layer2/kernel": (3, 2), "layer2/bias": (2,)}
    assert shapes == expected, (
        f"build_model(input_dim=4, hidden_dim=3, num_classes=2): expected the weights {expected}, got {shapes}: "
        "keras.Input((input_dim,)), Dense(hidden_dim, ...) and Dense(num_classes), with the arguments"
    )


@pytest.mark.covers("train_with_summaries", "open_writers", "variable_summaries", "evaluate", "make_train_step",
                    "make_optimizer", "build_model")
def test_train_with_summaries_bookkeeping(tmp_path):
    """12 steps, evaluating every 5: which steps went where, each logged value, and k09's batches."""
    data = mnist_flat(N_TRAIN, N_TEST)
    keras.utils.set_random_seed(SEED)
    history = n09.train_with_summaries(data, str(tmp_path), num_steps=12, eval_every=5, batch_size=16)
    assert isinstance(history, dict) and sorted(history) == ["test", "train"], (
        f"train_with_summaries should return {{'train': {{step: loss}}, 'test': {{step: loss}}}}, got {history!r:.200}"
    )
    assert sorted(history["test"]) == [0, 5, 10], (
        f"train_with_summaries(num_steps=12, eval_every=5): evaluate at steps 0, 5, 10 (step % eval_every == 0), got "
        f"{sorted(history['test'])}: use the eval_every argument"
    )
    train_steps = [1, 2, 3, 4, 6, 7, 8, 9, 11]
    assert sorted(history["train"]) == train_steps, f"train at every other step {train_steps}, got {sorted(history['train'])}"
    train_events, test_events = _read_events(tmp_path / "train"), _read_events(tmp_path / "test")
    assert sorted(test_events) == [0, 5, 10] and sorted(train_events) == train_steps, (
        f"expected test summaries at [0, 5, 10] and train summaries at {train_steps}, got {sorted(test_events)} and "
        f"{sorted(train_events)}: pass step=step, and write each with its own writer as the default"
    )
    for name, events in (("train", train_events), ("test", test_events)):
        for step, loss in history[name].items():
            logged = events[step].get("cross_entropy")
            assert logged is not None and np.isclose(logged, loss, rtol=1e-6), (
                f"{name} step {step}: the event file says cross_entropy={logged}, the step gave {loss:.6f}: log the loss "
                "you return, as tf.summary.scalar('cross_entropy', loss, step=step)"
            )
    assert "accuracy" in test_events[10], f"the test run should log 'accuracy' too, got tags {sorted(test_events[10])}"
    tags = set(train_events[11])
    for layer in LAYERS:
        for scope in ("weights", "biases"):
            for name in ("mean", "stddev", "max", "min", "histogram"):
                tag = f"{layer}/{scope}/summaries/{name}"
                assert tag in tags, (
                    f"train_with_summaries: no summary {tag} at a training step (tags: {sorted(tags)[:6]}...): call variable_summaries on "
                    f"each layer's kernel in tf.name_scope('<layer>/weights') and its bias in '<layer>/biases', inside "
                    f"`with train_writer.as_default():` (without a default writer tf.summary writes nothing)"
                )
    kinds = sorted({type(v).__name__ for part in history.values() for v in part.values() if not isinstance(v, float)})
    assert not kinds, (
        f"train_with_summaries: the history should hold Python floats (the docstring), got {', '.join(kinds)}: "
        "float(loss)"
    )
    moved = train_events[1].get("layer1/biases/summaries/mean")
    assert moved is not None and abs(moved - 0.1) > 1e-6, (
        f"train_with_summaries: at step 1 the summary layer1/biases/summaries/mean is {moved}, the biases' initial "
        "0.1: summarise the weights AFTER the step (run the train step first, then variable_summaries), so each "
        "summary shows the model that step made"
    )
    # k09's batches: step 1 trains on rows 16..31 of the untrained model (step 0 only evaluated).
    keras.utils.set_random_seed(SEED)
    fresh = n09.build_model(input_dim=784)
    initial_test = float(n09.evaluate(fresh, data[2], data[3])[0])
    initial_train = float(n09.evaluate(fresh, data[0], data[1])[0])
    if not np.isclose(history["test"][0], initial_test, rtol=1e-5) and np.isclose(history["test"][0], initial_train,
                                                                                 rtol=1e-5):
        pytest.fail(f"train_with_summaries: the step-0 evaluation gives {history['test'][0]:.4f}, the untrained model's "
                    f"loss on the TRAINING data (on the test data it is {initial_test:.4f}): evaluate on the test data, "
                    "x_test, y_test = data[2], data[3]", pytrace=False)
    assert np.isclose(history["test"][0], initial_test, rtol=1e-5), (
        f"train_with_summaries: the test loss at step 0 should be the untrained model's {initial_test:.4f}, got "
        f"{history['test'][0]:.4f}: evaluate before training at step 0 (build the model inside train_with_summaries, "
        "nothing before it)"
    )
    step1 = _numpy_sparse_ce(data[1][16:32], np.asarray(fresh(data[0][16:32])))
    assert np.isclose(history["train"][1], step1, rtol=1e-4), (
        f"train_with_summaries: step 1 should train on rows 16..31 (k09's batch_for_step: (step * batch_size + 0..batch_size-1) % N), loss "
        f"{step1:.4f} before the update, got {history['train'][1]:.4f}"
    )


@pytest.mark.covers("train_with_summaries")
def test_train_with_summaries_closes_its_writers_on_error(tmp_path, monkeypatch):
    """Review Z3: "Close both writers (also on error)": a run whose evaluation fails at step 0 (test images of the
    wrong width) must still close the two writers open_writers gave it."""
    import sys

    module = sys.modules[n09.train_with_summaries.__module__]
    real, closed = module.open_writers, []

    def recording_open_writers(*args, **kwargs):
        writers = real(*args, **kwargs)
        for writer in writers:
            close = writer.close
            writer.close = lambda close=close: (closed.append(1), close())[1]
        return writers

    monkeypatch.setattr(module, "open_writers", recording_open_writers)
    x, y, x_test, y_test = mnist_flat(N_TRAIN, N_TEST)
    try:  # the evaluation at step 0 fails on the wrong width (a run that evaluates elsewhere ends: closed too)
        n09.train_with_summaries((x, y, x_test[:, :100], y_test), str(tmp_path), num_steps=3, eval_every=5, batch_size=16)
    except Exception:  # noqa: BLE001 - any error from the wrong width will do
        pass
    assert len(closed) >= 2, (
        f"train_with_summaries: when a step raises (here the evaluation at step 0, on test images of the wrong width), "
        f"both writers must still be closed, got {len(closed)} close() call(s): open them, then try: ... finally: "
        "train_writer.close(); test_writer.close()"
    )


@pytest.mark.covers("train_with_summaries")
def test_train_with_summaries_logs_the_values_it_names(tmp_path):
    """What is logged, not only where: the test scalars are what evaluate returned, and each layer's weight
    summaries describe its kernel and its bias AFTER the step (4 steps: 0 and 3 evaluate, 1 and 2 train)."""
    import sys

    module = sys.modules[n09.train_with_summaries.__module__]  # the module itself (a kata's stand-in is read-only)
    models, evaluated = [], []
    real_build, real_evaluate = module.build_model, module.evaluate

    def build(*a, **kw):
        models.append(real_build(*a, **kw))
        return models[-1]

    def evaluate(*a, **kw):
        loss, accuracy = real_evaluate(*a, **kw)
        evaluated.append((float(loss), float(accuracy)))
        return loss, accuracy

    data = mnist_flat(N_TRAIN, N_TEST)
    keras.utils.set_random_seed(SEED)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "build_model", build)
        patch.setattr(module, "evaluate", evaluate)
        module.train_with_summaries(data, str(tmp_path), num_steps=4, eval_every=3, batch_size=16)
    assert len(models) == 1 and len(evaluated) == 2, (
        f"train_with_summaries(num_steps=4, eval_every=3) should call build_model once and evaluate at steps 0 and 3, "
        f"it called them {len(models)} and {len(evaluated)} times"
    )
    for folder in ("train", "test"):
        twice = _written_twice(tmp_path / folder)
        assert twice is None, (
            f"train_with_summaries: the {folder} summary {twice[0]!r} was written {twice[2]} times at step {twice[1]}: "
            "write each summary once per step (the weight summaries after the step, not also before it)"
        )
    test_events, train_events = _read_events(tmp_path / "test"), _read_events(tmp_path / "train")
    for step, (loss, accuracy) in zip((0, 3), evaluated):
        logged = test_events.get(step, {})
        got = logged.get("accuracy")
        assert got is not None and np.isclose(got, accuracy, rtol=1e-6, atol=1e-7), (
            f"train_with_summaries: at test step {step} the 'accuracy' scalar is {'missing' if got is None else f'{got:.6g}'}, "
            f"evaluate returned the accuracy "
            f"{accuracy:.6f}" + (" (yours logs the LOSS under 'accuracy')" if got is not None and np.isclose(got, loss)
                                 else "") + ": tf.summary.scalar('accuracy', accuracy, step=step) with the test writer"
        )
    model, logged = models[0], train_events.get(2, {})
    for layer in LAYERS:
        kernel, bias = (np.asarray(w, np.float64) for w in model.get_layer(layer).get_weights())
        stats = {"weights": kernel, "biases": bias}
        for scope, values in stats.items():
            other = stats["biases" if scope == "weights" else "weights"]
            want = {"mean": values.mean(), "stddev": values.std(), "max": values.max(), "min": values.min()}
            for name, value in want.items():
                got = logged.get(f"{layer}/{scope}/summaries/{name}")
                if got is not None and np.isclose(got, value, rtol=1e-5, atol=1e-7):
                    continue
                if got is not None and np.isclose(got, {"mean": other.mean(), "stddev": other.std(), "max": other.max(),
                                                        "min": other.min()}[name], rtol=1e-5, atol=1e-7):
                    why = f"that describes the {'bias' if scope == 'weights' else 'kernel'}, not the {scope}"
                else:
                    why = ("summarise after the step, once step_fn has updated the weights" if got is not None else
                           "the tag is missing")
                shown = "missing" if got is None else f"{got:.6g}"
                pytest.fail(
                    f"train_with_summaries: at training step 2 '{layer}/{scope}/summaries/{name}' is {shown}, the "
                    f"{'kernel' if scope == 'weights' else 'bias'} of {layer} after the step has {name} {value:.6g}: {why} "
                    f"(variable_summaries(layer.{'kernel' if scope == 'weights' else 'bias'}, step) in "
                    f"tf.name_scope('{layer}/{scope}'), after the step)"
                )


@pytest.mark.covers("train_with_summaries")
def test_train_with_summaries_batches_wrap_around(tmp_path):
    """N = 50 rows, batch 32: each training step must get the 32 rows (step * 32 + 0..31) % 50, wrapping past the end."""
    import sys

    module = sys.modules[n09.train_with_summaries.__module__]  # the module itself (a kata's stand-in is read-only)
    real = module.make_train_step
    n, batch = 50, 32
    rng = np.random.RandomState(3)
    x = rng.standard_normal((n, 784)).astype(np.float32)
    x[:, 0] = np.arange(n)  # column 0 holds the row's index
    y = (np.arange(n) % 10).astype(np.int64)
    seen = {}

    def recording(*a, **kw):
        step = real(*a, **kw)

        def wrapped(images, labels):
            seen[len(seen) + 1] = np.asarray(images)[:, 0].astype(int).tolist()
            return step(images, labels)

        return wrapped

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "make_train_step", recording)
        module.train_with_summaries((x, y, x[:10], y[:10]), str(tmp_path), num_steps=3, eval_every=100, batch_size=batch)
    for step in (1, 2):
        want = ((step * batch + np.arange(batch)) % n).tolist()
        got = seen.get(step)
        assert got == want, (
            f"train_with_summaries: with N={n} and batch_size={batch}, step {step} should train on the rows "
            f"(step * batch_size + 0..batch_size-1) % N, wrapping around the end of the data ({want[:3]}...{want[-3:]}, "
            f"{batch} rows), got {'no call' if got is None else f'{len(got)} rows {got[:3]}...{got[-3:]}'}: index with "
            "(step * batch_size + np.arange(batch_size)) % len(x_train), not a slice that stops at the end"
        )


@pytest.mark.covers("train_with_summaries")
def test_train_with_summaries_trains_at_the_learning_rate_given(tmp_path):
    import sys

    module = sys.modules[n09.train_with_summaries.__module__]  # the module itself (a kata's stand-in is read-only)
    real, rates = module.make_optimizer, []

    def recording(*a, **kw):
        optimizer = real(*a, **kw)
        rates.append(float(keras.ops.convert_to_numpy(optimizer.learning_rate)) if hasattr(keras, "ops")
                     else float(tf.keras.backend.get_value(optimizer.learning_rate)))
        return optimizer

    x, y = _toy_data(16, dim=784, classes=10)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "make_optimizer", recording)
        module.train_with_summaries((x, y, x[:8], y[:8]), str(tmp_path), num_steps=1, eval_every=100, batch_size=8,
                                    learning_rate=0.0123)
    assert rates and all(abs(r - 0.0123) < 1e-6 for r in rates), (
        f"train_with_summaries(learning_rate=0.0123): the optimizer it made trains at "
        f"{[float(f'{r:.4g}') for r in rates] or 'no optimizer'}: "
        "make_optimizer(learning_rate), passing the argument on"
    )


# =========================================================================== checkpoints
def _toy_data(n=64, dim=6, classes=3, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x, (np.argmax(x[:, :classes], axis=1)).astype(np.int64)


def _toy_parts(x, y, batch_size=8, seed=0):
    model = n09.build_model(input_dim=x.shape[1], hidden_dim=4, num_classes=3)
    optimizer = keras.optimizers.Adam(1e-2)
    iterator = iter(tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).batch(batch_size).repeat())
    return model, optimizer, iterator


def _one_step(model, optimizer, images, labels):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=model(images)))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))


@pytest.mark.covers("make_checkpoint")
def test_make_checkpoint_saves_model_optimizer_and_data(tmp_path):
    x, y = _toy_data()
    model, optimizer, iterator = _toy_parts(x, y)
    for _ in range(3):
        _one_step(model, optimizer, *next(iterator))
    checkpoint = n09.make_checkpoint(model, optimizer, iterator)
    assert isinstance(checkpoint, tf.train.Checkpoint), f"expected a tf.train.Checkpoint, got {type(checkpoint).__name__}"
    path = checkpoint.save(str(tmp_path / "ckpt"))
    keys = [name for name, _ in tf.train.list_variables(path)]
    missing = [what for what, found in (
        ("the data iterator (data=iterator)", any("ITERATOR_STATE" in k for k in keys)),
        ("the optimizer (optimizer=optimizer: its step and Adam slots)", any(k.startswith("optimizer/") for k in keys)),
    ) if not found]
    assert not missing, f"make_checkpoint: the checkpoint does not hold {' and '.join(missing)}; its keys: {keys[:8]}..."
    # Restore into fresh objects: the same weights, the same step, and the next batch the original would read.
    expected_next = [np.array(t) for t in next(iterator)]
    model2, optimizer2, iterator2 = _toy_parts(x, y, seed=99)
    status = n09.make_checkpoint(model2, optimizer2, iterator2).restore(path)
    got_next = [np.array(t) for t in next(iterator2)]
    _one_step(model2, optimizer2, *next(iter(tf.data.Dataset.from_tensor_slices((x, y)).batch(8))))  # builds the slots
    status.assert_existing_objects_matched()
    assert int(optimizer2.iterations) == 4, (
        f"after restoring a checkpoint saved at step 3 and one more step the optimizer should be at 4, got "
        f"{int(optimizer2.iterations)}: the optimizer (and its iterations) belongs in the checkpoint"
    )
    assert np.array_equal(got_next[1], expected_next[1]), (
        "the restored iterator did not continue where the saved one stopped: put the iterator in the checkpoint "
        "(tf.train.Checkpoint(..., data=iterator))"
    )


@pytest.mark.covers("restore_latest")  # the checkpoint is the test's own, not make_checkpoint's
def test_restore_latest_restores_values_and_step(tmp_path):
    x, y = _toy_data()
    model, optimizer, iterator = _toy_parts(x, y)
    for _ in range(5):
        _one_step(model, optimizer, *next(iterator))
    saved = tf.train.Checkpoint(model=model, optimizer=optimizer, data=iterator)
    manager = tf.train.CheckpointManager(saved, str(tmp_path), max_to_keep=3)
    path = manager.save()  # numbered by the manager's own save counter (ckpt-1), not by the step (5)
    expected = _weights_of(model)
    model2, optimizer2, iterator2 = _toy_parts(x, y, seed=99)
    checkpoint = tf.train.Checkpoint(model=model2, optimizer=optimizer2, data=iterator2)
    step = n09.restore_latest(checkpoint, tf.train.CheckpointManager(checkpoint, str(tmp_path), max_to_keep=3))
    named = os.path.basename(path)
    if str(step) == named.rsplit("-", 1)[-1]:
        pytest.fail(f"restore_latest returned {step!r}, the number in the checkpoint's name ({named}): that number is "
                    "whatever the saver chose (here manager.save()'s own counter); the restored step is the "
                    "optimizer's: int(checkpoint.optimizer.iterations), 5 here", pytrace=False)
    assert isinstance(step, int) and step == 5, (
        f"restore_latest should return the restored step 5 (int(checkpoint.optimizer.iterations)), got {step!r}"
    )
    for name, value in _weights_of(model2).items():
        assert np.array_equal(value, expected[name]), (
            f"after restore_latest {name} does not hold the saved values: checkpoint.restore(manager.latest_checkpoint)"
        )


def _another_models_checkpoint(folder):
    other = tf.train.Checkpoint(model=keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2, name="other")]))
    tf.train.CheckpointManager(other, str(folder), max_to_keep=1).save()


@pytest.mark.parametrize("how", ["empty directory", "missing directory", "another model", "another program",
                                 "corrupt index"])
@pytest.mark.covers("restore_latest", "CheckpointError")
def test_restore_latest_bad_directory_gives_clear_error(tmp_path, how):
    folder = tmp_path / "nowhere" if how == "missing directory" else tmp_path
    if how == "another model":
        _another_models_checkpoint(folder)
    elif how == "another program":  # shares no object with ours: restore() itself says nothing
        counter = tf.train.Checkpoint(counter=tf.Variable(3))
        tf.train.CheckpointManager(counter, str(folder), max_to_keep=1).save()
    elif how == "corrupt index":
        x, y = _toy_data()
        model, optimizer, iterator = _toy_parts(x, y)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, data=iterator)
        tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep=1).save()
        next(folder.glob("ckpt-*.index")).write_bytes(b"garbage" * 20)
    x, y = _toy_data()
    model, optimizer, iterator = _toy_parts(x, y)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, data=iterator)
    manager = tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep=1)
    try:
        step = n09.restore_latest(checkpoint, manager)
    except n09.CheckpointError as exc:
        message = str(exc)
    except Exception as exc:  # noqa: BLE001 - what escaped is the finding
        pytest.fail(
            f"restore_latest on {how}: {type(exc).__name__} escaped ({str(exc).splitlines()[0][:120]}); raise "
            "CheckpointError instead (catch AssertionError, ValueError and tf.errors.OpError around restore)",
            pytrace=False,
        )
    else:
        why = {
            "empty directory": "checkpoint.restore(None) restores nothing and says nothing: check manager.latest_checkpoint first",
            "missing directory": "checkpoint.restore(None) restores nothing and says nothing: check manager.latest_checkpoint first",
        }.get(how, "call assert_existing_objects_matched() on the status restore returns")
        pytest.fail(f"restore_latest on {how} returned {step!r} instead of raising CheckpointError: {why}", pytrace=False)
    assert str(folder) in message, (
        f"restore_latest on {how}: the CheckpointError should name the directory {folder}, got: {message}"
        + (": manager.latest_checkpoint is None when the directory holds no checkpoint; test for None first and raise "
           "CheckpointError naming manager.directory" if how in ("empty directory", "missing directory") else "")
    )


def _checkpoint_tensors(path):
    """{key: array} of a checkpoint, without the object graph and the iterator's opaque state."""
    reader = tf.train.load_checkpoint(path)
    return {
        name: reader.get_tensor(name)
        for name, _ in tf.train.list_variables(path)
        if name != "_CHECKPOINTABLE_OBJECT_GRAPH" and "ITERATOR_STATE" not in name
    }


def _resume_problem(resumed, straight, label):
    """None when a resumed run equals a straight one (weights and every checkpointed tensor), else why."""
    differ = [n for n in straight["weights"] if not np.array_equal(resumed["weights"].get(n), straight["weights"][n])]
    keys = [name for name, _ in tf.train.list_variables(resumed["checkpoint"])]
    causes = []
    if not any("ITERATOR_STATE" in k for k in keys):
        causes.append("the data iterator is not in the checkpoint, so the resumed run reads the first batches again "
                      "(make_checkpoint: data=iterator)")
    if not any(k.startswith("optimizer/") for k in keys):
        causes.append("the optimizer is not in the checkpoint: its step and Adam slots start from zero (optimizer=optimizer)")
    if differ:
        return (f"{label} differ in {differ}: " + ("; ".join(causes) if causes else
                "restore everything before the first step (model, optimizer, iterator) and keep ONE iterator"))
    ours, theirs = _checkpoint_tensors(resumed["checkpoint"]), _checkpoint_tensors(straight["checkpoint"])
    if sorted(ours) != sorted(theirs):
        return f"{label}: the final checkpoints hold different keys, {sorted(set(ours) ^ set(theirs))[:4]}"
    bad = [k for k in ours if not np.array_equal(ours[k], theirs[k])]
    if bad:
        return f"{label}: the final checkpoints differ in {bad[:4]} (the optimizer's slots or step?)"
    return None


@pytest.mark.covers("train_with_checkpoints", "restore_latest", "make_checkpoint", "make_optimizer", "make_train_step",
                    "build_model")
def test_resume_bookkeeping_in_a_few_steps(tmp_path):
    """2 steps, then resumed to 4, equal 4 straight steps: the step, the Adam slots and the data position come back."""
    x, y = _toy_data()
    keras.utils.set_random_seed(SEED)
    first = n09.train_with_checkpoints((x, y), str(tmp_path / "a"), 2, save_every=2, batch_size=8)
    resumed = n09.train_with_checkpoints((x, y), str(tmp_path / "a"), 4, save_every=2, resume=True, batch_size=8)
    keras.utils.set_random_seed(SEED)
    straight = n09.train_with_checkpoints((x, y), str(tmp_path / "b"), 4, save_every=2, batch_size=8)
    got = (first["start_step"], first["global_step"], first["saved_steps"])
    assert got == (0, 2, [2]), (
        f"train_with_checkpoints: a fresh 2-step run (save_every 2) starts at 0, ends at step 2 and saves at [2], got "
        f"{got}" + (": it also saved after step 1: test the step count after the update (step + 1) against "
                    "save_every, not the 0-based loop index" if got[2] == [1, 2] else "")
    )
    assert resumed["start_step"] == 2, (
        f"train_with_checkpoints: resuming should start at the restored step 2, got {resumed['start_step']}: use the step restore_latest returns"
    )
    assert (resumed["global_step"], resumed["saved_steps"]) == (4, [4]), (
        f"the resumed run should end at step 4 and save at [4], got {resumed['global_step']} and {resumed['saved_steps']}"
    )
    assert sorted(straight["weights"]) == sorted(WEIGHTS), f"weights should be keyed {WEIGHTS}, got {sorted(straight['weights'])}"
    kept = sorted(str(p) for p in (tmp_path / "b").glob("ckpt-*.index"))
    assert str(straight["checkpoint"]).endswith("ckpt-4"), (
        f"train_with_checkpoints: the returned 'checkpoint' should be the newest, .../ckpt-4, got {straight['checkpoint']}"
        + (f": the files are numbered {[p.rsplit('/', 1)[-1][:-6] for p in kept]}, no ckpt-4 after the 4th step: number "
           "each save by the steps done, manager.save(checkpoint_number=step + 1) (not the 0-based step)"
           if kept and not any(k.endswith("ckpt-4.index") for k in kept) else
           ": a checkpoint that exists, but not the newest: return manager.latest_checkpoint"
           if any(k.startswith(str(straight["checkpoint"])) for k in kept) else
           " (manager.save(checkpoint_number=step + 1), then manager.latest_checkpoint)")
    )
    problem = _resume_problem(resumed, straight, "2 + 2 steps and 4 straight steps")
    assert problem is None, problem


@pytest.mark.covers("train_with_checkpoints")
def test_train_with_checkpoints_saves_the_final_step(tmp_path, monkeypatch):
    """Review Z2: a run of 3 steps with save_every 2 must save at 2 and, the last step being no multiple of 2, at 3
    too (the graded runs' step counts were all multiples of save_every). The learning rate goes to make_optimizer."""
    import sys

    rates = recording_argument(monkeypatch, sys.modules[n09.train_with_checkpoints.__module__], "make_optimizer",
                               "learning_rate")
    x, y = _toy_data()
    run = n09.train_with_checkpoints((x, y), str(tmp_path / "c"), 3, save_every=2, batch_size=8, learning_rate=0.02)
    assert run["saved_steps"] == [2, 3] and str(run["checkpoint"]).endswith("ckpt-3"), (
        f"train_with_checkpoints(num_steps=3, save_every=2) must save at steps [2, 3] and return .../ckpt-3, got "
        f"saved_steps {run['saved_steps']} and {run['checkpoint']}: also save after the final step (step + 1 == "
        "num_steps), or the last steps of training are lost"
    )
    assert rates == [0.02], (
        f"train_with_checkpoints(..., learning_rate=0.02): make_optimizer got the learning rates {rates}: pass it on, "
        "make_optimizer(learning_rate)"
    )


def _train_recording_batches(*args, **kwargs):
    """n09.train_with_checkpoints(*args, **kwargs) with make_train_step's step wrapped to record the images of
    each batch it trains on: (result, [images [batch_size, input_dim] as numpy, ...])."""
    import sys

    module = sys.modules[n09.train_with_checkpoints.__module__]  # the module itself (a kata's stand-in is read-only)
    real = module.make_train_step
    batches = []

    def recording(*a, **kw):
        step = real(*a, **kw)

        def wrapped(images, labels):
            batches.append(np.asarray(images))
            return step(images, labels)

        return wrapped

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "make_train_step", recording)
        return module.train_with_checkpoints(*args, **kwargs), batches


@pytest.mark.covers("train_with_checkpoints")
def test_train_with_checkpoints_reads_a_whole_shuffled_epoch(tmp_path):
    """64 distinct examples, batch 8: the first 8 steps read one epoch, every example once, shuffled."""
    x, y = _toy_data(64)
    row_of = {row.tobytes(): i for i, row in enumerate(x)}
    keras.utils.set_random_seed(SEED)
    _, batches = _train_recording_batches((x, y), str(tmp_path), 8, save_every=8, batch_size=8)
    assert len(batches) == 8, (
        f"train_with_checkpoints: 8 steps called the step that make_train_step(model, optimizer) returns {len(batches)} "
        "times: build the step with make_train_step, as the docstring says, and call it once per step"
    )
    rows = [[row_of.get(np.asarray(image, np.float32).tobytes(), -1) for image in batch] for batch in batches]
    if all(r == rows[0] for r in rows):
        pytest.fail(
            f"train_with_checkpoints must read its batches through ONE iterator made before the loop: its 8 steps trained "
            f"on the same batch 8 times (examples {rows[0]}): next(iter(dataset)) makes a new iterator at every step and "
            "starts the data over; make iterator = iter(dataset) once and take next(iterator) at each step",
            pytrace=False,
        )
    seen = [i for r in rows for i in r]
    distinct = set(seen) - {-1}
    assert sorted(seen) == list(range(64)), (
        f"train_with_checkpoints: one epoch must read every example once, but its first 8 steps (64 examples, batch 8) "
        f"read {len(distinct)} distinct examples ({len(seen) - len(set(seen))} repeats, {seen.count(-1)} rows that are no "
        "example): read ONE iterator made before the loop (next(iter(dataset)) at every step starts a new pass over "
        "the data and reads only its first batch) over from_tensor_slices -> shuffle(N, seed=seed) -> "
        "batch(batch_size, drop_remainder=True) -> repeat()"
    )
    assert [i for r in rows for i in r] != list(range(64)), (
        "train_with_checkpoints: the examples came in their original order: shuffle them over all N with the seed "
        "(shuffle(N, seed=seed)) before batching"
    )
    keras.utils.set_random_seed(SEED)  # the same global seed, another seed argument: another order
    _, other = _train_recording_batches((x, y), str(tmp_path / "seed1"), 8, save_every=8, batch_size=8, seed=1)
    other_rows = [[row_of.get(np.asarray(image, np.float32).tobytes(), -1) for image in batch] for batch in other]
    assert other_rows != rows, (
        "train_with_checkpoints: seed=0 and seed=1 read the examples in the same order (under the same global seed): "
        "give the shuffle the seed argument, shuffle(N, seed=seed); without it the order follows the global seed only"
    )



@pytest.mark.covers("train_with_checkpoints")
def test_train_with_checkpoints_batches_are_the_pipelines(tmp_path):
    """20 examples, batch 8, 5 steps: every batch full (drop_remainder: 8, 8, then a new epoch), in the order
    shuffle(N, seed=seed) gives under the same global seed (a small buffer barely shuffles: every example still
    comes once per epoch)."""
    x, y = _toy_data(20)
    row_of = {row.tobytes(): i for i, row in enumerate(x)}
    keras.utils.set_random_seed(SEED)
    _, batches = _train_recording_batches((x, y), str(tmp_path), 5, save_every=5, batch_size=8, seed=3)
    sizes = [len(b) for b in batches]
    assert sizes == [8] * 5, (
        f"train_with_checkpoints: with 20 examples and batch_size 8 the steps trained on batches of {sizes}: "
        "every step must see a full batch: batch(batch_size, drop_remainder=True) drops each epoch's short last batch"
    )
    rows = [[row_of.get(np.asarray(image, np.float32).tobytes(), -1) for image in batch] for batch in batches]
    keras.utils.set_random_seed(SEED)
    want = [[row_of[np.asarray(image, np.float32).tobytes()] for image in batch.numpy()] for batch, _ in
            tf.data.Dataset.from_tensor_slices((x, y)).shuffle(20, seed=3).batch(8, drop_remainder=True).take(2)]
    assert rows[:2] == want, (
        f"train_with_checkpoints: the first epoch's batches are examples {rows[:2]}, shuffle(N, seed=seed) gives "
        f"{want} under the same global seed: shuffle over ALL N examples (a buffer of N) with the seed argument, "
        "before batch; a smaller buffer barely shuffles"
    )


# =========================================================================== the Dataset API, eagerly
@pytest.mark.covers("normalize")
def test_normalize():
    try:
        out = n09.normalize(tf.constant(np.array([[0, 51, 255]], np.uint8)))
    except TypeError as exc:  # uint8 / 255.0 without a cast: TensorFlow refuses to mix the dtypes
        error = str(exc).splitlines()[0][:100]
    else:
        error = None
    if error is not None:  # outside the except block: no chained traceback
        pytest.fail(f"normalize: the uint8 pixels must become float32 before the division ({error}): "
                    "tf.cast(image, tf.float32) / 255.0", pytrace=False)
    assert out.dtype == tf.float32, f"normalize: expected float32, got {out.dtype.name}: tf.cast(image, tf.float32) first"
    assert np.allclose(np.asarray(out), [[0.0, 0.2, 1.0]], atol=1e-7), (
        f"normalize: expected [0, 51, 255] / 255 = [0.0, 0.2, 1.0], got {np.asarray(out).tolist()}: divide by 255"
    )


@pytest.mark.covers("normalize")
def test_normalize_takes_a_numpy_array():
    """"uint8 pixels": a numpy array is uint8 pixels too (datasets and eager code hand them over as such)."""
    out = n09.normalize(np.array([[0, 51, 255]], np.uint8))
    dtype = tf.as_dtype(out.dtype)
    assert dtype == tf.float32, (
        f"normalize(a numpy uint8 array): expected float32, got {dtype.name}: numpy's uint8 / 255 is float64 "
        "(a tensor's is float32); tf.cast(image, tf.float32) / 255 gives float32 for either"
    )
    got = np.asarray(out)
    assert np.allclose(got, [[0.0, 0.2, 1.0]], atol=1e-7), (
        f"normalize(a numpy uint8 array): expected [0.0, 0.2, 1.0], got {got.tolist()}: divide by 255"
    )


def _nearest(image, clean):
    """(distance to the clean image, distance to its mirror), as max-abs differences."""
    return np.abs(image - clean).max(), np.abs(image - clean[:, ::-1]).max()


@pytest.mark.covers("augment")
def test_augment_flips_about_half_the_time():
    clean = _mnist_images(1)[0] / np.float32(255.0)
    flips = 0
    for _ in range(40):
        image = np.asarray(n09.augment(tf.constant(clean), seed=3, noise_stddev=0.0))
        same, mirror = _nearest(image, clean)
        upside_down = np.abs(image - clean[::-1]).max()
        hint = ": that is the image upside down; flip left-right (tf.image.random_flip_left_right)" if upside_down < 1e-6 else ""
        assert min(same, mirror) < 1e-6, (
            f"augment: with noise 0 an augmented image is the image or its left-right mirror, it differs from both by "
            f"{min(same, mirror):.3g}{hint}"
        )
        flips += mirror < same
    print(f"n09 augment: {flips}/40 eager calls flipped")
    assert 8 <= flips <= 32, f"random_flip_left_right flips about half the time; {flips}/40 flipped"


@pytest.mark.covers("augment")
def test_augment_draws_from_its_op_seeds():
    """The docstring's op seeds, eagerly: with the same global seed, the flip draws with op seed ``seed`` and the
    noise with ``seed + 1``; the expected values come from those two ops, made here after the same set_seed."""
    image = tf.constant(np.random.RandomState(3).uniform(0.2, 0.8, (2, 3, 1)).astype(np.float32))

    def draws(noise_seed):
        tf.random.set_seed(11)
        out = []
        for _ in range(3):
            flipped = tf.image.random_flip_left_right(image, seed=5)
            out.append(np.clip(np.asarray(flipped + tf.random.normal(tf.shape(image), stddev=0.1, seed=noise_seed)), 0, 1))
        return np.array(out)

    tf.random.set_seed(11)
    got = np.array([np.asarray(n09.augment(image, seed=5, noise_stddev=0.1)) for _ in range(3)])
    if not np.allclose(got, draws(6), atol=1e-5):
        why = ("the noise draws with the flip's op seed (seed): give the noise seed=seed + 1"
               if np.allclose(got, draws(5), atol=1e-5) else
               "flip with tf.image.random_flip_left_right(image, seed=seed), then add tf.random.normal(tf.shape(image), "
               "stddev=noise_stddev, seed=seed + 1) and clip to [0, 1], in that order, each op with its own seed")
        pytest.fail(f"augment(image, seed=5) after tf.random.set_seed(11) should draw as the ops with op seeds 5 (flip) "
                    f"and 6 (noise) do, {_where(np.abs(got - draws(6)))}: {why}", pytrace=False)


@pytest.mark.covers("augment")
def test_augment_keeps_shape_and_range():
    clean = _mnist_images(1)[0] / np.float32(255.0)
    for _ in range(5):
        out = n09.augment(tf.constant(clean), seed=3, noise_stddev=0.1)
        assert tuple(out.shape) == (28, 28, 1) and out.dtype == tf.float32, f"got {out.dtype} {out.shape}"
        image = np.asarray(out)
        assert image.min() >= 0.0 and image.max() <= 1.0, (
            f"augment: pixels must stay in [0, 1] after the noise, got [{image.min():.3f}, {image.max():.3f}]: "
            "tf.clip_by_value(image, 0.0, 1.0)"
        )
        dist = min(_nearest(image, clean))
        assert 0.05 < dist < 0.7, (
            f"augment: expected Gaussian noise of stddev noise_stddev=0.1 (a largest change of 0.05-0.7), got {dist:.3f}: "
            "add tf.random.normal(tf.shape(image), stddev=noise_stddev, seed=seed + 1)"
        )


def _shuffle_buffers(dataset):
    """The buffer size of every shuffle stage of ``dataset``'s pipeline that tf.data keeps as a constant
    (followed through each stage's input dataset; a private attribute, so stages without it are passed by)."""
    found, stage = [], dataset
    for _ in range(50):
        if stage is None:
            break
        if "Shuffle" in type(stage).__name__ and getattr(stage, "_buffer_size", None) is not None:
            found.append(tf.get_static_value(stage._buffer_size))
        stage = getattr(stage, "_input_dataset", None)
    return [int(b) for b in found if b is not None]


@pytest.mark.covers("make_dataset")
def test_make_dataset_shuffle_buffer_holds_every_example_of_a_large_set():
    """A buffer capped at a fixed size (shuffle(1000), min(N, 100)) is the whole set for a small one: this set is
    larger than the usual caps, and only the pipeline is built (nothing read)."""
    n = 2500
    dataset = n09.make_dataset(np.zeros((n, 28, 28, 1), np.uint8), np.zeros(n, np.int64), batch_size=16, seed=7,
                               augment_data=False, num_epochs=1)
    wrong = [b for b in _shuffle_buffers(dataset) if b != n]
    assert not wrong, (
        f"make_dataset: a shuffle buffer of {wrong[0]} for {n} examples: the buffer holds ALL N examples, "
        "shuffle(len(images), seed=seed), whatever N is; a fixed size or a cap (shuffle(1000), min(N, 100)) shuffles "
        "only part of a larger set"
    )


@pytest.mark.covers("make_dataset", "normalize")
def test_dataset_every_example_once_per_epoch():
    images, labels = _mnist_images(60), np.arange(60)
    dataset = n09.make_dataset(images, labels, batch_size=16, seed=7, augment_data=False, num_epochs=2)
    assert isinstance(dataset, tf.data.Dataset), f"expected a tf.data.Dataset, got {type(dataset).__name__}"
    stages = dataset_stages(dataset)
    if "Map" in stages and "Batch" in stages and stages.index("Map") < stages.index("Batch"):
        pytest.fail(f"make_dataset: expected map before batch in the pipeline, got (last first) {' <- '.join(stages)}: "
                    "map normalize and augment over single examples (each image its own flip and noise, as k09), "
                    "then batch", pytrace=False)
    wrong = [b for b in _shuffle_buffers(dataset) if b != 60]
    assert not wrong, (
        f"make_dataset: a shuffle buffer of {wrong[0]} for 60 examples: the buffer holds ALL N examples, "
        "shuffle(len(images), seed=seed); a fixed size (the tutorial's 10000) shuffles only part of a larger set"
    )
    got = [(np.asarray(a), np.asarray(b)) for a, b in dataset.take(20)]  # a for loop: the data simply ends
    sizes = [len(b) for _, b in got]
    ids = [b.tolist() for _, b in got]
    consecutive = all(i == list(range(i[0], i[0] + len(i))) for i in ids)
    if consecutive and sorted(sizes) == sorted([16, 16, 16, 12] * 2):
        hint = ("every batch holds consecutive examples and whole batches change places: that is shuffle after "
                "batch; shuffle the examples BEFORE batch")
    elif sizes[:7] == [16] * 7:
        hint = "repeat comes before batch, so batches run across the epoch boundary: batch, then repeat"
    elif sizes == [16, 16, 16] * 2:
        hint = ("each epoch's short last batch (12) was dropped: batch(batch_size) without drop_remainder, so every "
                "example is seen")
    else:
        hint = "shuffle, map, batch(16), then repeat(num_epochs)"
    assert sizes == [16, 16, 16, 12] * 2, (
        f"make_dataset: expected batch sizes [16, 16, 16, 12] in each of 2 epochs of 60, got {sizes}: {hint}"
    )
    assert not all(i == list(range(i[0], i[0] + len(i))) for i in ids), (
        "make_dataset: every batch holds consecutive examples (the batches are shuffled, not the examples): shuffle BEFORE batch"
    )
    epochs = [np.concatenate([b for _, b in got[:4]]), np.concatenate([b for _, b in got[4:]])]
    for e, order in enumerate(epochs):
        assert sorted(order) == list(range(60)), (
            f"make_dataset: epoch {e + 1} should hold every example once, got {len(set(order))} distinct of 60: shuffle "
            "with a buffer of all N examples, and repeat after batching"
        )
    assert list(epochs[0]) != list(range(60)), "make_dataset: the examples came in order: shuffle them (with the seed)"
    assert list(epochs[0]) != list(epochs[1]), "make_dataset: both epochs came in the same order: reshuffle each epoch"
    for images_b, labels_b in got:
        problem = _mismatch(images_b, images[labels_b] / np.float32(255.0))
        assert problem is None, f"make_dataset(augment_data=False): an image should be its own pixels / 255: {problem}"


def _eager_batches(images, labels, seed, count, **kwargs):
    tf.random.set_seed(SEED)
    return [(np.asarray(a), np.asarray(b)) for a, b in n09.make_dataset(images, labels, seed=seed, **kwargs).take(count)]


@pytest.mark.covers("make_dataset", "augment", "normalize")
@pytest.mark.restraint
def test_dataset_same_seed_same_batches():
    images, labels = _mnist_images(48), np.arange(48)
    a = _eager_batches(images, labels, 11, 4, batch_size=16)
    b = _eager_batches(images, labels, 11, 4, batch_size=16)
    c = _eager_batches(images, labels, 12, 4, batch_size=16)
    for (ia, la), (ib, lb) in zip(a, b):
        assert np.array_equal(la, lb), "make_dataset: the same seed must give the same order: shuffle(..., seed=seed)"
        assert np.array_equal(ia, ib), "make_dataset: the same seed must give the same augmentation: pass the seed to augment"
    assert any(not np.array_equal(la, lc) for (_, la), (_, lc) in zip(a, c)), "make_dataset: seeds 11 and 12 gave the same order"


@pytest.mark.covers("make_dataset", "augment", "normalize")
def test_dataset_augments_each_example():
    images, labels = _mnist_images(64), np.arange(64)
    flips = 0
    for xb, yb in n09.make_dataset(images, labels, batch_size=32, seed=5, noise_stddev=0.05, num_epochs=1):
        xb, yb = np.asarray(xb), np.asarray(yb)
        assert xb.shape == (32, 28, 28, 1) and xb.dtype == np.float32, f"got {xb.dtype} {xb.shape}"
        assert xb.min() >= 0.0 and xb.max() <= 1.0, f"augmented pixels must stay in [0, 1], got [{xb.min()}, {xb.max()}]"
        for image, label in zip(xb, yb):
            same, mirror = _nearest(image, images[label] / np.float32(255.0))
            assert min(same, mirror) < 0.4, f"example {label}: neither the image nor its mirror plus small noise"
            flips += mirror < same
    print(f"n09 dataset: {flips}/64 examples flipped")
    assert 16 <= flips <= 48, f"about half the examples should be flipped, got {flips}/64: pass augment_data through"


@pytest.mark.covers("make_dataset")
def test_dataset_passes_noise_stddev_on():
    images, labels = _mnist_images(32), np.arange(32)
    for xb, yb in n09.make_dataset(images, labels, batch_size=32, seed=5, noise_stddev=0.0, num_epochs=1):
        for image, label in zip(np.asarray(xb), np.asarray(yb)):
            same, mirror = _nearest(image, images[label] / np.float32(255.0))
            assert min(same, mirror) < 1e-6, (
                f"make_dataset(..., noise_stddev=0.0): example {label} is neither the image nor its mirror exactly "
                f"(off by {min(same, mirror):.3f}): with no noise only the flip remains; pass noise_stddev on, "
                "augment(image, seed, noise_stddev)"
            )


# =========================================================================== hunting a NaN
BENIGN = np.array([[2.0, 1.0, 0.1, -1.0], [0.5, 0.5, 3.0, 0.0]], np.float32)
CRAFTED = np.array([[2.0, 1.0, 0.1, -1.0], [200.0, 0.0, 0.0, 0.0]], np.float32)  # p = exp(-200) -> 0
LABELS = np.array([[1, 0, 0, 0], [1, 0, 0, 0]], np.float32)


def _numpy_cross_entropy(labels, logits):
    z = logits.astype(np.float64)
    log_softmax = z - z.max(axis=1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(axis=1, keepdims=True))
    return float(np.mean(-(labels * log_softmax).sum(axis=1)))


@pytest.mark.covers("naive_cross_entropy", "stable_cross_entropy")
def test_naive_and_stable_agree_on_a_benign_batch():
    ref = _numpy_cross_entropy(LABELS, BENIGN)
    for fn in (n09.naive_cross_entropy, n09.stable_cross_entropy):
        value = fn(tf.constant(LABELS), tf.constant(BENIGN))
        assert value.shape.ndims == 0, f"{fn.__name__} should return a scalar, got {value.shape}"
        value = float(value)
        hint = "sum over the classes, then the mean over the batch"
        if np.isclose(value, ref / 4, rtol=1e-4):
            hint = "that is the mean over every entry (1/4 of it): reduce_sum over axis 1, then reduce_mean"
        elif np.isclose(value, ref * 2, rtol=1e-4):
            hint = "that is the SUM over the batch: take the mean over the batch"
        elif any(np.isclose(value, read.mean(), rtol=1e-4) for read in logits_read_as_probabilities(LABELS, BENIGN)):
            hint = ("the logits were read as probabilities (a Keras loss's default from_logits=False): "
                    "tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits), or from_logits=True")
        assert np.isclose(value, ref, rtol=1e-4), f"{fn.__name__}: expected {ref:.5f}, got {value:.5f}: {hint}"


@pytest.mark.covers("naive_cross_entropy")
def test_naive_loss_is_nan_eagerly():
    eager = float(n09.naive_cross_entropy(tf.constant(LABELS), tf.constant(CRAFTED)))
    traced = float(tf.function(n09.naive_cross_entropy)(tf.constant(LABELS), tf.constant(CRAFTED)))
    print(f"n09 naive loss on the crafted batch: {eager} eagerly, {traced} inside a tf.function (Grappler's rewrite)")
    assert np.isnan(eager), (
        f"naive_cross_entropy: run eagerly the naive loss should be NaN here (softmax underflows to 0, log(0) = -inf, 0 * -inf = NaN), got "
        f"{eager}: write -labels * tf.math.log(tf.nn.softmax(logits)), not a stable form"
    )



@pytest.mark.covers("naive_cross_entropy")
def test_naive_cross_entropy_has_its_name_scope():
    spec = tf.TensorSpec([None, 3], tf.float32)
    graph = tf.function(n09.naive_cross_entropy).get_concrete_function(spec, spec).graph
    names = [op.name for op in graph.get_operations() if op.type in ("Softmax", "Log")]
    assert names and all(name.startswith("cross_entropy/") for name in names), (
        f"naive_cross_entropy: its ops should live in tf.name_scope('cross_entropy') as the docstring says (the name "
        f"TensorBoard shows, and what a NaN check reports), got the softmax and log ops {names}"
    )


def _check_numerics_left_on():
    """True when check_numerics is still on (log(0) raises); it is switched off again either way."""
    try:
        tf.math.log(tf.constant(0.0))
        return False
    except tf.errors.InvalidArgumentError:
        tf.debugging.disable_check_numerics()
        return True


LEFT_ON = (
    "first_bad_op: check_numerics was still on after the call ({how}; a log(0) run after it raised): the switch "
    "is global to the process and "
    "slows every op; call tf.debugging.disable_check_numerics() in a finally, so it runs whatever fn does"
)


@pytest.mark.covers("first_bad_op", "naive_cross_entropy")  # the stable loss only as one that has no bad op
def test_first_bad_op_names_the_log():
    labels, crafted = tf.constant(LABELS), tf.constant(CRAFTED)
    found = {}
    for name, fn in (("eager", n09.naive_cross_entropy), ("traced", tf.function(n09.naive_cross_entropy)),
                     ("stable", n09.stable_cross_entropy)):
        try:
            found[name] = n09.first_bad_op(fn, labels, crafted)
        finally:
            left_on = _check_numerics_left_on()
        assert not left_on, LEFT_ON.format(how=f"on the {name} loss, returning {found.get(name)!r}")
    eager, traced, clean = found["eager"], found["traced"], found["stable"]
    print(f"n09 first_bad_op: eager {eager!r}, in a tf.function {traced!r}, stable loss {clean!r}")
    assert eager == "Log", (
        f"the first non-finite output of the naive loss is the Log's (log of a 0 probability), got {eager!r}: return "
        "the op named in the message 'of eagerly-executing op \"Log\"'"
    )
    assert traced == "Log", (
        f"inside a tf.function the message says 'of graph op \"Log\"'; expected 'Log', got {traced!r}: "
        "enable_check_numerics works in tf.functions too"
    )
    assert clean is None, f"the stable loss is finite on the crafted batch: first_bad_op should return None, got {clean!r}"


@pytest.mark.covers("first_bad_op")
def test_first_bad_op_lets_other_errors_through_and_cleans_up():
    def broken():
        raise ValueError("not a numerics problem")

    try:
        must_raise(lambda: n09.first_bad_op(broken), ValueError,
                   "first_bad_op: fn raised ValueError('not a numerics problem'), which first_bad_op must let through "
                   "(it returned instead): catch only tf.errors.InvalidArgumentError from check_numerics, re-raise "
                   "one whose message names no op, and let every other exception pass")
    finally:
        left_on = _check_numerics_left_on()
    assert not left_on, LEFT_ON.format(how="fn raised a ValueError")
    try:
        assert n09.first_bad_op(lambda: tf.constant(1.0) + 1.0) is None, "first_bad_op of a finite computation should be None"
    finally:
        left_on = _check_numerics_left_on()
    assert not left_on, LEFT_ON.format(how="a finite computation")


@pytest.mark.covers("stable_cross_entropy")
def test_stable_loss_is_finite_and_matches_numpy():
    logits = tf.constant(CRAFTED)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = n09.stable_cross_entropy(tf.constant(LABELS), logits)
    gradient = np.asarray(tape.gradient(value, logits))
    ref = _numpy_cross_entropy(LABELS, CRAFTED)
    assert np.isfinite(float(value)) and np.isfinite(gradient).all(), (
        f"stable_cross_entropy gives {float(value)} (gradient {gradient[1].tolist()}) on logits whose softmax underflows: "
        "use tf.nn.softmax_cross_entropy_with_logits on the logits"
    )
    assert np.isclose(float(value), ref, rtol=1e-4), (
        f"stable_cross_entropy: expected {ref:.6f} (numpy log-softmax), got {float(value):.6f}: the batch mean"
    )
    assert tf.is_tensor(value) and value.dtype == tf.float32, (
        f"stable_cross_entropy: expected a float32 scalar tensor (the docstring's dtype), got "
        f"{value.dtype.name if tf.is_tensor(value) else type(value).__name__}: no cast"
    )


@pytest.mark.covers("stable_cross_entropy")
def test_stable_loss_charges_a_confident_wrong_prediction_in_full():
    """The label's own probability underflows (its logit 200 below another's): the loss is 200, not a capped value
    (an epsilon or clip inside the log, the blog's "fix", gives -log(eps), about 18 or 23)."""
    wrong = np.array([[200.0, 0.0, 0.0, 0.0]], np.float32)
    label = np.array([[0, 1, 0, 0]], np.float32)
    value = float(n09.stable_cross_entropy(tf.constant(label), tf.constant(wrong)))
    ref = _numpy_cross_entropy(label, wrong)
    assert np.isfinite(value) and np.isclose(value, ref, rtol=1e-4), (
        f"stable_cross_entropy: a confident wrong prediction (the label's logit 200 below another's) must cost "
        f"{ref:.1f}, got {value:.4g}: an epsilon or clip inside the log caps the loss at -log(eps); use "
        "tf.nn.softmax_cross_entropy_with_logits on the logits, no epsilon"
    )


# =========================================================================== migrating k09's checkpoint
K09_KEYS = {
    "layer1/weights/Variable": "layer1/kernel",
    "layer1/biases/Variable": "layer1/bias",
    "layer2/weights/Variable": "layer2/kernel",
    "layer2/biases/Variable": "layer2/bias",
}


def _tf1_checkpoint(folder, names=None, input_dim=784, hidden=32, classes=10, step=42):
    """A TF 1 Saver checkpoint shaped like k09's (weights, Adam slots, beta powers, global_step), made
    here with known values. Returns (path, {checkpoint key: array})."""
    names = names or K09_KEYS
    shapes = {"layer1/kernel": (input_dim, hidden), "layer1/bias": (hidden,), "layer2/kernel": (hidden, classes),
              "layer2/bias": (classes,)}
    rng = np.random.RandomState(5)
    values = {}
    with fresh_graph():
        for key, target in names.items():
            for suffix in ("", "/Adam", "/Adam_1"):  # the slots have the same shapes and other values
                values[key + suffix] = rng.uniform(-0.3, 0.3, shapes[target]).astype(np.float32)
                tf.compat.v1.get_variable(key + suffix, initializer=values[key + suffix])
        global_step = tf.compat.v1.train.get_or_create_global_step()
        tf.compat.v1.get_variable("train/beta1_power", initializer=np.float32(0.9 ** step))
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as s:
            s.run(tf.compat.v1.global_variables_initializer())
            s.run(global_step.assign(step))
            path = saver.save(s, str(folder / "model"), global_step=step)
    return path, values


@pytest.mark.covers("k09_name_map")
def test_k09_name_map_skips_adams_slots(tmp_path):
    path, _ = _tf1_checkpoint(tmp_path)
    try:
        mapping = n09.k09_name_map(path)
    except ValueError as exc:
        slots = "/Adam" in str(exc)
        error = str(exc).splitlines()[0][:160]
    else:
        slots = error = None
    if slots:  # outside the except block: no chained traceback
        pytest.fail(f"k09_name_map: k09's checkpoint also holds Adam's two slots under each weight ('.../Adam', "
                    f"'.../Adam_1'); they are not the model's weights: skip the names that contain '/Adam' before "
                    f"looking for exactly one variable per prefix (yours raised: {error})", pytrace=False)
    assert error is None, f"k09_name_map on k09's own checkpoint raised ValueError: {error}"
    assert mapping == K09_KEYS, (
        f"k09_name_map: expected the map {K09_KEYS}, got {mapping}: list the keys with tf.train.list_variables(path); each layer's "
        "weights and biases are the names under '<layer>/weights/' and '<layer>/biases/' that are not Adam's slots "
        "('/Adam', '/Adam_1')"
    )
    renamed = {k.replace("/Variable", "/W" if "weights" in k else "/b"): v for k, v in K09_KEYS.items()}
    path2, _ = _tf1_checkpoint(tmp_path / "renamed", names=renamed)
    try:
        mapping2 = n09.k09_name_map(path2)
    except ValueError as exc:
        error = str(exc).splitlines()[0][:160]
    else:
        error = None
    if error is not None:  # outside the except block: no chained traceback
        pytest.fail("k09_name_map raised ValueError on a valid checkpoint whose variables are named W and b: find "
                    "each name by its '<layer>/<scope>/' prefix alone (not an Adam slot), whatever follows it; do not "
                    f"expect 'Variable' (keys {sorted(renamed)}; yours raised: {error})", pytrace=False)
    assert mapping2 == renamed, (
        f"k09_name_map: a k09 whose variables are named W and b gives the keys {sorted(renamed)}; expected {renamed}, got {mapping2}: "
        "find the names by their scope prefix, do not hard-code 'Variable'"
    )


@pytest.mark.covers("k09_name_map")
def test_k09_name_map_raises_unless_exactly_one(tmp_path):
    missing = {k: v for k, v in K09_KEYS.items() if k != "layer2/biases/Variable"}
    twice = dict(K09_KEYS, **{"layer1/weights/Variable_1": "layer1/kernel"})
    cases = (
        ("a checkpoint without layer2's biases", missing, "layer2/biases/"),
        ("a checkpoint with two variables under 'layer1/weights/' (Variable and Variable_1: k09's graph built twice)",
         twice, "layer1/weights/"),
    )
    for k, (what, names, prefix) in enumerate(cases):
        path, _ = _tf1_checkpoint(tmp_path / str(k), names=names, input_dim=3, hidden=2, classes=2)
        try:
            got = n09.k09_name_map(path)
        except ValueError as exc:
            message = str(exc)
        except NotImplementedError:
            raise  # the stub: TODO
        except Exception as exc:  # noqa: BLE001 - what escaped is the finding
            pytest.fail(
                f"k09_name_map on {what} raised {type(exc).__name__} ({str(exc).splitlines()[0][:80]}) instead of a "
                f"ValueError naming the prefix {prefix!r} and the keys seen: check that exactly one name (not one of "
                "Adam's slots) is under each prefix",
                pytrace=False,
            )
        else:
            pytest.fail(
                f"k09_name_map on {what} returned {got} instead of raising ValueError: exactly one name (not one of "
                f"Adam's slots) must be under {prefix!r}; when there is not, raise ValueError naming the prefix and the "
                "keys seen",
                pytrace=False,
            )
        assert prefix in message, f"k09_name_map: the ValueError for {what} should name the prefix {prefix!r}, got: {message}"
        assert any(name in message for name in names), (
            f"k09_name_map: the ValueError for {what} should name the keys seen in the checkpoint, got: {message}"
        )


@pytest.mark.covers("load_k09_checkpoint", "k09_name_map")
def test_load_k09_checkpoint_places_every_array(tmp_path):
    path, values = _tf1_checkpoint(tmp_path, input_dim=12, hidden=5, classes=3, step=42)
    model = n09.build_model(input_dim=12, hidden_dim=5, num_classes=3)
    step = n09.load_k09_checkpoint(model, path)
    assert isinstance(step, int) and step == 42, (
        f"load_k09_checkpoint should return the checkpoint's global_step 42 as an int, got {step!r}: "
        "int(reader.get_tensor('global_step'))"
    )
    got = _weights_of(model)
    for key, target in K09_KEYS.items():
        if np.array_equal(got[target], values[key]):
            continue
        wrong = next((k for k, v in values.items() if v.shape == got[target].shape and np.array_equal(got[target], v)), None)
        why = f"it holds {wrong}" if wrong else "it holds none of the checkpoint's arrays"
        if wrong and "/Adam" in wrong:
            why += " — one of Adam's slots, not the weight; skip the names containing '/Adam'"
        pytest.fail(f"{target} should hold k09's {key} ({why}): reader.get_tensor(key) into the layer's attribute", pytrace=False)


# =========================================================================== equivalence with k09
def _k09_graph_batches(images, labels, seed, count, **kwargs):
    """The first ``count`` batches of the same target's k09 make_dataset, read in graph mode."""
    with fresh_graph():
        batch = k09.next_batch(k09.make_dataset(images, labels, seed=seed, **kwargs))
        with tf.compat.v1.Session() as s:
            return [s.run(batch) for _ in range(count)]


@pytest.mark.needs("k09")
@pytest.mark.covers("make_dataset", "augment", "normalize")
def test_dataset_same_batches_as_k09():
    """The same seeds give the same stream: k09's graph iterator and n09's eager loop, augmentation included."""
    images, labels = _mnist_images(48), np.arange(48)
    theirs = _k09_graph_batches(images, labels, 11, 6, batch_size=16)
    ours = _eager_batches(images, labels, 11, 6, batch_size=16)
    worst = 0.0
    for i, ((ti, tl), (oi, ol)) in enumerate(zip(theirs, ours)):
        assert np.array_equal(tl, ol), (
            f"make_dataset: batch {i}: k09 read labels {tl[:6].tolist()}..., n09 {ol[:6].tolist()}...: with the same "
            "global seed (graph seed / tf.random.set_seed) the same shuffle(N, seed=seed) over all N examples gives the "
            "same order; keep k09's stages"
        )
        diff = np.abs(ti - oi)
        worst = max(worst, float(diff.max()))
        assert diff.max() <= 1e-6, (
            f"batch {i}: n09's images differ from k09's ({_where(diff)}): the same ops with the same op seeds draw the "
            "same numbers: random_flip_left_right(seed=seed), random.normal(seed=seed + 1), in k09's order"
        )
    print(f"n09 vs k09 pipeline: 6 batches of 16, labels equal, max |image diff| {worst:.3g}")


def _k09_steps(x, y, steps, batch_size=32, learning_rate=1e-3):
    """The same target's k09 model: its initial weights, the losses of ``steps`` train steps on
    batch_for_step batches, and its weights afterwards, keyed as n09's layers."""
    with fresh_graph():
        model = k09.build_model(input_dim=x.shape[1], learning_rate=learning_rate)
        variables = {}
        for v in tf.compat.v1.trainable_variables():
            layer, scope = v.op.name.split("/")[:2]
            variables[f"{layer}/{'kernel' if scope == 'weights' else 'bias'}"] = v
        with tf.compat.v1.Session() as s:
            s.run(tf.compat.v1.global_variables_initializer())
            rng = np.random.RandomState(3)  # biases all 0.1 would hide a missing bias: make them differ
            for name, v in variables.items():
                if name.endswith("bias"):
                    v.load(rng.uniform(-0.1, 0.3, v.shape.as_list()).astype(np.float32), s)
            before = s.run(variables)
            losses = []
            for step in range(steps):
                xb, yb = k09.batch_for_step(x, y, step, batch_size)
                losses.append(float(s.run([model["loss"], model["train_op"]], {model["x"]: xb, model["y"]: yb})[0]))
            return before, losses, s.run(variables)


@pytest.mark.needs("k09")
@pytest.mark.covers("make_train_step", "make_optimizer", "build_model")
def test_train_steps_as_k09():
    """Five Adam 1e-3 steps from k09's weights on k09's batches: the same losses and the same weights."""
    x, y, *_ = mnist_flat(N_TRAIN, N_TEST)
    before, losses, after = _k09_steps(x, y, 5)
    model = n09.build_model(input_dim=784)
    _set_weights(model, before)
    step = n09.make_train_step(model, n09.make_optimizer(1e-3))
    ours = []
    for i in range(5):
        idx = (i * 32 + np.arange(32)) % len(x)
        ours.append(float(step(tf.constant(x[idx]), tf.constant(y[idx]))))
    assert np.allclose(ours, losses, rtol=1e-5), (
        f"the n09 step's losses {np.round(ours, 5).tolist()} differ from k09's {np.round(losses, 5).tolist()}: the mean "
        "sparse softmax cross-entropy of the logits, returned before the update"
    )
    worst = 0.0
    for name, value in _weights_of(model).items():
        diff = np.abs(value - after[name])
        worst = max(worst, float(diff.max()))
        assert diff.max() <= 2e-6, (  # measured below 1e-7 with the reference
            f"after 5 steps n09's {name} differs from k09's ({_where(diff)}; k09 moved it by up to "
            f"{np.abs(after[name] - before[name]).max():.2g}): the optimizer should be Adam(1e-3, epsilon=1e-8) as "
            "TF 1's AdamOptimizer, applied to every trainable variable"
        )
    print(f"n09 vs k09 after 5 Adam steps: losses equal to rtol 1e-5, max |weight diff| {worst:.3g}")


@pytest.fixture(autouse=True)
def _check_numerics_off():
    """A first_bad_op that leaves check_numerics on fails its own test; the tests after it must not fail too."""
    yield
    tf.debugging.disable_check_numerics()


@pytest.fixture(scope="module")
def k09_checkpoint(tmp_path_factory):
    """The same target's k09: 20 steps with train_with_checkpoints, then its logits from the restored checkpoint."""
    x, y, x_test, _ = mnist_flat(N_TRAIN, N_TEST)
    folder = tmp_path_factory.mktemp("n09_from_k09")
    with fresh_graph():
        k09.train_with_checkpoints((x, y), str(folder), 20, save_every=10)
    path = tf.train.latest_checkpoint(str(folder))
    with fresh_graph():
        model = k09.build_model(input_dim=784)
        variables = {}
        for v in tf.compat.v1.trainable_variables():
            layer, scope = v.op.name.split("/")[:2]
            variables[f"{layer}/{'kernel' if scope == 'weights' else 'bias'}"] = v
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as s:
            saver.restore(s, path)
            logits = s.run(model["logits"], {model["x"]: x_test})
            weights = s.run(variables)
            names = {key: v.op.name for key, v in variables.items()}
    return {"path": path, "logits": logits, "weights": weights, "names": names, "images": x_test}


def _port_problem(reference, model):
    """None when the Keras model computes k09's numbers, else one line naming the mapping that is off."""
    images = reference["images"]
    hidden = np.asarray(model.get_layer("layer1")(tf.constant(images)))
    expected_hidden = np.maximum(images @ reference["weights"]["layer1/kernel"] + reference["weights"]["layer1/bias"], 0)
    logits = np.asarray(model(tf.constant(images), training=False))
    for what, got, expected, targets in (
        ("layer1's output", hidden, expected_hidden, ("layer1/kernel", "layer1/bias")),
        ("the logits", logits, reference["logits"], ("layer2/kernel", "layer2/bias")),
    ):
        diff = np.abs(got - expected)
        scale = max(1.0, float(np.abs(expected).max()))
        if diff.max() > 1e-5 * scale:
            weights = _weights_of(model)
            off = [t for t in targets if not np.allclose(weights[t], reference["weights"][t], atol=1e-7)] or list(targets)
            mapping = "; ".join(f"{t} <- k09's {reference['names'][t]}" for t in off)
            return f"the port differs from k09 at {what} ({_where(diff)}, values up to {scale:.3g}): {mapping}"
    return None


@pytest.mark.needs("k09")
@pytest.mark.covers("load_k09_checkpoint", "k09_name_map", "build_model")
def test_same_predictions_from_k09s_checkpoint(k09_checkpoint):
    model = n09.build_model(input_dim=784)
    step = n09.load_k09_checkpoint(model, k09_checkpoint["path"])
    assert step == 20, f"k09 saved its checkpoint at global step 20, load_k09_checkpoint returned {step!r}"
    problem = _port_problem(k09_checkpoint, model)
    assert problem is None, problem
    logits = np.asarray(model(tf.constant(k09_checkpoint["images"]), training=False))
    diff = float(np.abs(logits - k09_checkpoint["logits"]).max())
    print(f"n09 from k09's Saver checkpoint: max |logits diff| {diff:.3g} on {len(logits)} test digits "
          f"(logits up to {np.abs(k09_checkpoint['logits']).max():.3g})")
    assert np.array_equal(np.argmax(logits, 1), np.argmax(k09_checkpoint["logits"], 1)), (
        "the migrated model predicts other classes than k09"
    )


@pytest.mark.needs("k09")
@pytest.mark.covers("build_model")
def test_wrong_ports_are_rejected(k09_checkpoint):
    """The equivalence check above must be able to fail: each wrong port is caught, and the message names the mapping."""
    reader = tf.train.load_checkpoint(k09_checkpoint["path"])
    names = k09_checkpoint["names"]
    wrong = (
        ("layer1's kernel from Adam's first slot", "layer1/kernel", reader.get_tensor(names["layer1/kernel"] + "/Adam")),
        ("layer1's kernel from Adam's second slot", "layer1/kernel", reader.get_tensor(names["layer1/kernel"] + "/Adam_1")),
        ("layer2's bias left at its initial 0.1", "layer2/bias", np.full(10, 0.1, np.float32)),
        ("layer1's bias left at its initial 0.1", "layer1/bias", np.full(32, 0.1, np.float32)),
    )
    for what, target, array in wrong:
        model = n09.build_model(input_dim=784)
        _set_weights(model, k09_checkpoint["weights"])
        layer, attribute = target.split("/")
        getattr(model.get_layer(layer), attribute).assign(array)
        problem = _port_problem(k09_checkpoint, model)
        assert problem is not None, f"the equivalence check accepted a wrong port: {what}"
        assert f"{target} <- k09's {names[target]}" in problem, f"for {what} the message should name {target}, got: {problem}"
        print(f"n09 wrong port rejected ({what}): {problem}")


# =========================================================================== differential checks (reference)
# The learner's functions against solutions/ on generated cases, smallest first (tfkata.differential).
# Functions that take a model get the REFERENCE's build_model with fixed weights; build_model itself gets
# the reference's weights copied in by order once the shapes agree. Random ops (augment, make_dataset) are
# compared under the same global seed (eager_outputs sets it), as k09's graph and n09 are compared above.
# Skipped: train_with_summaries and train_with_checkpoints (training loops, graded above by their
# bookkeeping and by the training runs below).
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from tfkata.differential import Case, compare, eager_outputs, reference  # noqa: E402


def _ref():
    return reference("n09")


_MADE = {}


def _made_once(key, make):
    """A folder prepared once per case (a saved checkpoint) and shared by the reference's and the learner's runs:
    what they read is the same, and nothing is saved twice."""
    if key not in _MADE:
        if not _MADE:
            _MADE["root"] = Path(tempfile.mkdtemp(prefix="n09-differential-"))
            atexit.register(shutil.rmtree, _MADE["root"], ignore_errors=True)
        folder = _MADE["root"] / str(len(_MADE))
        folder.mkdir()
        _MADE[key] = make(folder)
    return _MADE[key]


def _reference_model(input_dim=6, hidden=4, classes=3, seed=0):
    model = _ref().build_model(input_dim=input_dim, hidden_dim=hidden, num_classes=classes)
    _set_weights(model, _small_weights(input_dim, hidden, classes, seed))
    return model


def _x(shape, seed, scale=1.0):
    return (np.random.RandomState(seed).standard_normal(shape) * scale).astype(np.float32)


_KEPT_WEIGHTS = {}


def _give_reference_weights(mod, case, what, model):
    shapes = [list(np.shape(w)) for w in model.get_weights()]
    if mod is _ref():
        rng = np.random.RandomState(91)
        _KEPT_WEIGHTS[case.label] = [rng.uniform(-1, 1, s).astype(np.float32) for s in shapes]
    values = _KEPT_WEIGHTS[case.label]
    want = [list(v.shape) for v in values]
    if shapes != want:
        raise AssertionError(f"{what}: your model's weights have shapes {shapes}, the reference's {want} (in the "
                             "order of get_weights()), so they cannot get the same weights")
    model.set_weights(values)


def _run_build_model(mod, case):
    dims, x = case.args

    def call():
        model = mod.build_model(*dims)
        _give_reference_weights(mod, case, f"build_model{dims}", model)
        return {"layers": [layer.name for layer in model.layers], "logits": model(tf.constant(x), training=False)}

    return eager_outputs(call)


BUILD_MODEL_CASES = [
    Case("build_model(1, 1, 1) on x of shape [1, 1]", ((1, 1, 1), _x([1, 1], 1))),
    Case("build_model(3, 5, 2) on x of shape [2, 3] with negative values", ((3, 5, 2), _x([2, 3], 2))),
    Case("build_model(6, 4, 3) on x of shape [4, 6]", ((6, 4, 3), _x([4, 6], 3))),
]


@pytest.mark.differential
@pytest.mark.covers("build_model")
def test_build_model_matches_reference():
    compare("build_model", n09, _ref(), BUILD_MODEL_CASES, _run_build_model, atol=1e-5,
            hint="keras.Input((input_dim,)), Dense(hidden_dim, relu, name='layer1'), Dense(num_classes, name='layer2')")


EVALUATE_CASES = [
    Case("one example x [1, 6] with label [2]", (_x([1, 6], 11), [2])),
    Case("x [5, 6] with labels [0, 0, 1, 2, 2] (repeated)", (_x([5, 6], 12, 2.0), [0, 0, 1, 2, 2])),
    Case("all-zero x [3, 6] (every row the same logits) with labels [0, 1, 2]", (np.zeros([3, 6], np.float32), [0, 1, 2])),
]


@pytest.mark.differential
@pytest.mark.covers("evaluate")
def test_evaluate_matches_reference():
    def run(mod, case):
        x, labels = case.args
        return eager_outputs(lambda: list(mod.evaluate(_reference_model(), tf.constant(x),
                                                       tf.constant(labels, tf.int64))))

    compare("evaluate", n09, _ref(), EVALUATE_CASES, run,
            hint="(mean sparse softmax cross-entropy of model(images, training=False), mean of argmax(logits, 1) == labels)")


def _run_optimizer(mod, case):
    optimizer = mod.make_optimizer() if case.args is None else mod.make_optimizer(case.args)
    v = tf.Variable([1.0, -2.0, 0.5])
    values = []
    for g in ([0.1, -0.3, 0.0], [1e-6, 2.0, -1e-5], [0.2, 0.2, 0.2]):
        optimizer.apply_gradients([(tf.constant(g), v)])
        values.append(v.numpy())
    return values


OPTIMIZER_CASES = [
    Case("make_optimizer() for three steps (one gradient of 1e-6, where epsilon shows)", None),
    Case("make_optimizer(0.1) for the same three steps", 0.1),
]


@pytest.mark.differential
@pytest.mark.covers("make_optimizer")
def test_make_optimizer_matches_reference():
    compare("make_optimizer", n09, _ref(), OPTIMIZER_CASES, _run_optimizer,
            hint="keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8)")


def _run_train_step(mod, case):
    batches, optimizer = case.args
    model = _reference_model(seed=5)
    tf.config.run_functions_eagerly(True)  # the same numbers without tracing (the tracing is tested above)
    try:
        step = mod.make_train_step(model, keras.optimizers.SGD(0.5) if optimizer == "sgd" else
                                   keras.optimizers.Adam(0.05, epsilon=1e-8))
        losses = [step(tf.constant(x), tf.constant(y, tf.int64)) for x, y in batches]
    finally:
        tf.config.run_functions_eagerly(False)
    return eager_outputs(lambda: {"losses": losses, "weights after": model.get_weights()})


TRAIN_STEP_CASES = [
    Case("one SGD(0.5) step on one example", ([(_x([1, 6], 21), [1])], "sgd")),
    Case("three Adam(0.05) steps on batches [4, 6], [4, 6], [2, 6]",
         ([(_x([4, 6], 22), [0, 1, 2, 2]), (_x([4, 6], 23), [1, 1, 0, 2]), (_x([2, 6], 24), [2, 0])], "adam")),
]


@pytest.mark.differential
@pytest.mark.covers("make_train_step")
def test_make_train_step_matches_reference():
    compare("make_train_step", n09, _ref(), TRAIN_STEP_CASES, _run_train_step, atol=1e-5,
            hint="under a tape the mean sparse cross-entropy of model(images, training=True); apply the gradients of "
                 "model.trainable_variables; return the loss before the update")


def _run_variable_summaries(mod, case):
    values, as_variable = case.args
    with tempfile.TemporaryDirectory(prefix="n09-differential-") as folder:
        writer = tf.summary.create_file_writer(folder)
        try:
            with writer.as_default(), tf.name_scope("layer1"), tf.name_scope("weights"):
                for step, scale in ((1, 1.0), (4, -2.0)):
                    var = values * np.float32(scale)
                    mod.variable_summaries(tf.Variable(var) if as_variable else tf.constant(var), step)
        finally:
            writer.close()
        events = _read_events(Path(folder))
    flags = {f"{step}/{tag} is NaN": bool(np.isnan(v).any()) for step, tags in events.items() for tag, v in tags.items()}
    return {"events": {step: events[step] for step in sorted(events)}, "NaN": flags}


SUMMARIES_CASES = [
    Case("a variable with one entry [0.5], at steps 1 and 4", (np.array([0.5], np.float32), True)),
    Case("a [2, 3] tensor (not a variable) with negative values", (_x([2, 3], 31), False)),
    Case("a variable of values near 1000 with a small spread, [1000.1, 1000.2, 1000.3, 1000.1]",
         (np.array([1000.1, 1000.2, 1000.3, 1000.1], np.float32), True)),
]


@pytest.mark.differential
@pytest.mark.covers("variable_summaries")
def test_variable_summaries_matches_reference():
    compare("variable_summaries", n09, _ref(), SUMMARIES_CASES, _run_variable_summaries, atol=1e-5, rtol=1e-4,
            hint="inside tf.name_scope('summaries'): scalars mean, stddev = sqrt(mean((var - mean)^2)), max, min and "
                 "histogram 'histogram', each at step=step")


def _run_open_writers(mod, case):
    with tempfile.TemporaryDirectory(prefix="n09-differential-") as root:
        log_dir = str(Path(root, *case.args))
        writers = mod.open_writers(log_dir)
        try:
            for value, writer in enumerate(writers):
                with writer.as_default():
                    tf.summary.scalar("probe", float(value), step=value)
        finally:
            for writer in writers:
                writer.close()
        found = {}
        for path in sorted(Path(root).rglob("events.out.tfevents.*")):
            found[str(path.parent.relative_to(root))] = _read_events(path.parent)
        return found


OPEN_WRITERS_CASES = [
    Case("log_dir 'logs'", ("logs",)),
    Case("log_dir 'runs/a b/1' (nested, not made yet, a space)", ("runs", "a b", "1")),
]


@pytest.mark.differential
@pytest.mark.covers("open_writers")
def test_open_writers_matches_reference():
    compare("open_writers", n09, _ref(), OPEN_WRITERS_CASES, _run_open_writers,
            hint="(tf.summary.create_file_writer(<log_dir>/train), tf.summary.create_file_writer(<log_dir>/test))")


def _checkpoint_parts(steps, seed=0):
    x, y = _toy_data(32, 6)
    model = _reference_model(seed=seed)
    optimizer = keras.optimizers.Adam(1e-2)
    iterator = iter(tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).batch(8).repeat())
    for _ in range(steps):
        _one_step(model, optimizer, *next(iterator))
    return model, optimizer, iterator


def _run_make_checkpoint(mod, case):
    with tempfile.TemporaryDirectory(prefix="n09-differential-") as folder:
        path = mod.make_checkpoint(*_checkpoint_parts(case.args)).write(str(Path(folder, "ckpt")))
        return sorted(f"{name} {shape}" for name, shape in tf.train.list_variables(path))


MAKE_CHECKPOINT_CASES = [
    Case("a model, an Adam and an iterator after 1 step", 1),
    Case("the same after 3 steps", 3),
]


@pytest.mark.differential
@pytest.mark.covers("make_checkpoint")
def test_make_checkpoint_matches_reference():
    compare("make_checkpoint", n09, _ref(), MAKE_CHECKPOINT_CASES, _run_make_checkpoint,
            hint="tf.train.Checkpoint(model=model, optimizer=optimizer, data=iterator)")


def _saved_steps(saved_steps):
    def make(folder):
        if saved_steps:
            model, optimizer, iterator = _checkpoint_parts(max(saved_steps))
            saved = tf.train.Checkpoint(model=model, optimizer=optimizer, data=iterator)
            manager = tf.train.CheckpointManager(saved, str(folder), max_to_keep=3)
            for step in saved_steps:
                manager.save(checkpoint_number=step)
        return str(folder)
    return make


def _run_restore_latest(mod, case):
    folder = _made_once(("restore", case.args), _saved_steps(case.args))
    model, optimizer, iterator = _checkpoint_parts(0, seed=3)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, data=iterator)
    try:
        step = mod.restore_latest(checkpoint, tf.train.CheckpointManager(checkpoint, folder, max_to_keep=3))
    except mod.CheckpointError:
        return {"raises": "CheckpointError"}
    return {"step": step, "type": type(step).__name__, "weights": model.get_weights()}


RESTORE_CASES = [
    Case("an empty directory", ()),
    Case("a directory where step 2 was saved", (2,)),
    Case("a directory where steps 1 and 3 were saved (the latest is 3)", (1, 3)),
]


@pytest.mark.differential
@pytest.mark.covers("restore_latest")
def test_restore_latest_matches_reference():
    compare("restore_latest", n09, _ref(), RESTORE_CASES, _run_restore_latest,
            hint="CheckpointError when manager.latest_checkpoint is None; else restore it, "
                 "assert_existing_objects_matched(), return int(checkpoint.optimizer.iterations)")


NORMALIZE_CASES = [
    Case("uint8 [[0]]", np.array([[0]], np.uint8)),
    Case("uint8 [2, 3] with 1, 128, 255", np.array([[1, 128, 255], [255, 0, 7]], np.uint8)),
    Case("uint8 image [2, 2, 1]", np.array([[[3], [250]], [[64], [255]]], np.uint8)),
]


@pytest.mark.differential
@pytest.mark.covers("normalize")
def test_normalize_matches_reference():
    def run(mod, case):
        out = mod.normalize(tf.constant(case.args))
        return {"values": np.asarray(out), "dtype": tf.as_dtype(out.dtype).name}

    compare("normalize", n09, _ref(), NORMALIZE_CASES, run, hint="tf.cast(image, tf.float32) / 255.0")


def _run_augment(mod, case):
    image, seed, stddev, calls = case.args
    return eager_outputs(lambda: [mod.augment(tf.constant(image), seed=seed, noise_stddev=stddev) for _ in range(calls)],
                         keras=False)


def _image(shape, seed):
    return (np.random.RandomState(seed).randint(0, 256, shape) / 255.0).astype(np.float32)


AUGMENT_CASES = [
    Case("one [1, 2, 1] image, noise 0 (only the flip), 4 calls", (_image([1, 2, 1], 41), 3, 0.0, 4)),
    Case("a [3, 4, 1] image, noise 0.1, 3 calls with seed 7", (_image([3, 4, 1], 42), 7, 0.1, 3)),
]


@pytest.mark.differential
@pytest.mark.covers("augment")
def test_augment_matches_reference():
    compare("augment", n09, _ref(), AUGMENT_CASES, _run_augment,
            hint="tf.image.random_flip_left_right(image, seed=seed), + tf.random.normal(tf.shape(image), "
                 "stddev=noise_stddev, seed=seed + 1), clipped to [0, 1]: the same ops with the same op seeds")


def _run_make_dataset(mod, case):
    n, batch_size, seed, kwargs, take = case.args
    images = (np.arange(n * 4).reshape(n, 2, 2, 1) * 7 % 256).astype(np.uint8)
    labels = np.arange(n)
    return eager_outputs(lambda: [list(b) for b in mod.make_dataset(images, labels, batch_size, seed, **kwargs).take(take)],
                         keras=False)


MAKE_DATASET_CASES = [
    Case("1 example, batch 1, no augmentation, 1 epoch", (1, 1, 3, dict(augment_data=False, num_epochs=1), 5)),
    Case("7 examples, batch 3 (a short last batch), no augmentation, 2 epochs",
         (7, 3, 5, dict(augment_data=False, num_epochs=2), 10)),
    Case("20 examples, batch 8, augmented (noise 0.05), 2 epochs", (20, 8, 11, dict(num_epochs=2), 10)),
]


@pytest.mark.differential
@pytest.mark.covers("make_dataset")
def test_make_dataset_matches_reference():
    compare("make_dataset", n09, _ref(), MAKE_DATASET_CASES, _run_make_dataset,
            hint="from_tensor_slices, shuffle(N, seed=seed, reshuffle_each_iteration=True), map(normalize, augment), "
                 "batch(batch_size), repeat(num_epochs), in that order")


CROSS_ENTROPY_CASES = [
    Case("one row, labels [[0, 1]], logits [[0.5, -0.5]]", (np.array([[0, 1]], np.float32), np.array([[0.5, -0.5]], np.float32))),
    Case("the benign batch [2, 4]", (LABELS, BENIGN)),
    Case("soft labels [[0.25, 0.75, 0, 0]] and tied logits", (np.array([[0.25, 0.75, 0, 0]], np.float32), np.zeros([1, 4], np.float32))),
    Case("the crafted batch [2, 4] (a probability underflows to 0)", (LABELS, CRAFTED)),
]


def _run_cross_entropy(name):
    def run(mod, case):
        labels, logits = case.args
        value = eager_outputs(lambda: getattr(mod, name)(tf.constant(labels), tf.constant(logits)))
        return {"value": value, "NaN": bool(np.isnan(value).any())}  # difference() takes NaN for any number
    return run


@pytest.mark.differential
@pytest.mark.covers("naive_cross_entropy")
def test_naive_cross_entropy_matches_reference():
    compare("naive_cross_entropy", n09, _ref(), CROSS_ENTROPY_CASES, _run_cross_entropy("naive_cross_entropy"),
            hint="the tutorial's -labels * tf.math.log(tf.nn.softmax(logits)), summed over the classes, averaged over "
                 "the batch (NaN on the crafted batch, eagerly)")


@pytest.mark.differential
@pytest.mark.covers("stable_cross_entropy")
def test_stable_cross_entropy_matches_reference():
    compare("stable_cross_entropy", n09, _ref(), CROSS_ENTROPY_CASES, _run_cross_entropy("stable_cross_entropy"),
            hint="tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))")


def _bad_sqrt():
    return tf.sqrt(tf.constant([4.0, -1.0]))


@tf.function
def _traced_division(x):
    return 1.0 / x


FIRST_BAD_OP_CASES = [
    Case("a finite computation, 1 + 1", (lambda: tf.constant(1.0) + 1.0, ())),
    Case("tf.sqrt of [4, -1] eagerly", (_bad_sqrt, ())),
    Case("tf.math.log of [1, 0] eagerly", (lambda x: tf.math.log(x), (tf.constant([1.0, 0.0]),))),
    Case("1 / x inside a tf.function, x = [2, 0]", (_traced_division, (tf.constant([2.0, 0.0]),))),
]


@pytest.mark.differential
@pytest.mark.covers("first_bad_op")
def test_first_bad_op_matches_reference():
    def run(mod, case):
        fn, args = case.args
        try:
            return mod.first_bad_op(fn, *args)
        finally:
            tf.debugging.disable_check_numerics()

    compare("first_bad_op", n09, _ref(), FIRST_BAD_OP_CASES, run,
            hint="enable_check_numerics, call fn, return the op TYPE quoted in the InvalidArgumentError "
                 "('of eagerly-executing op \"Log\"' / 'of graph op \"...\"'), None when all is finite; disable in a finally")


def _run_name_map(mod, case):
    names, dims = case.args
    path, _ = _made_once(("name map", case.label), lambda folder: _tf1_checkpoint(
        folder, names=names, input_dim=dims[0], hidden=dims[1], classes=dims[2]))
    try:
        return mod.k09_name_map(path)
    except ValueError:
        return "raises ValueError"


NAME_MAP_CASES = [
    Case("k09's names (layer1/weights/Variable ...), dims 2, 1, 2", (K09_KEYS, (2, 1, 2))),
    Case("names ending in W and b", ({k.replace("/Variable", "/W" if "weights" in k else "/b"): v
                                      for k, v in K09_KEYS.items()}, (3, 2, 2))),
    Case("a checkpoint without layer2's biases", ({k: v for k, v in K09_KEYS.items() if k != "layer2/biases/Variable"},
                                                   (3, 2, 2))),
]


@pytest.mark.differential
@pytest.mark.covers("k09_name_map")
def test_k09_name_map_matches_reference():
    compare("k09_name_map", n09, _ref(), NAME_MAP_CASES, _run_name_map,
            hint="for each layer and (scope, attribute) of K09_SCOPES, the ONE key under '<layer>/<scope>/' without "
                 "'/Adam'; ValueError when there is not exactly one")


def _run_load_k09(mod, case):
    dims, step = case.args
    path, _ = _made_once(("load", case.args), lambda folder: _tf1_checkpoint(
        folder, input_dim=dims[0], hidden=dims[1], classes=dims[2], step=step))
    model = _ref().build_model(*dims)
    got = mod.load_k09_checkpoint(model, path)
    return {"step": got, "type": type(got).__name__, "weights": _weights_of(model)}


LOAD_K09_CASES = [
    Case("dims 1, 1, 1 at global step 0", ((1, 1, 1), 0)),
    Case("dims 4, 3, 2 at global step 42", ((4, 3, 2), 42)),
]


@pytest.mark.differential
@pytest.mark.covers("load_k09_checkpoint")
def test_load_k09_checkpoint_matches_reference():
    compare("load_k09_checkpoint", n09, _ref(), LOAD_K09_CASES, _run_load_k09,
            hint="reader.get_tensor(key) into model.get_layer(layer).kernel / .bias for every key of k09_name_map; "
                 "return int(reader.get_tensor('global_step'))")


# =========================================================================== training (short, graded as k09's)
@pytest.fixture(scope="module")
def summaries_run(tmp_path_factory):
    """k09's graded summaries run: 41 steps, evaluate every 10, batch 32, Adam 5e-3."""
    import time

    log_dir = tmp_path_factory.mktemp("n09_summaries")
    keras.utils.set_random_seed(SEED)
    start = time.perf_counter()
    history = n09.train_with_summaries(mnist_flat(N_TRAIN, N_TEST), str(log_dir), num_steps=41, eval_every=10, batch_size=32,
                                       learning_rate=5e-3)
    return {"history": history, "log_dir": log_dir, "seconds": time.perf_counter() - start}


@pytest.mark.training
@pytest.mark.timeout(300)
@pytest.mark.points(3)
@pytest.mark.covers("train_with_summaries", "open_writers", "variable_summaries", "evaluate", "make_train_step",
                    "make_optimizer", "build_model")
def test_summaries_run_cuts_the_test_loss(summaries_run):
    history, log_dir = summaries_run["history"], summaries_run["log_dir"]
    test_events = _read_events(log_dir / "test")
    assert sorted(test_events) == [0, 10, 20, 30, 40], f"test summaries at 0, 10, ..., 40, got {sorted(test_events)}"
    first, last = test_events[0]["cross_entropy"], test_events[40]["cross_entropy"]
    accuracy = test_events[40]["accuracy"]
    print(f"n09 summaries: test loss {first:.3f} (step 0) -> {last:.3f} (step 40), test accuracy {accuracy:.3f}, "
          f"{summaries_run['seconds']:.1f} s (k09 on the same budget: 2.309 -> 0.799)")
    # Measured (TF 2.12 and 2.21): 2.308 -> 0.710, accuracy 0.750; k09 2.309 -> 0.799. k09's threshold, the same budget.
    assert last < 0.6 * first, (
        f"36 Adam steps (lr 5e-3) should cut the test loss by 40 %+ (measured 2.31 -> 0.71, k09 2.31 -> 0.80), got "
        f"{first:.3f} -> {last:.3f}; training losses {[round(history['train'][s], 3) for s in sorted(history['train'])][::6]}"
    )
    assert accuracy > 0.6, f"test accuracy after 40 steps should pass 60 % (measured 0.75), got {accuracy:.3f}"


@pytest.fixture(scope="module")
def checkpoint_runs(tmp_path_factory):
    """50 steps, then resumed to 100, in folder a; 100 straight in folder b (k09's graded runs)."""
    import time

    x, y, *_ = mnist_flat(N_TRAIN, N_TEST)
    root = tmp_path_factory.mktemp("n09_ckpt")
    start = time.perf_counter()
    keras.utils.set_random_seed(SEED)
    first = n09.train_with_checkpoints((x, y), str(root / "a"), 50, save_every=10)
    resumed = n09.train_with_checkpoints((x, y), str(root / "a"), 100, save_every=10, resume=True)
    keras.utils.set_random_seed(SEED)
    straight = n09.train_with_checkpoints((x, y), str(root / "b"), 100, save_every=10)
    return {"first": first, "resumed": resumed, "straight": straight, "root": root,
            "seconds": time.perf_counter() - start}


@pytest.mark.training
@pytest.mark.timeout(300)
@pytest.mark.covers("train_with_checkpoints", "restore_latest", "make_checkpoint", "make_optimizer", "make_train_step",
                    "build_model")
def test_checkpoints_saved_every_n_steps(checkpoint_runs):
    first, resumed = checkpoint_runs["first"], checkpoint_runs["resumed"]
    assert (first["start_step"], first["global_step"], first["saved_steps"]) == (0, 50, [10, 20, 30, 40, 50]), (
        f"a fresh run starts at 0, ends at 50 and saves every 10 steps, got {first['start_step']}, "
        f"{first['global_step']}, {first['saved_steps']}"
    )
    assert (resumed["start_step"], resumed["saved_steps"]) == (50, [60, 70, 80, 90, 100]), (
        f"resuming starts at 50 and saves at 60..100, got {resumed['start_step']} and {resumed['saved_steps']}"
    )
    kept = sorted(p.name for p in (checkpoint_runs["root"] / "b").glob("ckpt-*.index"))
    assert kept == [f"ckpt-{s}.index" for s in (100, 60, 70, 80, 90)], (
        f"CheckpointManager(max_to_keep=5) keeps the newest five, ckpt-60 .. ckpt-100; the folder holds {kept}"
    )


@pytest.mark.training
@pytest.mark.timeout(300)
@pytest.mark.points(3)
@pytest.mark.covers("train_with_checkpoints", "restore_latest", "make_checkpoint", "make_optimizer", "make_train_step",
                    "build_model")
def test_resumed_run_equals_straight_run_bit_for_bit(checkpoint_runs):
    resumed, straight = checkpoint_runs["resumed"], checkpoint_runs["straight"]
    problem = _resume_problem(resumed, straight, "50 + 50 steps and 100 straight steps")
    assert problem is None, problem
    tensors = _checkpoint_tensors(straight["checkpoint"])
    print(f"n09 checkpoints: 50 + 50 steps == 100 straight steps, bit for bit, in all {len(tensors)} checkpointed "
          f"tensors (weights, Adam slots, step); 3 runs {checkpoint_runs['seconds']:.1f} s")
