"""Graded tests for k04 · MNIST with a CNN.

Order: the input pipeline, the helpers (variables, conv, pool, fc), the model's shapes and
variables, dropout, loss and metrics, evaluation, the picture, and training last. Every test runs in
a fresh seeded tf.Graph (the harness's autouse fixture); the graded training run is done once in a
module-scoped fixture that builds its own seeded graph and is read by two tests.

Graded training (seeded): 600 steps x 100, Adam 1e-3, keep_prob 0.5 -> 98.34 % test accuracy with the
reference solution on TF 2.21 (threshold 97.5 %). The schedules behind `slow` and `gpu` are described
at their tests.
"""
import struct
import time
from types import SimpleNamespace

import numpy as np
import pytest

from tfkata import SEED, fresh_graph, load_kata
from tfkata.data.mnist import load_mnist
from tfkata.state import output_dir
from tfkata.tfsetup import import_tensorflow

tf = import_tensorflow()  # quietly: without the CUDA/oneDNN lines a plain import prints

k04 = load_kata("k04_cnn_mnist")


# --------------------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def raw():
    """The verified uint8 MNIST arrays (harness side, cached per process)."""
    return load_mnist()


@pytest.fixture(scope="module")
def mnist():
    """The kata's read_data_sets(seed=SEED); the tests using it never call next_batch on it."""
    return k04.read_data_sets(seed=SEED)


def _test_images(raw, n):
    """The first n test digits as the network's input, computed here (not by the kata)."""
    return raw["x_test"][:n].reshape(n, 784).astype(np.float32) / 255.0


def _toy_dataset(n, seed):
    """A DataSet whose row i is all i (so a batch tells which examples it holds) and label i % 10."""
    images = np.repeat(np.arange(n, dtype=np.float32)[:, None], 784, axis=1)
    labels = np.eye(10, dtype=np.float32)[np.arange(n) % 10]
    return k04.DataSet(images, labels, seed=seed)


def _ids(batch):
    images, _ = batch
    return [int(v) for v in images[:, 0]]


def _trainable():
    return {v.name: v.shape.as_list() for v in tf.compat.v1.trainable_variables()}


def _run_init(sess):
    sess.run(tf.compat.v1.global_variables_initializer())


# --------------------------------------------------------------------------- input pipeline
def test_preprocess_images_shape_and_dtype(raw):
    x = k04.preprocess_images(raw["x_test"][:100])
    assert isinstance(x, np.ndarray), f"expected a numpy array, got {type(x).__name__}"
    assert x.shape == (100, 784), (
        f"expected shape (100, 784), got {x.shape}: flatten each 28x28 image into one row of 784 pixels"
    )
    assert x.dtype == np.float32, f"expected float32 pixels, got {x.dtype}: use .astype(np.float32)"


def test_preprocess_images_range(raw):
    x = k04.preprocess_images(raw["x_test"][:1000])
    low, high = float(x.min()), float(x.max())
    assert high <= 1.0, f"pixels go up to {high}: normalise to [0, 1] by dividing by 255"
    assert (low, high) == (0.0, 1.0), (
        f"expected pixels spanning exactly [0.0, 1.0] (0 -> 0.0, 255 -> 1.0), got [{low}, {high}]: divide by 255"
    )
    expected = raw["x_test"][:1000].reshape(1000, 784).astype(np.float32) / 255.0
    np.testing.assert_allclose(
        x, expected, atol=1e-6, err_msg="row n must be image n flattened row by row (reshape), divided by 255"
    )


def test_one_hot():
    labels = np.array([3, 0, 9, 3, 5], dtype=np.uint8)
    y = k04.one_hot(labels)
    assert isinstance(y, np.ndarray) and y.shape == (5, 10), (
        f"expected a numpy array of shape (5, 10), got {getattr(y, 'shape', type(y).__name__)}"
    )
    assert y.dtype == np.float32, f"expected float32 labels (the y_ placeholder is float32), got {y.dtype}"
    np.testing.assert_array_equal(y, np.eye(10, dtype=np.float32)[labels], err_msg="row i must be 1.0 at labels[i]")


def test_read_data_sets_split_sizes(mnist):
    sizes = tuple(split.num_examples for split in mnist)
    assert sizes == (55000, 5000, 10000), (
        f"expected train / validation / test of 55000 / 5000 / 10000 examples, got {sizes}"
    )
    for name, split in zip(("train", "validation", "test"), mnist):
        n = split.num_examples
        assert split.images.shape == (n, 784) and split.images.dtype == np.float32, (
            f"{name}.images: expected float32 ({n}, 784), got {split.images.dtype} {split.images.shape}"
        )
        assert split.labels.shape == (n, 10) and split.labels.dtype == np.float32, (
            f"{name}.labels: expected one-hot float32 ({n}, 10), got {split.labels.dtype} {split.labels.shape}"
        )


def test_read_data_sets_split_contents(mnist, raw):
    x_train = raw["x_train"].reshape(60000, 784)
    checks = (
        ("validation", mnist.validation, x_train[:5000], raw["y_train"][:5000]),
        ("train", mnist.train, x_train[5000:], raw["y_train"][5000:]),
        ("test", mnist.test, raw["x_test"].reshape(10000, 784), raw["y_test"]),
    )
    for name, split, images, labels in checks:
        assert np.array_equal(np.argmax(split.labels, axis=1), labels), (
            f"{name}: labels are not those of the raw data in order. Validation must be the FIRST 5000 "
            "training digits and train the other 55,000 (as input_data did), unshuffled: shuffling "
            "belongs in next_batch"
        )
        assert np.allclose(split.images[::25] * 255.0, images[::25], atol=1e-3), (
            f"{name}: images do not match the raw digits / 255 in order (did images and labels get "
            "split or reordered differently?)"
        )


def test_next_batch_shapes_and_pairs():
    ds = _toy_dataset(10, seed=0)
    assert ds.num_examples == 10, f"expected num_examples 10, got {ds.num_examples}"
    images, labels = ds.next_batch(4)
    assert images.shape == (4, 784) and labels.shape == (4, 10), (
        f"expected a batch of (4, 784) images and (4, 10) labels, got {images.shape} and {labels.shape}"
    )
    ids = np.array(_ids((images, labels)))
    assert np.array_equal(np.argmax(labels, axis=1), ids % 10), (
        "images and labels of a batch no longer belong together: index both with the SAME permutation"
    )


def test_next_batch_epoch_has_every_example_once():
    ds = _toy_dataset(10, seed=3)
    ids = []
    for _ in range(5):  # 20 examples = 2 epochs of 10; the third batch crosses the epoch boundary
        ids += _ids(ds.next_batch(4))
    for epoch in (0, 1):
        got = ids[10 * epoch : 10 * (epoch + 1)]
        assert sorted(got) == list(range(10)), (
            f"epoch {epoch + 1} should hold every one of the 10 examples exactly once, got {got}: walk a "
            "permutation and finish a batch that crosses the end with the start of the next epoch"
        )


def test_next_batch_reshuffles_each_epoch():
    ds = _toy_dataset(50, seed=5)
    first, second = _ids(ds.next_batch(50)), _ids(ds.next_batch(50))
    assert first != list(range(50)), "the first epoch came in the original order: shuffle before it too"
    assert first != second, "the second epoch came in the same order as the first: draw a new permutation each epoch"


def test_next_batch_is_seeded():
    runs = []
    for seed, global_seed in ((7, 1), (7, 2), (8, 1)):
        ds = _toy_dataset(20, seed=seed)
        np.random.seed(global_seed)  # must not matter: the DataSet has its own RandomState
        runs.append([_ids(ds.next_batch(8)) for _ in range(4)])
    assert runs[0] == runs[1], (
        "two DataSets with the same seed gave different batches: shuffle with your own "
        "np.random.RandomState(seed), not the global np.random"
    )
    assert runs[0] != runs[2], "seeds 7 and 8 gave the same batches: use the seed argument"


# --------------------------------------------------------------------------- helpers
def test_weight_variable_init_stats(sess):
    w = k04.weight_variable([200, 500])
    assert isinstance(w, tf.Variable), f"expected a tf.Variable, got {type(w).__name__}"
    assert w.shape.as_list() == [200, 500] and w.dtype.base_dtype == tf.float32, (
        f"expected a float32 variable of shape [200, 500], got {w.dtype} {w.shape}"
    )
    _run_init(sess)
    value = sess.run(w)
    biggest = float(np.abs(value).max())
    assert biggest <= 0.2 + 1e-6, (
        f"found a weight of {biggest:.3f}, beyond 2 standard deviations (0.2): use a TRUNCATED normal "
        "(tf.random.truncated_normal), not tf.random.normal"
    )
    std, mean = float(value.std()), float(value.mean())
    # A normal(0, 0.1) truncated at 2 sigma has std 0.1 * 0.8796 = 0.088.
    assert 0.084 < std < 0.092, f"expected std about 0.088 (stddev=0.1 before truncation), got {std:.4f}"
    assert abs(mean) < 0.002, f"expected mean about 0, got {mean:.4f}"


def test_bias_variable_init(sess):
    b = k04.bias_variable([7])
    assert isinstance(b, tf.Variable) and b.shape.as_list() == [7], (
        f"expected a tf.Variable of shape [7], got {type(b).__name__} {getattr(b, 'shape', None)}"
    )
    _run_init(sess)
    value = sess.run(b)
    assert value.dtype == np.float32 and np.all(value == np.float32(0.1)), (
        f"every bias should start at 0.1 (float32), got {value}"
    )


def test_variable_names():
    w, b = k04.weight_variable([3, 3]), k04.bias_variable([3])
    named = k04.weight_variable([2], name="kernel")
    got = [w.name, b.name, named.name]
    assert got == ["W:0", "b:0", "kernel:0"], (
        f"expected the names ['W:0', 'b:0', 'kernel:0'], got {got}: pass name=name to tf.Variable"
    )


def test_conv2d_same_padding(sess):
    x = tf.constant(np.ones((1, 3, 3, 1), np.float32))
    kernel = tf.constant(np.ones((3, 3, 1, 1), np.float32))
    out = k04.conv2d(x, kernel)
    shape = out.shape.as_list()
    assert shape == [1, 3, 3, 1], (
        f"expected shape [1, 3, 3, 1] (SAME padding, stride 1 keep 3x3), got {shape}: "
        "[1, 1, 1, 1] means VALID padding, [1, 2, 2, 1] a stride of 2"
    )
    # Zero padding: a corner sees 4 ones, an edge 6, the centre 9.
    expected = np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]], np.float32)
    np.testing.assert_array_equal(sess.run(out)[0, :, :, 0], expected, err_msg="SAME pads the border with zeros")
    wide = k04.conv2d(tf.compat.v1.placeholder(tf.float32, [None, 28, 28, 1]), tf.zeros([5, 5, 1, 32]))
    assert wide.shape.as_list() == [None, 28, 28, 32], f"expected [B, 28, 28, 32], got {wide.shape.as_list()}"


def test_max_pool_2x2_values(sess):
    x = tf.constant(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1))
    out = k04.max_pool_2x2(x)
    shape = out.shape.as_list()
    assert shape == [1, 2, 2, 1], (
        f"expected [1, 2, 2, 1] from a 4x4 input, got {shape}: did max_pool_2x2 use stride 2 (strides=[1, 2, 2, 1])?"
    )
    got = sess.run(out)[0, :, :, 0]
    np.testing.assert_array_equal(got, [[5, 7], [13, 15]], err_msg="each output is the max of one 2x2 block")


def test_max_pool_2x2_same_padding(sess):
    x = tf.constant(np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1))
    out = k04.max_pool_2x2(x)
    shape = out.shape.as_list()
    why = (
        "did max_pool_2x2 use stride 2 (strides=[1, 2, 2, 1])?"
        if shape[1:3] == [5, 5]
        else "use padding='SAME' (the last row and column form blocks of their own)"
    )
    assert shape == [1, 3, 3, 1], f"expected [1, 3, 3, 1] from a 5x5 input, got {shape}: {why}"
    np.testing.assert_array_equal(sess.run(out)[0, :, :, 0], [[6, 8, 9], [16, 18, 19], [21, 23, 24]])


def test_fc_layer_variables_and_shape():
    x = tf.compat.v1.placeholder(tf.float32, [None, 30])
    out = k04.fc_layer(x, out_dim=7, scope="dense")
    assert out.shape.as_list() == [None, 7], f"expected [B, 7], got {out.shape.as_list()}"
    got = _trainable()
    assert got == {"dense/W:0": [30, 7], "dense/b:0": [7]}, (
        f"expected variables dense/W [30, 7] and dense/b [7], got {got}: build them inside "
        "tf.compat.v1.variable_scope(scope) with weight_variable and bias_variable"
    )


def test_fc_layer_activation(sess):
    x_value = np.random.RandomState(0).standard_normal((4, 30)).astype(np.float32)
    x = tf.constant(x_value)
    relu_out = k04.fc_layer(x, out_dim=7, scope="hidden")
    linear_out = k04.fc_layer(x, out_dim=7, scope="readout", activation=None)
    _run_init(sess)
    variables = {v.name: v for v in tf.compat.v1.trainable_variables()}
    w1, b1, w2, b2 = sess.run([variables[n] for n in ("hidden/W:0", "hidden/b:0", "readout/W:0", "readout/b:0")])
    got_relu, got_linear = sess.run([relu_out, linear_out])
    np.testing.assert_allclose(
        got_relu, np.maximum(x_value @ w1 + b1, 0), rtol=1e-5, atol=1e-5, err_msg="default: relu(x @ W + b)"
    )
    np.testing.assert_allclose(
        got_linear, x_value @ w2 + b2, rtol=1e-5, atol=1e-5, err_msg="activation=None: x @ W + b, no ReLU"
    )


def test_conv_and_pool_shape_and_variables():
    x = tf.compat.v1.placeholder(tf.float32, [None, 28, 28, 3])
    out = k04.conv_and_pool(x, kernel_size=3, out_channel=8, scope="block")
    assert out.shape.as_list() == [None, 14, 14, 8], (
        f"expected [B, 14, 14, 8], got {out.shape.as_list()}: conv (stride 1, SAME) then 2x2 pooling with stride 2"
    )
    got = _trainable()
    assert got == {"block/W:0": [3, 3, 3, 8], "block/b:0": [8]}, (
        f"expected block/W [3, 3, 3, 8] (kernel, kernel, in channels, out channels) and block/b [8], got {got}"
    )


def test_conv_and_pool_values(sess):
    x_value = np.random.RandomState(1).standard_normal((2, 6, 6, 2)).astype(np.float32)
    out = k04.conv_and_pool(tf.constant(x_value), kernel_size=3, out_channel=4, scope="block")
    _run_init(sess)
    variables = {v.name: v for v in tf.compat.v1.trainable_variables()}
    w, b = sess.run([variables["block/W:0"], variables["block/b:0"]])
    pre = tf.nn.conv2d(x_value, w, strides=1, padding="SAME") + b
    expected = sess.run(tf.nn.max_pool2d(tf.nn.relu(pre), ksize=2, strides=2, padding="SAME"))
    got = sess.run(out)
    assert got.min() >= 0, "negative outputs: apply ReLU to conv2d(x, W) + b before pooling"
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg="expected max_pool_2x2(relu(conv2d(x, W) + b))")


# --------------------------------------------------------------------------- the model
LAYER_SHAPES = {
    "x": [None, 784],
    "y_": [None, 10],
    "x_image": [None, 28, 28, 1],
    "conv1": [None, 14, 14, 32],
    "conv2": [None, 7, 7, 64],
    "conv2_flat": [None, 3136],
    "fc1": [None, 1024],
    "fc1_drop": [None, 1024],
    "logits": [None, 10],
}
LAYER_HINTS = {
    "conv1": "conv2d must keep 28x28 (stride 1, SAME padding) and max_pool_2x2 halve it (stride 2).",
    "conv2": "conv2 takes conv1's output; conv2d keeps the size (SAME), max_pool_2x2 halves it (stride 2).",
    "conv2_flat": "reshape conv2 to [-1, 7 * 7 * 64]",
}
VARIABLES = {
    "CNN/conv1/W:0": [5, 5, 1, 32],
    "CNN/conv1/b:0": [32],
    "CNN/conv2/W:0": [5, 5, 32, 64],
    "CNN/conv2/b:0": [64],
    "CNN/fc1/W:0": [3136, 1024],
    "CNN/fc1/b:0": [1024],
    "CNN/fc2/W:0": [1024, 10],
    "CNN/fc2/b:0": [10],
}


def test_build_cnn_placeholders():
    model = k04.build_cnn()
    assert isinstance(model, k04.Model), f"build_cnn must return a Model(...), got {type(model).__name__}"
    for name in ("x", "y_", "keep_prob"):
        tensor = getattr(model, name)
        assert tensor.op.type == "Placeholder" and tensor.dtype == tf.float32, (
            f"model.{name} should be a float32 tf.compat.v1.placeholder, got a {tensor.dtype.name} {tensor.op.type}"
        )
        assert tensor.name.startswith("CNN/"), f"model.{name} is {tensor.name}: build it inside variable_scope('CNN')"


def test_build_cnn_static_shapes():
    model = k04.build_cnn()
    for name, expected in LAYER_SHAPES.items():
        got = getattr(model, name).shape.as_list()
        assert got == expected, f"model.{name}: expected shape {expected}, got {got}. {LAYER_HINTS.get(name, '')}"


def test_build_cnn_runs_a_batch(sess, raw):
    model = k04.build_cnn()
    _run_init(sess)
    names = [n for n in LAYER_SHAPES if n not in ("x", "y_")]
    values = sess.run([getattr(model, n) for n in names], {model.x: _test_images(raw, 3), model.keep_prob: 1.0})
    for name, value in zip(names, values):
        expected = tuple([3] + LAYER_SHAPES[name][1:])
        assert value.shape == expected, f"model.{name} for a batch of 3: expected {expected}, got {value.shape}"


def test_build_cnn_variable_names():
    k04.build_cnn()
    got = _trainable()
    assert got == VARIABLES, (
        f"expected the trainable variables {VARIABLES}, got {got}: one scope per layer (conv1, conv2, fc1, fc2) "
        "inside variable_scope('CNN'), with W and b in each"
    )


@pytest.mark.points(2)
def test_build_cnn_parameter_count():
    k04.build_cnn()
    count = sum(int(np.prod(v.shape.as_list())) for v in tf.compat.v1.trainable_variables())
    assert count == 3274634, (
        f"expected 3,274,634 trainable parameters, got {count:,}: conv1 832 + conv2 51,264 + fc1 3,212,288 + fc2 10,250"
    )


def test_logits_are_linear(sess, raw):
    model = k04.build_cnn()
    _run_init(sess)
    variables = {v.name: v for v in tf.compat.v1.trainable_variables()}
    feed = {model.x: _test_images(raw, 100), model.keep_prob: 1.0}
    logits, fc1_drop, w, b = sess.run([model.logits, model.fc1_drop, variables["CNN/fc2/W:0"], variables["CNN/fc2/b:0"]], feed)
    linear = fc1_drop @ w + b
    assert not (np.allclose(logits, np.maximum(linear, 0), atol=1e-4) and linear.min() < 0), (
        "the logits are ReLU'd (no logit is below 0): the final layer must be linear "
        "(fc_layer(..., activation=None)); a ReLU there clamps the logits at 0 and kills their gradients"
    )
    np.testing.assert_allclose(logits, linear, rtol=1e-4, atol=1e-4, err_msg="logits must be fc1_drop @ fc2/W + fc2/b")


def test_dropout_identity_at_keep_prob_1(sess, raw):
    model = k04.build_cnn()
    _run_init(sess)
    fc1, fc1_drop = sess.run([model.fc1, model.fc1_drop], {model.x: _test_images(raw, 20), model.keep_prob: 1.0})
    np.testing.assert_array_equal(fc1_drop, fc1, err_msg=(
        "with keep_prob 1.0 dropout must change nothing: keep_prob is the probability of KEEPING a unit "
        "(tf.nn.dropout's rate is 1 - keep_prob)"
    ))


@pytest.mark.parametrize("keep_prob", [0.5, 0.8])
def test_dropout_scaling(sess, raw, keep_prob):
    model = k04.build_cnn()
    _run_init(sess)
    fc1, fc1_drop = sess.run([model.fc1, model.fc1_drop], {model.x: _test_images(raw, 50), model.keep_prob: keep_prob})
    active = fc1 > 0
    kept = active & (fc1_drop != 0)
    assert kept.any(), "every unit was dropped"
    ratios = fc1_drop[kept] / fc1[kept]
    np.testing.assert_allclose(
        ratios, 1.0 / keep_prob, rtol=1e-4,
        err_msg=f"kept units must be scaled by 1/keep_prob = {1 / keep_prob:g} (fc1_drop = dropout(fc1, keep_prob))",
    )
    assert np.all(fc1_drop[~kept] == 0), "a unit is either kept (scaled) or dropped (0)"
    kept_fraction = kept.sum() / active.sum()
    assert abs(kept_fraction - keep_prob) < 0.03, (
        f"with keep_prob {keep_prob} about {keep_prob:.0%} of the units should be kept, got {kept_fraction:.1%}: "
        "keep_prob is the probability of KEEPING a unit (in TF2 terms rate = 1 - keep_prob)"
    )


# --------------------------------------------------------------------------- loss and metrics
def test_loss_on_known_logits(sess):
    rng = np.random.RandomState(2)
    logits = rng.standard_normal((6, 10)).astype(np.float32) * 3
    labels = np.eye(10, dtype=np.float32)[rng.randint(0, 10, 6)]
    shifted = logits - logits.max(axis=1, keepdims=True)
    per_example = -(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))[labels.astype(bool)]
    out = k04.loss(tf.constant(logits), tf.constant(labels))
    assert out.shape.as_list() == [], f"expected a scalar loss, got shape {out.shape.as_list()}: average over the batch"
    got = float(sess.run(out))
    assert not np.isclose(got, per_example.sum(), rtol=1e-4), "the loss is the SUM over the batch: use tf.reduce_mean"
    assert np.isclose(got, per_example.mean(), rtol=1e-5), (
        f"expected the mean softmax cross-entropy {per_example.mean():.5f}, got {got:.5f}: use "
        "tf.nn.softmax_cross_entropy_with_logits(labels=..., logits=...) on the raw logits (no softmax before it)"
    )
    uniform = float(sess.run(k04.loss(tf.zeros([3, 10]), tf.constant(labels[:3]))))
    assert np.isclose(uniform, np.log(10.0), rtol=1e-5), f"all-zero logits must give log(10) = 2.302585, got {uniform}"


LOGITS = np.array([[0, 5, 1], [3, 0, 0], [0, 0, 1], [1, 2, 0]], np.float32)
LABELS = np.eye(3, dtype=np.float32)[[1, 0, 2, 0]]  # the last prediction (class 1) is wrong


def test_correct_prediction(sess):
    out = k04.correct_prediction(tf.constant(LOGITS), tf.constant(LABELS))
    assert out.dtype == tf.bool and out.shape.as_list() == [4], (
        f"expected a bool tensor of shape [4], got {out.dtype.name} {out.shape.as_list()}"
    )
    np.testing.assert_array_equal(sess.run(out), [True, True, True, False], err_msg="compare the argmax of logits and labels")


def test_n_correct_and_accuracy(sess):
    count = k04.n_correct(tf.constant(LOGITS), tf.constant(LABELS))
    acc = k04.accuracy(tf.constant(LOGITS), tf.constant(LABELS))
    for name, t in (("n_correct", count), ("accuracy", acc)):
        assert t.dtype == tf.float32 and t.shape.as_list() == [], (
            f"{name}: expected a float32 scalar, got {t.dtype.name} {t.shape.as_list()}: cast the bools to float32"
        )
    got = sess.run([count, acc])
    assert got == [3.0, 0.75], f"expected n_correct 3.0 and accuracy 0.75, got {got}"


def test_adam_train_step(sess):
    w = tf.Variable(0.0, name="w")
    op = k04.adam_train_step(tf.square(w - 1.0), learning_rate=0.01)
    assert isinstance(op, tf.Operation), f"expected the tf.Operation that minimize returns, got {type(op).__name__}"
    v = tf.Variable(0.0, name="v")
    default_op = k04.adam_train_step(tf.square(v - 1.0))
    slots = [x.name for x in tf.compat.v1.global_variables() if "Adam" in x.name]
    assert slots, "no Adam slot variables: use tf.compat.v1.train.AdamOptimizer"
    _run_init(sess)
    sess.run(op)
    sess.run(default_op)
    moved, moved_default = sess.run([w, v])
    # Adam's first step moves every parameter by about learning_rate, whatever its gradient.
    assert np.isclose(moved, 0.01, rtol=1e-3), (
        f"one Adam step at learning_rate 0.01 should move w from 0 to 0.01, got {moved:.5f} "
        "(gradient descent would give 0.02)"
    )
    assert np.isclose(moved_default, 1e-4, rtol=1e-3), f"the default learning rate is 1e-4; the step moved v to {moved_default:.2e}"


def test_build_training(sess, raw):
    model = k04.build_cnn()
    training = k04.build_training(model, learning_rate=1e-4)
    assert isinstance(training, k04.Training), f"build_training must return a Training(...), got {type(training).__name__}"
    assert isinstance(training.train_op, tf.Operation), "training.train_op must be the op from adam_train_step"
    _run_init(sess)
    images, labels = _test_images(raw, 20), np.eye(10, dtype=np.float32)[raw["y_test"][:20]]
    feed = {model.x: images, model.y_: labels, model.keep_prob: 1.0}
    logits, loss0, count, acc = sess.run([model.logits, training.loss, training.n_correct, training.accuracy], feed)
    hits = np.argmax(logits, 1) == raw["y_test"][:20]
    assert (count, acc) == (hits.sum(), np.float32(hits.mean())), (
        f"n_correct/accuracy should count argmax(logits) == label over the batch: expected {hits.sum()}, "
        f"{hits.mean()}, got {count}, {acc}"
    )
    for _ in range(3):
        sess.run(training.train_op, feed)
    loss3 = sess.run(training.loss, feed)
    assert loss3 < 0.8 * loss0, (
        f"three Adam steps (learning rate 1e-4) on one batch should lower its loss, went {loss0:.4f} -> {loss3:.4f}"
    )


# --------------------------------------------------------------------------- evaluation and prediction
def _dropout_model(n):
    """A stand-in Model: logits = dropout(the first 10 pixels); with keep_prob 1.0 every label is right."""
    rng = np.random.RandomState(4)
    x = tf.compat.v1.placeholder(tf.float32, [None, 784], name="x")
    y_ = tf.compat.v1.placeholder(tf.float32, [None, 10], name="y_")
    keep_prob = tf.compat.v1.placeholder(tf.float32, [], name="keep_prob")
    logits = tf.compat.v1.nn.dropout(x[:, :10], keep_prob=keep_prob)
    fields = dict.fromkeys(k04.Model._fields)
    fields.update(x=x, y_=y_, keep_prob=keep_prob, logits=logits)
    model = k04.Model(**fields)
    count = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1), tf.argmax(y_, 1)), tf.float32))
    images = rng.uniform(0.1, 1.0, (n, 784)).astype(np.float32)
    truth = np.argmax(images[:, :10], axis=1)
    return model, count, images, truth


class _Split:
    """A dataset with images/labels/num_examples whose next_batch must not be used by evaluate."""

    def __init__(self, images, labels):
        self.images, self.labels, self.num_examples = images, labels, len(images)

    def next_batch(self, batch_size):
        raise AssertionError("evaluate must walk dataset.images in order, not call next_batch")


def test_evaluate_turns_dropout_off(sess):
    model, count, images, truth = _dropout_model(150)
    got = k04.evaluate(sess, model, count, _Split(images, np.eye(10, dtype=np.float32)[truth]), batch_size=50)
    assert got == 1.0, (
        f"every prediction is right with dropout off, but evaluate reported {got:.4f}: dropout left on at "
        "test time? feed keep_prob 1.0"
    )


def test_evaluate_counts_every_example(sess):
    model, count, images, truth = _dropout_model(130)
    labels = truth.copy()
    labels[::3] = (labels[::3] + 1) % 10  # examples 0, 3, 6, ... are wrong: 86 of 130 are right
    got = k04.evaluate(sess, model, count, _Split(images, np.eye(10, dtype=np.float32)[labels]), batch_size=50)
    expected = float(np.mean(labels == truth))
    assert np.isclose(got, expected, rtol=1e-9), (
        f"expected accuracy {expected:.6f} over all 130 examples (batches of 50, 50, 30), got {got:.6f}: "
        "include the last, shorter batch, divide the total by dataset.num_examples, and feed keep_prob 1.0"
    )


def test_predict(sess):
    model, _, images, truth = _dropout_model(130)
    got = k04.predict(sess, model, images, batch_size=50)
    assert isinstance(got, np.ndarray) and got.shape == (130,), (
        f"expected an array of 130 class ids, got {getattr(got, 'shape', type(got).__name__)}: include the last batch"
    )
    assert np.issubdtype(got.dtype, np.integer), f"expected integer class ids, got {got.dtype}: take the argmax"
    np.testing.assert_array_equal(got, truth, err_msg="predictions differ from argmax(logits) with dropout off (keep_prob 1.0)")


# --------------------------------------------------------------------------- picture
def test_save_report_png(tmp_path):
    pytest.importorskip("matplotlib", reason="the picture needs matplotlib: pip install -e '.[test]'")
    rng = np.random.RandomState(0)
    images = rng.uniform(0, 1, (40, 784)).astype(np.float32)
    labels = np.arange(40) % 10
    predictions = labels.copy()
    predictions[::3] = (labels[::3] + 1) % 10
    history = [{"step": 100 * (i + 1), "loss": 1.0 / (i + 1), "val_accuracy": 0.9 + 0.01 * i} for i in range(6)]
    path = tmp_path / "report.png"
    k04.save_report(str(path), images, labels, predictions, history)
    assert path.is_file(), f"save_report wrote nothing at {path}"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"not a PNG file: it starts with {data[:8]!r}"
    assert data[12:16] == b"IHDR" and data[-8:-4] == b"IEND", "a PNG starts with an IHDR chunk and ends with IEND"
    size = struct.unpack(">II", data[16:24])
    assert size == (1200, 600), (
        f"expected a 1200 x 600 pixel image (figsize (12, 6) at dpi 100), got {size[0]} x {size[1]}: "
        "do not save with bbox_inches='tight'"
    )


# --------------------------------------------------------------------------- training
STEPS, BATCH, LEARNING_RATE, KEEP_PROB = 600, 100, 1e-3, 0.5


def _train_and_test(steps, batch_size, learning_rate, keep_prob):
    with fresh_graph():
        data = k04.read_data_sets(seed=SEED)
        model = k04.build_cnn()
        training = k04.build_training(model, learning_rate=learning_rate)
        with tf.compat.v1.Session() as sess:
            start = time.perf_counter()
            history = k04.train(sess, model, training, data, steps=steps, batch_size=batch_size, keep_prob=keep_prob)
            seconds = time.perf_counter() - start
            test_accuracy = k04.evaluate(sess, model, training.n_correct, data.test, batch_size=50)
            logits = [
                sess.run(model.logits, {model.x: data.test.images[i : i + 1000], model.keep_prob: 1.0})
                for i in range(0, data.test.num_examples, 1000)
            ]
    return SimpleNamespace(
        history=history,
        test_accuracy=test_accuracy,
        seconds=seconds,
        images=data.test.images,
        labels=np.argmax(data.test.labels, axis=1),
        predictions=np.argmax(np.concatenate(logits), axis=1),
    )


@pytest.fixture(scope="module")
def trained():
    """The graded run, once: 600 steps x 100, Adam 1e-3, keep_prob 0.5 (about 30 s on 2 idle CPU cores)."""
    return _train_and_test(STEPS, BATCH, LEARNING_RATE, KEEP_PROB)


@pytest.mark.points(3)
@pytest.mark.timeout(900)
def test_train_history(trained):
    steps = [h.get("step") for h in trained.history]
    assert steps == list(range(100, STEPS + 1, 100)), (
        f"expected one history entry every 100 steps, at steps {list(range(100, STEPS + 1, 100))}, got {steps}"
    )
    for h in trained.history:
        assert set(h) == {"step", "loss", "val_accuracy"}, f"expected keys step, loss, val_accuracy, got {sorted(h)}"
        assert np.isfinite(h["loss"]) and 0.0 <= h["val_accuracy"] <= 1.0, f"bad history entry {h}"
    first, last = trained.history[0], trained.history[-1]
    print(f"k04 history: loss {first['loss']:.4f} -> {last['loss']:.4f}, val acc {first['val_accuracy']:.4f} -> {last['val_accuracy']:.4f}")
    assert last["loss"] < first["loss"], f"the training loss did not fall: {first['loss']:.4f} -> {last['loss']:.4f}"
    assert last["val_accuracy"] >= 0.97, f"validation accuracy after {STEPS} steps is {last['val_accuracy']:.4f}, expected >= 0.97"


@pytest.mark.points(5)
@pytest.mark.timeout(900)
def test_training_reaches_test_accuracy(trained):
    acc = trained.test_accuracy
    line = (
        f"k04: {STEPS} steps x {BATCH}, Adam {LEARNING_RATE:g}, keep_prob {KEEP_PROB}: "
        f"test accuracy {acc:.4f} on 10,000 images, training {trained.seconds:.1f} s"
    )
    print(line)
    assert acc >= 0.975, f"{line}; expected >= 0.975 (measured 0.9834 with the reference solution)"


@pytest.mark.timeout(900)
def test_report_of_the_training_run(trained):
    """The picture of the graded run, written where `kata run` shows it: kata-output/k04/report.png."""
    pytest.importorskip("matplotlib", reason="the picture needs matplotlib: pip install -e '.[test]'")
    path = output_dir("k04") / "report.png"
    k04.save_report(str(path), trained.images, trained.labels, trained.predictions, trained.history)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (1200, 600), (
        f"{path} should be a 1200 x 600 PNG"
    )
    print(f"k04: {int(np.sum(trained.labels != trained.predictions))} misclassified test digits and the curve in {path}")


@pytest.mark.slow
@pytest.mark.points(3)
@pytest.mark.timeout(3600)
def test_training_longer_cpu_schedule():
    """A cheaper CPU twin of the tutorial's schedule: 3000 steps x 100, Adam 1e-3 -> >= 99.0 %.

    Measured with the reference solution (TF 2.21, seeded, bit-identical run to run): 99.12 %, training
    1123 s on 2 shared CPU cores. The margin is small (validation accuracy wobbles 98.9-99.2 % between
    checkpoints at this constant learning rate), so an implementation that draws its random numbers in
    another order may land near the line.
    """
    result = _train_and_test(3000, 100, 1e-3, 0.5)
    line = f"k04 slow: 3000 steps x 100, Adam 0.001: test accuracy {result.test_accuracy:.4f}, {result.seconds:.0f} s"
    print(line)
    assert result.test_accuracy >= 0.990, f"{line}; expected >= 0.990"


@pytest.mark.gpu
@pytest.mark.points(3)
@pytest.mark.timeout(3600)
def test_training_tutorial_schedule():
    """The tutorial's full schedule: 20,000 steps x 50, Adam 1e-4, keep_prob 0.5 -> >= 99.2 % (its headline)."""
    result = _train_and_test(20000, 50, 1e-4, 0.5)
    line = f"k04 gpu: 20000 steps x 50, Adam 0.0001: test accuracy {result.test_accuracy:.4f}, {result.seconds:.0f} s"
    print(line)
    assert result.test_accuracy >= 0.992, f"{line}; expected >= 0.992 (the tutorial's figure)"
