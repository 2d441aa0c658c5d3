"""Graded tests for k04 · MNIST with a CNN.

Order: the input pipeline, the helpers (variables, conv, pool, fc), the model's shapes and
variables, dropout, loss and metrics, evaluation, the picture, and training last. Every test runs in
a fresh seeded tf.Graph (the harness's autouse fixture); the graded training run is done once in a
module-scoped fixture that builds its own seeded graph and is read by two tests.

Graded training (seeded): 400 steps x 50 (the tutorial's batch), Adam 1e-3, keep_prob 0.5 -> 97.58 % test
accuracy and 97.84 % validation with the reference solution on TF 2.21 and 2.12 alike (the same figure run after
run; thresholds: test 96 %, validation 96 %). Cut from 400 x 100 (98.18 % test, 98.22 % validation; thresholds
97 %) to save a third of the test's CPU: 172 s -> 111 s (user + sys, the training tests' pytest process, import
included, TF 2.21, a loaded 2-core box); before that from 600 x 100 (98.50 %). At 200 x 100, the same compute,
it reached 97.31 % / 97.58 %: the smaller batch keeps the history's four points.
The schedules behind `slow` and `gpu` are described at their tests. A training failure ends with one
sentence from tfkata.feedback.curves.explain_curve on the run's curve (and points at kata-output/k04/report.png).

PYTEST_DONT_REWRITE: every assert here carries its own message, so pytest's assertion rewriting (about 2 s of
every run over all test files) would add nothing a learner reads.
"""
import functools
import os
import struct
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from tfkata import SEED, fresh_graph, load_kata
from tfkata.feedback.curves import explain_curve
from tfkata.data.mnist import load_mnist
from tfkata.paths import output_dir
from tfkata.tfsetup import import_tensorflow
from tfkata.testing import PYPLOT_LEFT, logits_read_as_probabilities, mismatch, pyplot_figures_left, recording_argument

_mismatch = functools.partial(mismatch, atol=1e-5)

tf = import_tensorflow()  # quietly: without the CUDA/oneDNN lines a plain import prints

k04 = load_kata("k04_cnn_mnist")


# What each training test exercises (covers): the whole pipeline, model and loop.
PIPELINE = ("read_data_sets", "preprocess_images", "one_hot", "DataSet")
MODEL = ("build_cnn", "weight_variable", "bias_variable", "conv2d", "max_pool_2x2", "fc_layer", "conv_and_pool")
TRAINING = ("build_training", "loss", "correct_prediction", "n_correct", "accuracy", "adam_train_step")
ALL_TRAINING = ("train", "evaluate") + PIPELINE + MODEL + TRAINING


# --------------------------------------------------------------------------- fixtures and helpers
class _Short(dict):
    """A dict whose repr stays one line (pytest prints a failing test's fixture values)."""

    def __repr__(self):
        return "{" + ", ".join(f"{k}: {getattr(v, 'dtype', type(v).__name__)}{list(getattr(v, 'shape', []))}"
                               for k, v in self.items()) + "}"


class _Run(SimpleNamespace):
    def __repr__(self):
        return f"<k04 training run: {len(self.history)} history entries, test accuracy {self.test_accuracy:.4f}>"


@pytest.fixture(scope="module")
def raw():
    """The verified uint8 MNIST arrays (harness side, cached per process)."""
    return _Short(load_mnist())


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


def _quick_session_config():
    """No graph rewriting before the first run (grappler): these small graphs run once, and rewriting them took
    longer than running them. Both sides run the same way."""
    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    config.graph_options.optimizer_options.opt_level = tf.compat.v1.OptimizerOptions.L0
    return config


# --------------------------------------------------------------------------- input pipeline
@pytest.mark.covers("preprocess_images")
def test_preprocess_images_shape_and_dtype(raw):
    x = k04.preprocess_images(raw["x_test"][:100])
    assert isinstance(x, np.ndarray), f"expected a numpy array, got {type(x).__name__}"
    assert x.shape == (100, 784), (
        f"expected shape (100, 784), got {x.shape}: flatten each 28x28 image into one row of 784 pixels"
    )
    assert x.dtype == np.float32, f"expected float32 pixels, got {x.dtype}: use .astype(np.float32)"


@pytest.mark.covers("preprocess_images")
def test_preprocess_images_range(raw):
    x = k04.preprocess_images(raw["x_test"][:1000])
    low, high = float(x.min()), float(x.max())
    assert high <= 1.0, f"preprocess_images: pixels not normalised: they go up to {high}, expected [0, 1]: divide by 255"
    assert abs(low) < 1e-6 and abs(high - 1.0) < 1e-6, (
        f"preprocess_images: pixels not normalised to [0, 1]: expected 0 -> 0.0 and 255 -> 1.0, got [{low}, {high}]: divide by 255 "
        "(not 256, and do not standardise)"
    )
    expected = raw["x_test"][:1000].reshape(1000, 784).astype(np.float32) / 255.0
    problem = _mismatch(x, expected, atol=1e-6, rtol=0)
    assert problem is None, (
        f"preprocess_images: row n must be image n flattened row by row (reshape, not transpose), divided by 255: {problem}"
    )


@pytest.mark.covers("one_hot")
def test_one_hot():
    labels = np.array([3, 0, 9, 3, 5], dtype=np.uint8)
    try:
        y = k04.one_hot(labels)
    except IndexError as exc:
        error = str(exc)
    else:
        error = None
    if error is not None:  # outside the except block: no chained traceback
        pytest.fail(f"one_hot: labels [3, 0, 9, 3, 5] (uint8) put a 1.0 outside the 10 columns ({error}): the column "
                    "is the label itself, 0..num_classes-1 (labels - 1 turns the uint8 label 0 into 255, labels + 1 "
                    "turns 9 into 10)")
    assert isinstance(y, np.ndarray), (
        "one_hot: got a "
        + ("tf.Tensor (a graph node, not the labels' values)" if isinstance(y, (tf.Tensor, tf.Variable))
           else type(y).__name__)
        + ", it must return a numpy array: build the rows with numpy (np.zeros, then set the 1.0s), not tf.one_hot; "
        "the labels go into feed_dict as numpy"
    )
    assert y.shape == (5, 10), f"one_hot: expected a numpy array of shape (5, 10) for 5 labels, got {y.shape}"
    assert y.dtype == np.float32, f"one_hot: expected float32 labels (the y_ placeholder is float32), got {y.dtype}"
    wrong = [i for i in range(5) if not np.array_equal(y[i], np.eye(10, dtype=np.float32)[labels[i]])]
    shifted = wrong and all(np.argmax(y[i]) in ((labels[i] - 1) % 10, (labels[i] + 1) % 10) for i in wrong)
    assert not wrong, (
        f"one_hot: row {wrong[0]} should be 1.0 at column {labels[wrong[0]]} and 0 elsewhere, got {y[wrong[0]].tolist()}"
        + (": the columns are shifted by one; the column is the label itself, 0..num_classes-1" if shifted else "")
    )
    try:
        wide = k04.one_hot(np.array([11, 0], dtype=np.int64), num_classes=12)
    except IndexError:
        wide = None
    assert getattr(wide, "shape", None) == (2, 12) and wide[0, 11] == 1.0, (
        f"one_hot(labels, num_classes=12) should give rows of 12 columns, got "
        f"{'an IndexError for label 11' if wide is None else f'shape {wide.shape}'}: "
        "use the num_classes argument"
    )
    one = k04.one_hot(np.array([2], dtype=np.uint8))
    assert getattr(one, "shape", None) == (1, 10), (
        f"one_hot([2]) should give shape (1, 10): num_classes (10 by default) columns whatever labels the batch holds, "
        f"got {getattr(one, 'shape', type(one).__name__)}: make num_classes columns, not labels.max() + 1"
    )


@pytest.mark.covers("DataSet")
def test_dataset_keeps_what_it_is_given_in_order():
    """Run before read_data_sets' tests: a DataSet that reorders its arrays makes every split look wrong."""
    images = np.random.RandomState(4).uniform(0, 1, (6, 784)).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[[3, 1, 4, 1, 5, 9]]
    given_images, given_labels = images.copy(), labels.copy()
    data = k04.DataSet(images, labels, seed=3)
    assert np.array_equal(images, given_images) and np.array_equal(labels, given_labels), (
        "DataSet.__init__: changed the arrays it was given (shuffled or rescaled them in place): keep them as they "
        "are; next_batch walks its own shuffled order of positions"
    )
    assert (np.array_equal(np.asarray(data.images), given_images)
            and np.array_equal(np.asarray(data.labels), given_labels)), (
        "DataSet.__init__: .images and .labels must be kept in the order given (the docstring), not shuffled: "
        "next_batch draws the random order, afresh every epoch"
    )
    assert data.num_examples == 6, f"DataSet: num_examples should be len(images) = 6, got {data.num_examples}"


@pytest.mark.covers("read_data_sets", "preprocess_images", "one_hot", "DataSet")
def test_read_data_sets_split_sizes(mnist):
    sizes = tuple(split.num_examples for split in mnist)
    assert sizes == (55000, 5000, 10000), (
        f"read_data_sets: expected train / validation / test of 55000 / 5000 / 10000 examples, got {sizes}"
    )
    for name, split in zip(("train", "validation", "test"), mnist):
        n = split.num_examples
        assert split.images.shape == (n, 784) and split.images.dtype == np.float32, (
            f"{name}.images: expected float32 ({n}, 784), got {split.images.dtype} {split.images.shape}"
        )
        assert split.labels.shape == (n, 10) and split.labels.dtype == np.float32, (
            f"{name}.labels: expected one-hot float32 ({n}, 10), got {split.labels.dtype} {split.labels.shape}"
        )


@pytest.mark.covers("read_data_sets", "preprocess_images", "one_hot", "DataSet")
def test_read_data_sets_split_contents(mnist, raw):
    x_train = raw["x_train"].reshape(60000, 784)
    checks = (
        ("validation", mnist.validation, x_train[:5000], raw["y_train"][:5000]),
        ("train", mnist.train, x_train[5000:], raw["y_train"][5000:]),
        ("test", mnist.test, raw["x_test"].reshape(10000, 784), raw["y_test"]),
    )
    for name, split, images, labels in checks:
        assert np.array_equal(np.argmax(split.labels, axis=1), labels), (
            f"read_data_sets: {name} labels are not those of the raw data in order. Validation must be the FIRST 5000 "
            "training digits and train the other 55,000 (as input_data did), unshuffled: shuffling "
            "belongs in next_batch"
        )
        assert np.allclose(split.images[::25] * 255.0, images[::25], atol=1e-2), (
            f"read_data_sets: {name} images do not match the raw digits / 255 in order (did images and labels get "
            "split or reordered differently?)"
        )


def _read_data_sets_run(mod, case):
    """read_data_sets on a made-up raw MNIST of 12 + 5 digits; DataSet replaced by a recorder, so only what
    read_data_sets passes it is compared (the split's images, labels and seed)."""
    validation_size, seed = case.args
    rng = np.random.RandomState(12)
    raw = {"x_train": rng.randint(0, 256, (12, 28, 28)).astype(np.uint8), "y_train": (np.arange(12) * 7 % 10).astype(np.uint8),
           "x_test": rng.randint(0, 256, (5, 28, 28)).astype(np.uint8), "y_test": np.array([3, 1, 4, 1, 5], np.uint8)}

    def recorder(images, labels, seed=0):
        return {"images": np.asarray(images), "labels": np.asarray(labels), "seed": seed}

    import sys

    import tfkata.data.mnist as mnist_module

    module = sys.modules[mod.read_data_sets.__module__]  # the module itself (a kata's stand-in is read-only)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "load_mnist", lambda: raw, raising=False)
        patch.setattr(mnist_module, "load_mnist", lambda: raw)
        patch.setattr(module, "DataSet", recorder)
        return list(module.read_data_sets(validation_size=validation_size, seed=seed))


@pytest.mark.covers("read_data_sets")
def test_read_data_sets_arguments():
    from tfkata.differential import Case

    train, validation, test = _read_data_sets_run(k04, Case("", (3, 7)))
    sizes = (len(train["images"]), len(validation["images"]), len(test["images"]))
    assert sizes == (9, 3, 5), (
        f"read_data_sets(validation_size=3) on 12 training and 5 test digits: expected train / validation / test of "
        f"9 / 3 / 5, got {' / '.join(map(str, sizes))}: split at the validation_size argument, not a fixed 5000"
    )
    seeds = (train["seed"], validation["seed"], test["seed"])
    assert seeds == (7, 8, 9), (
        f"read_data_sets(seed=7): the train / validation / test DataSets should get the seeds 7 / 8 / 9, got "
        f"{' / '.join(map(str, seeds))}: seed them with seed, seed + 1 and seed + 2 (DataSet(..., seed=...))"
    )


@pytest.mark.covers("DataSet")
def test_next_batch_shapes_and_pairs():
    ds = _toy_dataset(10, seed=0)
    assert ds.num_examples == 10, f"expected num_examples 10, got {ds.num_examples}"
    images, labels = ds.next_batch(4)
    assert images.shape == (4, 784) and labels.shape == (4, 10), (
        f"expected a batch of (4, 784) images and (4, 10) labels, got {images.shape} and {labels.shape}"
    )
    ids = np.array(_ids((images, labels)))
    assert np.array_equal(np.argmax(labels, axis=1), ids % 10), (
        "DataSet.next_batch: images and labels of a batch no longer belong together: index both with the SAME permutation"
    )


def _raises_value_error(call):
    """None when ``call()`` raises ValueError, else what it did instead (for the message)."""
    try:
        call()
    except ValueError:
        return None
    except NotImplementedError:
        raise  # a TODO stays a TODO
    except Exception as exc:  # noqa: BLE001 - any other outcome is the mistake
        return f"it raised {type(exc).__name__} instead"
    return "it raised nothing"


@pytest.mark.covers("DataSet")
def test_dataset_rejects_images_and_labels_of_different_lengths():
    images = np.zeros((10, 784), np.float32)
    labels = np.eye(10, dtype=np.float32)[np.arange(9)]
    outcome = _raises_value_error(lambda: k04.DataSet(images, labels, seed=0))
    assert outcome is None, (
        f"DataSet.__init__ with 10 images but 9 labels must raise ValueError ({outcome}): check the length, "
        "if len(images) != len(labels): raise ValueError(...)"
    )


@pytest.mark.covers("DataSet")
def test_next_batch_rejects_a_batch_size_outside_1_to_num_examples():
    for size in (11, 0):
        outcome = _raises_value_error(lambda: _toy_dataset(10, seed=0).next_batch(size))  # noqa: B023
        assert outcome is None, (
            f"DataSet.next_batch({size}) on 10 examples must raise ValueError ({outcome}): batch_size must be "
            "1..num_examples, check both ends: if not 1 <= batch_size <= self.num_examples: raise ValueError(...)"
        )


@pytest.mark.covers("DataSet")
def test_next_batch_epoch_has_every_example_once():
    ds = _toy_dataset(10, seed=3)
    kept = np.asarray(ds.images).copy(), np.asarray(ds.labels).copy()
    ids = []
    for _ in range(5):  # 20 examples = 2 epochs of 10; the third batch crosses the epoch boundary
        ids += _ids(ds.next_batch(4))
    assert (np.array_equal(np.asarray(ds.images), kept[0]) and np.array_equal(np.asarray(ds.labels), kept[1])), (
        "DataSet.next_batch: after two epochs .images and .labels are no longer in the order given (the docstring keeps "
        "them so): shuffle an order of positions each epoch and index the arrays with it; never reorder the arrays"
    )
    for epoch in (0, 1):
        got = ids[10 * epoch : 10 * (epoch + 1)]
        assert sorted(got) == list(range(10)), (
            f"DataSet.next_batch: epoch {epoch + 1} should hold every one of the 10 examples exactly once, got {got}: walk a "
            "permutation and finish a batch that crosses the end with the start of the next epoch"
        )


@pytest.mark.covers("DataSet")
def test_next_batch_reshuffles_each_epoch():
    ds = _toy_dataset(50, seed=5)
    first, second = _ids(ds.next_batch(50)), _ids(ds.next_batch(50))
    assert first != list(range(50)), "DataSet.next_batch: the first epoch came in the original order: shuffle before it too"
    assert first != second, "DataSet.next_batch: the second epoch came in the same order as the first: draw a new permutation each epoch"


@pytest.mark.covers("DataSet")
def test_next_batch_is_seeded():
    runs = []
    for seed, global_seed in ((7, 1), (7, 2), (8, 1)):  # noqa: B007
        ds = _toy_dataset(20, seed=seed)
        np.random.seed(global_seed)  # must not matter: the DataSet has its own RandomState
        runs.append([_ids(ds.next_batch(8)) for _ in range(4)])
    assert runs[0] == runs[1], (
        "DataSet.next_batch: two DataSets with the same seed gave different batches: shuffle with your own "
        "np.random.RandomState(seed), not the global np.random"
    )
    assert runs[0] != runs[2], "DataSet: seeds 7 and 8 gave the same batches: use the seed argument"


# --------------------------------------------------------------------------- helpers
@pytest.mark.covers("weight_variable")
def test_weight_variable_init_stats(sess):
    w = k04.weight_variable([200, 500])
    assert isinstance(w, tf.Variable), f"expected a tf.Variable, got {type(w).__name__}"
    assert w.shape.as_list() == [200, 500] and w.dtype.base_dtype == tf.float32, (
        f"expected a float32 variable of shape [200, 500], got {w.dtype} {w.shape}"
    )
    _run_init(sess)
    value = sess.run(w)
    biggest = float(np.abs(value).max())
    std, mean = float(value.std()), float(value.mean())
    if biggest > 0.2 + 1e-6:
        # 100,000 draws: a truncated normal of stddev s has std 0.8796 s and nothing beyond 2 s; a plain normal
        # reaches about 4.4 of its standard deviations
        scale = std / 0.8796
        if std > 1e-6 and biggest <= 2 * scale * 1.01:
            pytest.fail(f"weight_variable: weights up to {biggest:.3f}, truncated at 2 standard deviations of "
                        f"{scale:.2g}: use stddev=0.1 (tf.random.truncated_normal(shape, stddev=0.1))")
        if abs(mean - 0.1) < 0.02 and 0.8 < std < 0.95:  # truncated_normal(shape, 0.1): the 0.1 is the mean
            pytest.fail(f"weight_variable: your weights have mean {mean:.3f} and std {std:.3f}: a truncated normal of "
                        "mean 0.1 and stddev 1; the second positional argument of truncated_normal is the mean: pass "
                        "stddev=0.1 by keyword", pytrace=False)
        wrong_scale = "" if 0.095 < std < 0.105 else f" with stddev=0.1 (yours spreads with std {std:.3g})"
        pytest.fail(
            f"weight_variable: found a weight of {biggest:.3f}, beyond 2 standard deviations (0.2): use a TRUNCATED "
            f"normal (tf.random.truncated_normal){wrong_scale}, not tf.random.normal"
        )
    # A normal(0, 0.1) truncated at 2 sigma has std 0.1 * 0.8796 = 0.088.
    if std < 1e-6:
        cause = "every weight starts equal (zeros or a constant?): random weights break the symmetry between units"
    elif std < 0.084:
        cause = (f"weights initialised too small (stddev {std / 0.8796:.3g}?): use stddev=0.1; tiny weights make "
                 "the network learn very slowly")
    else:
        cause = "weights initialised too large: use stddev=0.1 (truncated at 2 standard deviations)"
    assert 0.084 < std < 0.092, f"weight_variable: expected std about 0.088 (truncated normal, stddev=0.1), got {std:.4f}: {cause}"
    assert abs(mean) < 0.002, f"weight_variable: expected mean about 0, got {mean:.4f}: draw from a normal centred on 0"


@pytest.mark.covers("weight_variable")
def test_weight_variables_start_from_their_own_draws(sess):
    first, second = k04.weight_variable([4, 6]), k04.weight_variable([4, 6])
    _run_init(sess)
    a, b = sess.run([first, second])
    assert not np.allclose(a, b), (
        "weight_variable: two [4, 6] weights started with the same values: draw them without a fixed op seed "
        "(tf.random.truncated_normal(shape, stddev=0.1), no seed=...), or every weight of one shape starts equal "
        "whatever the graph's seed"
    )


@pytest.mark.covers("bias_variable")
def test_bias_variable_init(sess):
    b = k04.bias_variable([7])
    assert isinstance(b, tf.Variable) and b.shape.as_list() == [7], (
        f"expected a tf.Variable of shape [7], got {type(b).__name__} {getattr(b, 'shape', None)}"
    )
    _run_init(sess)
    value = sess.run(b)
    assert value.dtype == np.float32 and np.allclose(value, 0.1, rtol=1e-6, atol=0), (
        f"bias_variable: every bias should start at 0.1 (float32), got {value.dtype} {value.tolist()}: "
        "tf.constant(0.1, shape=shape) keeps ReLU units alive at the start"
    )


@pytest.mark.covers("weight_variable", "bias_variable")
def test_variable_names():
    w, b = k04.weight_variable([3, 3]), k04.bias_variable([3])
    named = k04.weight_variable([2], name="kernel")
    named_bias = k04.bias_variable([2], name="beta")
    for function, variable, want in (("weight_variable", w, "W:0"), ("bias_variable", b, "b:0"),
                                     ("weight_variable", named, "kernel:0"), ("bias_variable", named_bias, "beta:0")):
        given = want.split(":")[0]
        assert variable.name == want, (
            f"{function}(..., name={given!r}) in a fresh graph should make a variable named {want!r}, got "
            f"{variable.name!r}: pass name=name to tf.Variable"
        )


@pytest.mark.covers("conv2d")
def test_conv2d_same_padding(sess):
    x = tf.constant(np.ones((1, 3, 4, 1), np.float32))  # 3 rows, 4 columns: a transposed size shows
    kernel = tf.constant(-np.ones((3, 3, 1, 1), np.float32))  # negative outputs: a stray ReLU shows
    out = k04.conv2d(x, kernel)
    shape = out.shape.as_list()
    if shape == [1, 1, 2, 1]:
        why = "VALID padding: use padding='SAME'"
    elif shape[1:3] == [2, 2]:
        why = "a stride of 2: use strides=[1, 1, 1, 1]"
    else:
        why = "SAME padding and stride 1 keep the 3x4 size"
    assert shape == [1, 3, 4, 1], f"conv2d: expected shape [1, 3, 4, 1] from a 3x4 input, got {shape}: {why}"
    # Zero padding: a corner sees 4 ones, an edge 6, the inside 9 (times the kernel's -1).
    expected = -np.array([[4, 6, 6, 4], [6, 9, 9, 6], [4, 6, 6, 4]], np.float32)
    got = sess.run(out)[0, :, :, 0]
    assert not np.all(got == 0), "conv2d gave all zeros where the convolution is negative: no ReLU inside conv2d"
    problem = _mismatch(got, expected, atol=1e-5, rtol=0)
    assert problem is None, (
        f"conv2d: expected a plain convolution with a zero-padded border (SAME, stride 1), {problem}"
    )
    # A kernel whose only 1 is at its top-left corner: output (i, j) is x[i - 1, j - 1] (tf.nn.conv2d correlates).
    ramp = np.arange(1, 13, dtype=np.float32).reshape(1, 3, 4, 1)
    corner = np.zeros((3, 3, 1, 1), np.float32)
    corner[0, 0] = 1.0
    shifted = sess.run(k04.conv2d(tf.constant(ramp), tf.constant(corner)))[0, :, :, 0]
    padded = np.pad(ramp[0, :, :, 0], 1)
    if np.array_equal(shifted, padded[2:, 2:]):
        why = "the kernel was flipped (a textbook convolution): tf.nn.conv2d uses W as it is, unflipped"
    else:
        why = "a plain tf.nn.conv2d(x, W, strides=[1, 1, 1, 1], padding='SAME')"
    assert np.array_equal(shifted, padded[:-2, :-2]), (
        f"conv2d: with a 3x3 kernel whose only 1 is at its top-left, output (i, j) should be x[i-1, j-1], got "
        f"{shifted.tolist()}: {why}"
    )
    wide = k04.conv2d(tf.compat.v1.placeholder(tf.float32, [None, 28, 28, 1]), tf.zeros([5, 5, 1, 32]))
    assert wide.shape.as_list() == [None, 28, 28, 32], f"conv2d: expected [B, 28, 28, 32], got {wide.shape.as_list()}"


@pytest.mark.covers("max_pool_2x2")
def test_max_pool_2x2_values(sess):
    values = -np.arange(24, dtype=np.float32).reshape(1, 4, 6, 1)[:, ::-1, ::-1]  # negative: a stray ReLU shows
    out = k04.max_pool_2x2(tf.constant(values))
    shape = out.shape.as_list()
    assert shape == [1, 2, 3, 1], (
        f"max_pool_2x2: expected [1, 2, 3, 1] from a 4x6 input, got {shape}: use ksize 2 and stride 2 "
        "(ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1])"
    )
    got = sess.run(out)[0, :, :, 0]
    blocks = values[0, :, :, 0].reshape(2, 2, 3, 2)
    expected = blocks.max(axis=(1, 3))
    if np.allclose(got, blocks.mean(axis=(1, 3))):
        why = "that is the AVERAGE of each block: use tf.nn.max_pool2d"
    elif np.all(got == 0):
        why = "all zeros: no ReLU inside max_pool_2x2"
    else:
        why = "each output is the max of one 2x2 block (ksize 2)"
    assert np.array_equal(got, expected), f"max_pool_2x2: expected {expected.tolist()}, got {got.tolist()}: {why}"


@pytest.mark.covers("max_pool_2x2")
def test_max_pool_2x2_same_padding(sess):
    x = tf.constant(np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1))
    out = k04.max_pool_2x2(x)
    shape = out.shape.as_list()
    why = (
        "did max_pool_2x2 use stride 2 (strides=[1, 2, 2, 1])?"
        if shape[1:3] == [5, 5]
        else "use padding='SAME' (the last row and column form blocks of their own)"
    )
    assert shape == [1, 3, 3, 1], f"max_pool_2x2: expected [1, 3, 3, 1] from a 5x5 input, got {shape}: {why}"
    got = sess.run(out)[0, :, :, 0]
    assert np.array_equal(got, [[6, 8, 9], [16, 18, 19], [21, 23, 24]]), (
        f"max_pool_2x2 on a 5x5 input: expected [[6, 8, 9], [16, 18, 19], [21, 23, 24]], got {got.tolist()}: "
        "SAME padding, 2x2 blocks with stride 2"
    )


@pytest.mark.covers("fc_layer", "weight_variable", "bias_variable")
def test_fc_layer_variables_and_shape():
    x = tf.compat.v1.placeholder(tf.float32, [None, 30])
    out = k04.fc_layer(x, out_dim=7, scope="dense")
    assert out.shape.as_list() == [None, 7], (
        f"fc_layer(x, out_dim=7, scope='dense'): expected [B, 7], got {out.shape.as_list()}: the layer has out_dim "
        "units (the argument)"
    )
    got = _trainable()
    assert got.get("dense/W:0") != [7, 30] or got.get("dense/b:0") != [7], (
        f"fc_layer(x, out_dim=7, scope='dense'): W is laid out [out_dim, in_dim] = [7, 30], as PyTorch's Linear keeps "
        "it; here the layer is x @ W + b with x [B, in_dim], so W is [in_dim, out_dim] = [30, 7] (no transpose)"
    )
    assert got == {"dense/W:0": [30, 7], "dense/b:0": [7]}, (
        f"fc_layer(x, out_dim=7, scope='dense'): expected variables dense/W [30, 7] and dense/b [7], got {got}: build "
        "them inside tf.compat.v1.variable_scope(scope), with the scope argument, using weight_variable and "
        "bias_variable"
    )


@pytest.mark.covers("fc_layer", "weight_variable", "bias_variable")
def test_fc_layer_activation(sess):
    x_value = np.random.RandomState(0).standard_normal((4, 30)).astype(np.float32)
    x = tf.constant(x_value)
    relu_out = k04.fc_layer(x, out_dim=7, scope="hidden")
    linear_out = k04.fc_layer(x, out_dim=7, scope="readout", activation=None)
    _run_init(sess)
    variables = {v.name: v for v in tf.compat.v1.trainable_variables()}
    w1, b1, w2, b2 = sess.run([variables[n] for n in ("hidden/W:0", "hidden/b:0", "readout/W:0", "readout/b:0")])
    got_relu, got_linear = sess.run([relu_out, linear_out])
    problem = _mismatch(got_relu, np.maximum(x_value @ w1 + b1, 0))
    assert problem is None, f"fc_layer by default must give relu(x @ W + b): {problem}"
    linear = x_value @ w2 + b2
    assert got_linear.min() < 0 or linear.min() >= 0, (
        "fc_layer(..., activation=None) has no negative output: it still applies ReLU; activation=None means "
        "a linear layer, x @ W + b"
    )
    problem = _mismatch(got_linear, linear)
    assert problem is None, f"fc_layer(..., activation=None) must give x @ W + b: {problem}"
    squash_out = k04.fc_layer(x, out_dim=7, scope="squash", activation=tf.tanh)
    _run_init(sess)
    w3, b3 = sess.run([v for v in tf.compat.v1.trainable_variables() if v.name.startswith("squash/")])
    got_tanh, pre = sess.run(squash_out), x_value @ w3 + b3
    problem = _mismatch(got_tanh, np.tanh(pre))
    if problem is not None and _mismatch(got_tanh, np.maximum(pre, 0)) is None:
        problem = ("gave relu(x @ W + b): apply the activation you are given, activation(x @ W + b), not always "
                   "ReLU")
    assert problem is None, f"fc_layer(..., activation=tf.tanh) must give tanh(x @ W + b), {problem}"


@pytest.mark.covers("conv_and_pool", "conv2d", "max_pool_2x2", "weight_variable", "bias_variable")
def test_conv_and_pool_shape_and_variables():
    x = tf.compat.v1.placeholder(tf.float32, [None, 28, 28, 3])
    out = k04.conv_and_pool(x, kernel_size=3, out_channel=8, scope="block")
    assert out.shape.as_list() == [None, 14, 14, 8], (
        f"conv_and_pool(x, kernel_size=3, out_channel=8, scope='block'): expected [B, 14, 14, 8], got "
        f"{out.shape.as_list()}: out_channel (the argument) filters, conv (stride 1, SAME) then 2x2 pooling with "
        "stride 2"
    )
    got = _trainable()
    assert got == {"block/W:0": [3, 3, 3, 8], "block/b:0": [8]}, (
        f"conv_and_pool(x, kernel_size=3, out_channel=8, scope='block'): expected block/W [3, 3, 3, 8] (kernel, "
        f"kernel, in channels, out channels) and block/b [8], got {got}: use the kernel_size, out_channel and scope "
        "arguments"
    )


@pytest.mark.covers("conv_and_pool", "conv2d", "max_pool_2x2", "weight_variable", "bias_variable")
def test_conv_and_pool_values(sess):
    x_value = np.random.RandomState(1).standard_normal((2, 6, 6, 2)).astype(np.float32)
    out = k04.conv_and_pool(tf.constant(x_value), kernel_size=3, out_channel=4, scope="block")
    _run_init(sess)
    variables = {v.name: v for v in tf.compat.v1.trainable_variables()}
    # Weights and a negative bias of our own: many 2x2 blocks are entirely negative, so a missing ReLU shows.
    w = (np.random.RandomState(2).standard_normal((3, 3, 2, 4)) * 0.3).astype(np.float32)
    b = np.full(4, -0.3, np.float32)
    sess.run([variables["block/W:0"].assign(w), variables["block/b:0"].assign(b)])
    pre = tf.nn.conv2d(x_value, w, strides=1, padding="SAME") + b
    expected = sess.run(tf.nn.max_pool2d(tf.nn.relu(pre), ksize=2, strides=2, padding="SAME"))
    got = sess.run(out)
    assert got.min() >= 0, "conv_and_pool has negative outputs: apply ReLU to conv2d(x, W) + b before pooling"
    no_bias = sess.run(tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(x_value, w, strides=1, padding="SAME")), 2, 2, "SAME"))
    assert _mismatch(got, no_bias) is not None or _mismatch(got, expected) is None, (
        "conv_and_pool ignores its bias: expected max_pool_2x2(relu(conv2d(x, W) + b))"
    )
    problem = _mismatch(got, expected)
    assert problem is None, f"conv_and_pool: expected max_pool_2x2(relu(conv2d(x, W) + b)): {problem}"


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


@pytest.mark.covers(*MODEL)
def test_build_cnn_placeholders():
    model = k04.build_cnn()
    assert isinstance(model, k04.Model), f"build_cnn must return a Model(...), got {type(model).__name__}"
    for name in ("x", "y_", "keep_prob"):
        tensor = getattr(model, name)
        assert tensor.op.type == "Placeholder" and tensor.dtype == tf.float32, (
            f"model.{name} should be a float32 tf.compat.v1.placeholder, got a {tensor.dtype.name} {tensor.op.type}"
        )
        assert tensor.name.startswith("CNN/"), f"model.{name} is {tensor.name}: build it inside variable_scope('CNN')"
    assert model.keep_prob.shape.rank == 0, (
        f"build_cnn: model.keep_prob should be a float32 scalar placeholder (shape []), got shape {model.keep_prob.shape}: "
        "tf.compat.v1.placeholder(tf.float32, shape=[], name='keep_prob') (without a shape it takes any array)"
    )


@pytest.mark.covers(*MODEL)
def test_build_cnn_static_shapes():
    model = k04.build_cnn()
    for name, expected in LAYER_SHAPES.items():
        got = getattr(model, name).shape.as_list()
        assert got == expected, f"model.{name}: expected shape {expected}, got {got}. {LAYER_HINTS.get(name, '')}"


@pytest.mark.covers(*MODEL)
def test_build_cnn_runs_a_batch(sess, raw):
    model = k04.build_cnn()
    _run_init(sess)
    names = [n for n in LAYER_SHAPES if n not in ("x", "y_")]
    values = sess.run([getattr(model, n) for n in names], {model.x: _test_images(raw, 3), model.keep_prob: 1.0})
    for name, value in zip(names, values):
        expected = tuple([3] + LAYER_SHAPES[name][1:])
        assert value.shape == expected, f"model.{name} for a batch of 3: expected {expected}, got {value.shape}"
    got = dict(zip(names, values))
    conv2, flat = got["conv2"], got["conv2_flat"]
    if not np.array_equal(flat, conv2.reshape(3, -1)):
        why = ("yours is conv2 flattened channels-first (transposed to [B, 64, 7, 7] before the reshape); "
               if np.array_equal(flat, conv2.transpose(0, 3, 1, 2).reshape(3, -1)) else "")
        pytest.fail(f"build_cnn: conv2_flat must be conv2 flattened in its own order (row by row, the 64 channels of "
                    f"each position together); {why}write tf.reshape(conv2, [-1, 7 * 7 * 64]), with no transpose")


@pytest.mark.covers(*MODEL)
def test_build_cnn_variable_names():
    k04.build_cnn()
    got = _trainable()
    assert got == VARIABLES, (
        f"expected the trainable variables {VARIABLES}, got {got}: one scope per layer (conv1, conv2, fc1, fc2) "
        "inside variable_scope('CNN'), with W and b in each"
    )


@pytest.mark.points(2)
@pytest.mark.covers(*MODEL)
def test_build_cnn_parameter_count():
    k04.build_cnn()
    count = sum(int(np.prod(v.shape.as_list())) for v in tf.compat.v1.trainable_variables())
    assert count == 3274634, (
        f"expected 3,274,634 trainable parameters, got {count:,}: conv1 832 + conv2 51,264 + fc1 3,212,288 + fc2 10,250"
    )


@pytest.mark.covers(*MODEL)
def test_logits_are_linear(sess, raw):
    model = k04.build_cnn()
    _run_init(sess)
    variables = {v.name: v for v in tf.compat.v1.trainable_variables()}
    feed = {model.x: _test_images(raw, 100), model.keep_prob: 1.0}
    logits, fc1_drop, w, b = sess.run([model.logits, model.fc1_drop, variables["CNN/fc2/W:0"], variables["CNN/fc2/b:0"]], feed)
    linear = fc1_drop @ w + b
    assert not (np.allclose(logits, np.maximum(linear, 0), atol=1e-4) and linear.min() < 0), (
        "build_cnn: the logits are ReLU'd (no logit is below 0): the final layer must be linear "
        "(fc_layer(..., activation=None)); a ReLU there clamps the logits at 0 and kills their gradients"
    )
    problem = _mismatch(logits, linear, atol=1e-4, rtol=1e-4)
    assert problem is None, f"build_cnn: the logits must be fc1_drop @ fc2/W + fc2/b (no activation): {problem}"


@pytest.mark.covers(*MODEL)
def test_dropout_identity_at_keep_prob_1(sess, raw):
    model = k04.build_cnn()
    _run_init(sess)
    fc1, fc1_drop = sess.run([model.fc1, model.fc1_drop], {model.x: _test_images(raw, 20), model.keep_prob: 1.0})
    changed = int(np.sum(fc1_drop != fc1))
    assert changed == 0, (
        f"build_cnn: with keep_prob 1.0 dropout must change nothing, but {changed} of {fc1.size} fc1 units changed: keep_prob "
        "is the probability of KEEPING a unit (tf.compat.v1.nn.dropout(fc1, keep_prob=keep_prob), or "
        "tf.nn.dropout(fc1, rate=1 - keep_prob))"
    )


@pytest.mark.parametrize("keep_prob", [0.5, 0.8])
@pytest.mark.covers(*MODEL)
def test_dropout_scaling(sess, raw, keep_prob):
    model = k04.build_cnn()
    _run_init(sess)
    fc1, fc1_drop = sess.run([model.fc1, model.fc1_drop], {model.x: _test_images(raw, 50), model.keep_prob: keep_prob})
    active = fc1 > 0
    kept = active & (fc1_drop != 0)
    assert kept.any(), "build_cnn: every fc1 unit was dropped: keep_prob is the probability of KEEPING a unit"
    assert not np.array_equal(fc1_drop, fc1), (
        f"build_cnn: with keep_prob {keep_prob} fc1_drop is fc1 unchanged (no unit dropped, none scaled): apply "
        "dropout, fc1_drop = tf.compat.v1.nn.dropout(fc1, keep_prob=keep_prob)"
    )
    ratios = fc1_drop[kept] / fc1[kept]
    assert np.allclose(ratios, 1.0 / keep_prob, rtol=1e-4), (
        f"build_cnn: kept units must be scaled by 1/keep_prob = {1 / keep_prob:g}, got scale factors from {ratios.min():.4g} to "
        f"{ratios.max():.4g}: fc1_drop = dropout(fc1, keep_prob) (no dropout at all gives 1)"
    )
    assert np.all(fc1_drop[~kept] == 0), "build_cnn: a unit is either kept (scaled) or dropped (0)"
    kept_fraction = kept.sum() / active.sum()
    assert abs(kept_fraction - keep_prob) < 0.03, (
        f"build_cnn: with keep_prob {keep_prob} about {keep_prob:.0%} of the units should be kept, got {kept_fraction:.1%}: "
        "keep_prob is the probability of KEEPING a unit (in TF2 terms rate = 1 - keep_prob)"
    )


# --------------------------------------------------------------------------- loss and metrics
@pytest.mark.covers("loss")
def test_loss_on_known_logits(sess):
    rng = np.random.RandomState(2)
    logits = rng.standard_normal((6, 10)).astype(np.float32) * 3
    labels = np.eye(10, dtype=np.float32)[rng.randint(0, 10, 6)]
    shifted = logits - logits.max(axis=1, keepdims=True)
    per_example = -(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))[labels.astype(bool)]
    out = k04.loss(tf.constant(logits), tf.constant(labels))
    assert out.shape.as_list() == [], f"expected a scalar loss, got shape {out.shape.as_list()}: average over the batch"
    assert out.dtype == tf.float32, (
        f"loss: expected a float32 scalar (the docstring's dtype, the logits'), got {out.dtype.name}: no cast to "
        "another type"
    )
    got = float(sess.run(out))
    assert not np.isclose(got, per_example.sum(), rtol=1e-4), (
        f"loss: the loss is the SUM over the batch ({got:.4f}), expected the mean {per_example.mean():.4f}: use tf.reduce_mean"
    )
    log_softmax_of_labels = labels - np.log(np.exp(labels).sum(axis=1, keepdims=True))
    swapped = float(np.mean(-(logits * log_softmax_of_labels).sum(axis=1)))  # labels=logits, logits=labels
    if np.isclose(got, per_example.mean() / 10, rtol=1e-4):
        why = "that is the mean over every entry of [B, 10] (1/10 of it): sum over the classes, average over the batch"
    elif np.isclose(got, swapped, rtol=1e-4):
        why = ("the labels and logits are swapped: tf.nn.softmax_cross_entropy_with_logits(labels=labels, "
               "logits=logits), by keyword")
    elif any(np.isclose(got, xent.mean(), rtol=1e-4) for xent in logits_read_as_probabilities(labels, logits)):
        why = ("the logits were read as probabilities (a Keras loss's default from_logits=False): "
               "tf.nn.softmax_cross_entropy_with_logits(labels=..., logits=...), or from_logits=True")
    else:
        probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        twice = probs - np.log(np.exp(probs).sum(axis=1, keepdims=True))
        softmaxed = float(np.mean(-(labels * twice).sum(axis=1)))  # the softmax taken before the loss's own
        why = ("a softmax was taken before the loss, which takes its own: pass the raw logits (no softmax before it)"
               if np.isclose(got, softmaxed, rtol=1e-4) else
               "use tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits) on the raw logits, averaged "
               "over the batch, and nothing else (no softmax before it, no label smoothing or weights)")
    assert np.isclose(got, per_example.mean(), rtol=1e-4), (
        f"loss: expected the mean softmax cross-entropy {per_example.mean():.5f}, got {got:.5f}: {why}"
    )
    uniform = float(sess.run(k04.loss(tf.zeros([3, 10]), tf.constant(labels[:3]))))
    assert np.isclose(uniform, np.log(10.0), rtol=1e-4), f"loss: all-zero logits must give log(10) = 2.302585, got {uniform}"
    # A confident wrong prediction: softmax underflows to 0 at the label, and log(0) = -inf. Run without
    # grappler, which can rewrite log(softmax(x)) into a stable log-softmax when only the loss is fetched.
    confident = logits[:2].copy()
    confident[0, (np.argmax(labels[0]) + 1) % 10] = 150.0
    with tf.compat.v1.Session(config=_quick_session_config()) as quick:
        value = float(quick.run(k04.loss(tf.constant(confident), tf.constant(labels[:2]))))
    assert np.isfinite(value), (
        f"loss: a confident wrong prediction (a logit of 150 on a class that is not the label) gave {value}: "
        "log(softmax(logits)) takes log(0) = -inf there; use tf.nn.softmax_cross_entropy_with_logits(labels=..., "
        "logits=...), which works on the raw logits and stays finite"
    )


LOGITS = np.array([[0, 5, 1], [3, 0, 0], [0, 0, 1], [1, 2, 0]], np.float32)
LABELS = np.eye(3, dtype=np.float32)[[1, 0, 2, 0]]  # the last prediction (class 1) is wrong


@pytest.mark.covers("correct_prediction")
def test_correct_prediction(sess):
    try:
        out = k04.correct_prediction(tf.constant(LOGITS), tf.constant(LABELS))
    except (ValueError, tf.errors.InvalidArgumentError) as exc:
        if "ncompatible shapes" not in str(exc) and "must be equal" not in str(exc):
            raise
        error = str(exc).strip().splitlines()[0][:120]
    else:
        error = None
    if error is not None:
        pytest.fail(
            "correct_prediction: on 4 examples of 3 classes the two argmaxes have different shapes ([4] and [3]): take "
            f"both over axis 1 (the classes), tf.argmax(logits, 1) and tf.argmax(labels, 1) (TensorFlow: {error})",
            pytrace=False)
    if not tf.is_tensor(out):
        pytest.fail(
            f"correct_prediction: expected a bool tensor of shape [4], got the Python {type(out).__name__} {out!r}"
            + (": in a TF 1 graph, == between two tensors compares the objects, not their values; use "
               "tf.equal(tf.argmax(logits, 1), tf.argmax(labels, 1))" if isinstance(out, bool) else ""),
            pytrace=False)
    why = ": take the argmax over axis 1 (the classes), not axis 0 (the batch)" if out.shape.as_list() == [3] else ""
    assert out.dtype == tf.bool and out.shape.as_list() == [4], (
        f"correct_prediction: expected a bool tensor of shape [4] (one per example), got {out.dtype.name} "
        f"{out.shape.as_list()}{why}"
    )
    got = sess.run(out).tolist()
    assert got == [True, True, True, False], (
        f"correct_prediction: expected [True, True, True, False], got {got}: compare tf.argmax(logits, 1) with "
        "tf.argmax(labels, 1) (axis 1: the classes)"
    )
    # Tied logits: the highest logit is at ONE class, the first (argmax's); in_top_k counts every tied class right,
    # so a model whose logits are all equal would score 100 %.
    tied = sess.run(k04.correct_prediction(tf.constant(np.zeros([3, 3], np.float32)),
                                           tf.constant(np.eye(3, dtype=np.float32)[[0, 1, 2]]))).tolist()
    assert tied == [True, False, False], (
        f"correct_prediction: three rows of equal logits with labels 0, 1, 2 should give [True, False, False] (the "
        f"prediction is argmax's class 0), got {tied}"
        + (": tf.math.in_top_k counts every tied class as right (all-equal logits would score 100 %); compare "
           "tf.argmax(logits, 1) with tf.argmax(labels, 1)" if tied == [True, True, True] else "")
    )


@pytest.mark.covers("n_correct", "accuracy", "correct_prediction")
def test_n_correct_and_accuracy(sess):
    count = k04.n_correct(tf.constant(LOGITS), tf.constant(LABELS))
    acc = k04.accuracy(tf.constant(LOGITS), tf.constant(LABELS))
    for name, t in (("n_correct", count), ("accuracy", acc)):
        assert t.dtype == tf.float32 and t.shape.as_list() == [], (
            f"{name}: expected a float32 scalar, got {t.dtype.name} {t.shape.as_list()}: cast the bools to float32"
        )
    got_count, got_acc = (float(v) for v in sess.run([count, acc]))
    assert np.isclose(got_count, 3.0, rtol=1e-6), (
        f"n_correct: expected 3.0 (3 of 4 right), got {got_count:g}"
        + (", the fraction: count the hits with tf.reduce_sum, not tf.reduce_mean" if np.isclose(got_count, 0.75)
           else ": a count, tf.reduce_sum of the correct predictions cast to float32")
    )
    assert np.isclose(got_acc, 0.75, rtol=1e-6), (
        f"accuracy: expected 0.75 (3 of 4 right), got {got_acc:g}"
        + (", the count: average the hits with tf.reduce_mean, not tf.reduce_sum" if np.isclose(got_acc, 3.0)
           else f": that divides by every entry of the labels ({LABELS.shape[0]} examples x {LABELS.shape[1]} classes), not "
           f"by the {LABELS.shape[0]} examples: tf.reduce_mean of the correct predictions cast to float32"
           if np.isclose(got_acc, 3.0 / LABELS.size)
           else ": a fraction, tf.reduce_mean of the correct predictions cast to float32")
    )


@pytest.mark.covers("adam_train_step")
def test_adam_train_step(sess):
    w = tf.Variable(0.0, name="w")
    op = k04.adam_train_step(tf.square(w - 1.0), learning_rate=0.01)
    assert isinstance(op, tf.Operation), f"expected the tf.Operation that minimize returns, got {type(op).__name__}"
    v = tf.Variable(0.0, name="v")
    default_op = k04.adam_train_step(tf.square(v - 1.0))
    slots = [x.name for x in tf.compat.v1.global_variables() if "Adam" in x.name]
    assert slots, "adam_train_step: no Adam slot variables: use tf.compat.v1.train.AdamOptimizer"
    _run_init(sess)
    sess.run(op)
    sess.run(default_op)
    moved, moved_default = sess.run([w, v])
    # Adam's first step moves every parameter by about learning_rate, whatever its gradient.
    assert np.isclose(moved, 0.01, rtol=1e-3), (
        f"adam_train_step: one Adam step at learning_rate 0.01 should move w from 0 to 0.01, got {moved:.5f} "
        + ("(a step of 1e-4: the learning_rate argument was ignored): AdamOptimizer(learning_rate)"
           if np.isclose(moved, 1e-4, rtol=1e-3) else "(gradient descent would give 0.02)")
    )
    assert np.isclose(moved_default, 1e-4, rtol=1e-3), f"adam_train_step: the default learning rate is 1e-4; the step moved v to {moved_default:.2e}"


@pytest.mark.covers("build_training", "loss", "correct_prediction", "n_correct", "accuracy", "adam_train_step", *MODEL)
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
    assert np.isclose(count, hits.sum(), rtol=1e-6) and np.isclose(acc, hits.mean(), rtol=1e-6), (
        f"n_correct/accuracy should count argmax(logits) == label over the batch: expected {hits.sum()}, "
        f"{hits.mean()}, got {count}, {acc}"
    )
    for _ in range(3):
        sess.run(training.train_op, feed)
    loss3 = sess.run(training.loss, feed)
    assert loss3 < 0.8 * loss0, (
        f"three Adam steps (learning rate 1e-4) on one batch should lower its loss by at least 20 % (below "
        f"{0.8 * loss0:.4f}), it went {loss0:.4f} -> {loss3:.4f} ({100 * (1 - loss3 / loss0):.0f} % lower): train_op "
        f"must minimise this loss with AdamOptimizer(learning_rate)"
    )


def _linear_model(n, seed=4):
    """A stand-in Model with variables: logits = dropout(x[:, :10] @ W + c), W [10, 10] starting at -identity, c [10]
    at 0. Returns the model, its n_correct, the variables and n images (first 10 pixels in 0.1..1)."""
    rng = np.random.RandomState(seed)
    x = tf.compat.v1.placeholder(tf.float32, [None, 784], name="x")
    y_ = tf.compat.v1.placeholder(tf.float32, [None, 10], name="y_")
    keep_prob = tf.compat.v1.placeholder(tf.float32, [], name="keep_prob")
    W = tf.Variable(-np.eye(10, dtype=np.float32), name="W")
    c = tf.Variable(np.zeros(10, np.float32), name="c")
    logits = tf.compat.v1.nn.dropout(tf.matmul(x[:, :10], W) + c, keep_prob=keep_prob)
    fields = dict.fromkeys(k04.Model._fields)
    fields.update(x=x, y_=y_, keep_prob=keep_prob, logits=logits)
    count = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1), tf.argmax(y_, 1)), tf.float32))
    images = rng.uniform(0.1, 1.0, (n, 784)).astype(np.float32)
    return k04.Model(**fields), count, (W, c), images


@pytest.mark.covers("build_training", "loss", "adam_train_step")
def test_build_training_uses_its_learning_rate(sess):
    model, _, (W, c), images = _linear_model(40)
    learning_rate = 0.003  # not the tutorial's 1e-4: a learning rate left at its default shows
    training = k04.build_training(model, learning_rate=learning_rate)
    _run_init(sess)
    before = sess.run([W, c])
    labels = np.eye(10, dtype=np.float32)[np.zeros(40, int)]  # every gradient entry is clearly non-zero
    sess.run(training.train_op, {model.x: images, model.y_: labels, model.keep_prob: 1.0})
    moved = np.concatenate([np.abs(a - b).ravel() for a, b in zip(sess.run([W, c]), before)])
    # Adam's first step moves every parameter by about learning_rate, whatever its gradient.
    assert np.allclose(moved, learning_rate, rtol=1e-2), (
        f"build_training(model, learning_rate={learning_rate}): one Adam step should move every weight by about "
        f"{learning_rate}, it moved them by {np.median(moved):.2g} (median): pass the learning_rate argument on to "
        "adam_train_step(loss, learning_rate)"
    )


def _cross_entropy(logits, labels):
    """The mean softmax cross-entropy in numpy (float64)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(np.mean(-(labels * log_softmax).sum(axis=1)))


@pytest.mark.covers("build_training", "loss")
def test_build_training_loss_is_the_cross_entropy(sess):
    model, _, (W, c), images = _linear_model(5)
    training = k04.build_training(model, learning_rate=0.01)
    _run_init(sess)
    labels = np.eye(10, dtype=np.float32)[[3, 0, 9, 3, 5]]
    got, logits = sess.run([training.loss, model.logits], {model.x: images, model.y_: labels, model.keep_prob: 1.0})
    expected = _cross_entropy(logits.astype(np.float64), labels)
    if np.isclose(got, _cross_entropy(labels.astype(np.float64), logits), rtol=1e-4):
        why = "the arguments are swapped: the kata's loss takes (logits, labels), loss(model.logits, model.y_)"
    else:
        why = "training.loss = loss(model.logits, model.y_)"
    assert np.isclose(got, expected, rtol=1e-4), (
        f"build_training: training.loss is {float(got):.4f}, expected the cross-entropy of the model's logits against "
        f"its labels, {expected:.4f}: {why}"
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


class _Recorder:
    """Stands in for the session: records every run's fetches and feed_dict, then runs it in the real one."""

    def __init__(self, sess):
        self._sess, self.runs = sess, []

    def run(self, fetches, feed_dict=None, *args, **kwargs):
        self.runs.append((fetches, dict(feed_dict or {})))
        return self._sess.run(fetches, feed_dict, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._sess, name)

    def fed(self, tensor):
        """The values fed to ``tensor`` (a key given as the tensor or its name), one per run that fed it."""
        names = (tensor, tensor.name, tensor.op.name)
        return [value for _, feed in self.runs for key, value in feed.items()
                if any(key is n or (isinstance(key, str) and key == n) for n in names)]

    def ran(self, target_op):
        """How many runs reached ``target_op`` (through inputs or control inputs of what they fetched)."""
        return sum(_reaches(fetches, target_op) for fetches, _ in self.runs)


def _reaches(fetches, target_op):
    graph, stack, seen = target_op.graph, [], set()
    for fetch in tf.nest.flatten(fetches):
        try:
            element = graph.as_graph_element(fetch)
        except (TypeError, ValueError, KeyError):
            continue
        stack.append(element.op if isinstance(element, tf.Tensor) else element)
    while stack:
        op = stack.pop()
        if op is target_op:
            return True
        if op.name in seen:
            continue
        seen.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return False


@pytest.mark.covers("evaluate")
def test_evaluate_turns_dropout_off(sess):
    model, count, images, truth = _dropout_model(150)
    recorder = _Recorder(sess)
    got = k04.evaluate(recorder, model, count, _Split(images, np.eye(10, dtype=np.float32)[truth]), batch_size=50)
    rows = [len(v) for v in recorder.fed(model.x)]
    if abs(got - 1.0) >= 1e-6 and rows and sum(rows) < 150:
        pytest.fail(
            f"evaluate: every example must be counted, the last batch too: it fed {sum(rows)} of the 150 examples "
            f"(batches of {rows}), so it reported {got:.4f} instead of 1.0: walk range(0, dataset.num_examples, "
            "batch_size)"
        )
    assert abs(got - 1.0) < 1e-6, (
        f"evaluate: every prediction is right with dropout off, but evaluate reported {got:.4f}: dropout left on at "
        "test time? feed keep_prob 1.0"
    )


@pytest.mark.covers("evaluate")
def test_evaluate_counts_every_example(sess):
    model, count, images, truth = _dropout_model(130)
    labels = truth.copy()
    labels[::3] = (labels[::3] + 1) % 10  # examples 0, 3, 6, ... are wrong: 86 of 130 are right
    recorder = _Recorder(sess)
    got = k04.evaluate(recorder, model, count, _Split(images, np.eye(10, dtype=np.float32)[labels]), batch_size=50)
    expected = float(np.mean(labels == truth))
    assert isinstance(got, float), f"evaluate should return a Python float, got {type(got).__name__}: float(...)"
    right = labels == truth
    first_100 = int(right[:100].sum())
    dropout = sorted({float(v) for v in recorder.fed(model.keep_prob)} - {1.0})
    if dropout:
        why = f"dropout is on (it fed keep_prob {dropout[0]:g}): feed keep_prob 1.0 when evaluating"
    elif abs(got - first_100 / 100) < 1e-6 or abs(got - first_100 / 130) < 1e-6:
        why = "the last, shorter batch (30 examples) was not counted: walk range(0, num_examples, batch_size)"
    elif abs(got - right.sum() / 150) < 1e-6:
        why = "that divides by 3 batches x 50 = 150: divide the total by dataset.num_examples (130)"
    elif abs(got - np.mean([right[:50].mean(), right[50:100].mean(), right[100:].mean()])) < 1e-6:
        why = "that averages the 3 batch accuracies, but the last batch is shorter: add the counts, divide by 130"
    else:
        why = "add n_correct over every batch (the last has 30) and divide by dataset.num_examples"
    assert abs(got - expected) < 1e-6, (
        f"evaluate: expected accuracy {expected:.6f} (86 right of 130, in batches of 50, 50, 30), got {got:.6f}: {why}"
    )


@pytest.mark.covers("evaluate")
def test_evaluate_keeps_the_trained_weights(sess):
    model, count, (W, c), images = _linear_model(120)
    _run_init(sess)
    rng = np.random.RandomState(5)
    trained = [rng.standard_normal((10, 10)).astype(np.float32), rng.standard_normal(10).astype(np.float32) * 0.1]
    sess.run([W.assign(trained[0]), c.assign(trained[1])])  # "trained" weights, not the initial ones
    predicted = np.argmax(images[:, :10] @ trained[0] + trained[1], axis=1)
    labels = predicted.copy()
    labels[::4] = (labels[::4] + 3) % 10  # 90 of 120 right with these weights
    recorder = _Recorder(sess)
    got = k04.evaluate(recorder, model, count, _Split(images, np.eye(10, dtype=np.float32)[labels]), batch_size=50)
    after = sess.run([W, c])
    assert all(np.array_equal(a, t) for a, t in zip(after, trained)), (
        "evaluate must not re-initialise the variables (it reset the trained weights): run "
        "global_variables_initializer once, before training"
    )
    expected = float(np.mean(predicted == labels))
    right = predicted == labels
    counted = {float(right[:100].sum() / 120): "the last, shorter batch (20 examples) was not counted",
               float(right[:100].mean()): "the last, shorter batch (20 examples) was left out",
               float(right.sum() / 150): "it divided by 3 full batches of 50 instead of dataset.num_examples"}
    dropout = sorted({float(v) for v in recorder.fed(model.keep_prob)} - {1.0})
    why = next((text for value, text in counted.items() if isinstance(got, float) and abs(got - value) < 1e-6),
               f"dropout is on (it fed keep_prob {dropout[0]:g}): feed keep_prob 1.0 when evaluating" if dropout else
               "run n_correct_op in the given session, with its variables as they are")
    assert isinstance(got, float) and abs(got - expected) < 1e-6, (
        f"evaluate: with the weights in the session the accuracy is {expected:.4f} (90 of 120), got {got}: {why}"
    )


@pytest.mark.covers("evaluate")
def test_evaluate_runs_slices_of_batch_size(sess):
    model, count, images, truth = _dropout_model(130)
    for batch_size, want in ((40, [40, 40, 40, 10]), (130, [130])):
        recorder = _Recorder(sess)
        got = k04.evaluate(recorder, model, count, _Split(images, np.eye(10, dtype=np.float32)[truth]),
                           batch_size=batch_size)
        rows = [len(v) for v in recorder.fed(model.x)]
        assert rows == want, (
            f"evaluate(..., batch_size={batch_size}) on 130 examples should run slices of {want[0]} (the last "
            f"{want[-1]}), it fed model.x slices of {rows[:6]}{' ...' if len(rows) > 6 else ''}: slice by the "
            "batch_size argument, dataset.images[start:start + batch_size]"
        )
        assert isinstance(got, float) and abs(got - 1.0) < 1e-6, (
            f"evaluate(..., batch_size={batch_size}): every prediction is right with dropout off, got {got}"
        )


@pytest.mark.covers("predict")
def test_predict(sess):
    model, _, images, truth = _dropout_model(130)
    got = k04.predict(sess, model, images, batch_size=50)
    shape = getattr(got, "shape", None)
    if shape == (30,):
        why = ("10 per batch of 50, one per class: take the argmax over axis 1 (the classes), not axis 0 (the batch), "
               "np.argmax(logits, axis=1)")
    elif shape == (100,):
        why = "the last, shorter batch (30 images) is missing: walk range(0, len(images), batch_size)"
    else:
        why = "one class id per image: run the logits batch by batch and take np.argmax(logits, axis=1)"
    assert isinstance(got, np.ndarray) and shape == (130,), (
        f"predict: expected a numpy array of 130 class ids for 130 images in batches of 50, got "
        f"{shape if isinstance(got, np.ndarray) else type(got).__name__}: {why}"
    )
    assert got.dtype == np.int64, (
        f"predict: expected int64 class ids (the docstring's dtype, np.argmax's), got {got.dtype}: "
        + ("return them as int64, .astype(np.int64)" if np.issubdtype(got.dtype, np.integer)
           else "take the argmax of the logits, np.argmax(logits, axis=1)")
    )
    wrong = np.flatnonzero(got != truth)
    batches_right = [bool(np.array_equal(got[i:i + 50], truth[i:i + 50])) for i in (0, 50, 100)]
    if wrong.size and batches_right[0] and not any(batches_right[1:]):
        fix = ("the first batch is right, the later ones are not: run every slice images[start:start + batch_size] "
               "and keep each slice's predictions in order")
    else:
        fix = "feed keep_prob 1.0 and take argmax over axis 1"
    assert wrong.size == 0, (
        f"predict: {wrong.size} of 130 predictions differ from argmax(logits) with dropout off (first at row "
        f"{wrong[0]}: got {got[wrong[0]]}, expected {truth[wrong[0]]}): {fix}"
    )
    try:
        none, error = k04.predict(sess, model, images[:0], batch_size=50), None
    except Exception as exc:  # noqa: BLE001 - any error is the learner's
        none, error = None, f"{type(exc).__name__}: {exc}".splitlines()[0]
    assert error is None and getattr(none, "shape", None) == (0,) and none.dtype == np.int64, (
        "predict: on 0 images (an empty [0, 784] array) expected an empty int64 array of class ids, shape (0,), "
        + (f"it raised {error}" if error else f"got {getattr(none, 'dtype', '')} {getattr(none, 'shape', type(none).__name__)}")
        + ": with no batch to run, return np.zeros([0], np.int64) (np.concatenate needs at least one array)"
    )
    before = len(sess.graph.get_operations())
    k04.predict(sess, model, images, batch_size=50)
    grown = len(sess.graph.get_operations()) - before
    assert grown == 0, (
        f"predict: a second call added {grown} ops to the graph: run model.logits and take np.argmax of the numbers; "
        "a tf.argmax (or any op) built inside predict is a new op on every call, and the graph grows for good"
    )


@pytest.mark.covers("predict")
def test_predict_runs_slices_of_batch_size(sess, monkeypatch):
    from tensorflow.python.client import session as session_lib

    model, _, images, _ = _dropout_model(130)
    fed, real = [], session_lib.BaseSession.run

    def run(self, fetches, feed_dict=None, *args, **kwargs):
        fed.extend(len(v) for k, v in (feed_dict or {}).items() if getattr(k, "name", k) == model.x.name)
        return real(self, fetches, feed_dict, *args, **kwargs)

    monkeypatch.setattr(session_lib.BaseSession, "run", run)
    for batch_size, want in ((50, [50, 50, 30]), (7, [7] * 18 + [4])):
        del fed[:]
        k04.predict(sess, model, images, batch_size=batch_size)
        assert fed == want, (
            f"predict(..., batch_size={batch_size}) on 130 images should run slices of {want[0]} (the last {want[-1]}), "
            f"it fed model.x slices of {fed[:6]}{' ...' if len(fed) > 6 else ''}: slice by the batch_size argument, "
            "images[start:start + batch_size]"
        )


# --------------------------------------------------------------------------- picture
@pytest.mark.covers("save_report")
def test_save_report_png(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="the picture needs matplotlib: pip install -e '.[test]'")
    from matplotlib.axes import Axes

    drawn = []  # every array given to Axes.imshow (matshow goes through it too)
    real_imshow = Axes.imshow

    def recording_imshow(self, X, *args, **kwargs):
        drawn.append(np.array(X, copy=True))
        return real_imshow(self, X, *args, **kwargs)

    monkeypatch.setattr(Axes, "imshow", recording_imshow)
    rng = np.random.RandomState(0)
    images = rng.uniform(0, 1, (40, 784)).astype(np.float32)
    labels = np.arange(40) % 10
    predictions = labels.copy()
    predictions[::3] = (labels[::3] + 1) % 10
    history = [{"step": 100 * (i + 1), "loss": 1.0 / (i + 1), "val_accuracy": 0.9 + 0.01 * i} for i in range(6)]
    path = tmp_path / "report.png"
    returned, left = pyplot_figures_left(lambda: k04.save_report(str(path), images, labels, predictions, history))
    assert not left, f"save_report left {left} {PYPLOT_LEFT}"
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(sys.modules[k04.save_report.__module__]))
    at_top = [node.lineno for node in tree.body
              if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "matplotlib" for a in node.names)
              or isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "matplotlib"]
    assert not at_top, (
        f"save_report: import matplotlib inside the function, as the docstring says, not at the top of the file (line "
        f"{at_top[0]}): every import of k04 (n04's too) would load matplotlib, which only the report needs"
    )
    assert path.is_file(), f"save_report wrote nothing at {path}"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"not a PNG file: it starts with {data[:8]!r}"
    assert data[12:16] == b"IHDR" and data[-8:-4] == b"IEND", "a PNG starts with an IHDR chunk and ends with IEND"
    assert isinstance(returned, (str, os.PathLike)) and str(returned) == str(path), (
        f"save_report should return the path it wrote, {str(path)!r}, got {returned!r}"
    )
    size = struct.unpack(">II", data[16:24])
    assert size == (1200, 600), (
        f"expected a 1200 x 600 pixel image (figsize (12, 6) at dpi 100), got {size[0]} x {size[1]}: "
        "do not save with bbox_inches='tight'"
    )
    # Which digits were drawn: each 28 x 28 array given to imshow, matched to its image (checked only when every
    # one matches an image, so other ways to draw are not judged).
    flat = images.reshape(40, 784)
    ids = [next((i for i in range(40) if np.allclose(flat[i], a.reshape(-1), atol=1e-6)), None)
           for a in drawn if a.size == 784]
    wrong = [int(i) for i in np.flatnonzero(labels != predictions)]
    if ids and None not in ids:
        assert ids == wrong, (
            f"save_report must draw the MISclassified digits (labels != predictions), in dataset order: it drew "
            f"examples {ids}, expected {wrong}: pick them with np.flatnonzero(labels != predictions)[:max_digits]"
        )
    del drawn[:]
    k04.save_report(str(tmp_path / "five.png"), images, labels, predictions, history, max_digits=5)
    ids = [next((i for i in range(40) if np.allclose(flat[i], a.reshape(-1), atol=1e-6)), None)
           for a in drawn if a.size == 784]
    if None not in ids:
        assert ids == wrong[:5], (
            f"save_report(..., max_digits=5) must draw the first 5 misclassified digits {wrong[:5]}, it drew "
            f"{ids}: take np.flatnonzero(labels != predictions)[:max_digits], with the max_digits argument"
        )


# --------------------------------------------------------------------------- the training loop, on a stand-in model
class _TestSplit:
    """data.test in train's stand-in data: train measures on the validation split, never on the test split."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        pytest.fail("train: measure val_accuracy on data.validation (evaluate(sess, model, training.n_correct, "
                    f"data.validation, batch_size=500)), not on data.test (it read data.test.{name}): the test split "
                    "is kept for the final measure, after training")


class _Batches:
    """A training split whose k-th batch (1-based) has every pixel k / 100; it records each next_batch call."""

    num_examples = 1000

    def __init__(self):
        self.calls = []

    def next_batch(self, batch_size):
        self.calls.append(batch_size)
        k = len(self.calls)
        return np.full((batch_size, 784), k / 100, np.float32), np.eye(10, dtype=np.float32)[np.zeros(batch_size, int)]

    def __repr__(self):
        return f"<_Batches: {len(self.calls)} batches drawn>"


@pytest.mark.covers("train", "evaluate")
def test_train_loop_on_a_stand_in_model(sess, capsys, monkeypatch):
    """train on a model whose loss is keep_prob * mean(batch): each history loss is known exactly."""
    model, count, images, truth = _dropout_model(40)
    step_var = tf.Variable(0.0, name="steps_run")
    loss_tensor = model.keep_prob * tf.reduce_mean(model.x) + 0.0 * step_var  # needs the variables initialised
    training = k04.Training(
        loss=loss_tensor, train_op=step_var.assign_add(1.0).op, correct_prediction=None, n_correct=count, accuracy=None
    )
    batches = _Batches()
    data = k04.Datasets(train=batches, validation=_Split(images, np.eye(10, dtype=np.float32)[truth]), test=_TestSplit())
    recorder = _Recorder(sess)
    evaluated = recording_argument(monkeypatch, sys.modules[k04.train.__module__], "evaluate", "batch_size")
    history = k04.train(recorder, model, training, data, steps=20, batch_size=5, keep_prob=0.6, log_every=10,
                        verbose=False)
    assert capsys.readouterr().out == "", "train(..., verbose=False) must print nothing"
    assert batches.calls == [5] * 20, (
        f"train should draw one batch of batch_size per step (20 x data.train.next_batch(5)), got {len(batches.calls)} "
        f"calls with sizes {sorted(set(batches.calls))}"
    )
    inits = recorder.ran(step_var.initializer)
    assert inits <= 1, (
        f"train re-initialised the variables inside the loop (the initializer ran {inits} times, resetting the "
        "trained weights each time): run global_variables_initializer once, before the loop"
    )
    runs = float(sess.run(step_var))
    assert runs == 20.0, (
        f"train: training.train_op should run once per step (20 times), but the counter it increments ended at "
        f"{runs:g}: run it in every step"
        + (", and initialise the variables once, before the loop (initialising inside it resets them)" if runs < 20 else "")
    )
    train_op, loss_op = training.train_op, loss_tensor.op
    alone = sum(_reaches(fetches, loss_op) and not _reaches(fetches, train_op) for fetches, _ in recorder.runs)
    assert alone == 0, (
        f"train ran training.loss in a sess.run of its own {alone} times: fetch it with the train op in the same "
        "run, sess.run([training.train_op, training.loss], feed_dict=...), so each logged loss is the one that "
        "step computed (a second run computes the net again, after the update, with a new dropout mask)"
    )
    assert isinstance(history, list) and [h.get("step") for h in history] == [10, 20], (
        f"train(..., steps=20, log_every=10): the history should have entries at steps [10, 20], got "
        f"{[h.get('step') if isinstance(h, dict) else h for h in history] if isinstance(history, list) else history}"
    )
    for h in history:
        assert set(h) == {"step", "loss", "val_accuracy"}, f"expected the keys step, loss, val_accuracy, got {sorted(h)}"
        assert type(h["step"]) is int and type(h["loss"]) is float and type(h["val_accuracy"]) is float, (
            f"train: history entries hold Python int/float (float(...)), got {({k: type(v).__name__ for k, v in h.items()})}"
        )
    per_step = 0.6 * np.arange(1, 21) / 100  # the loss of step k is keep_prob * k / 100
    expected = [per_step[:10].mean(), per_step[10:].mean()]
    got = [h["loss"] for h in history]
    if np.allclose(got, [per_step[9], per_step[19]], rtol=1e-4):
        why = "those are the losses of steps 10 and 20 alone: record the MEAN over the steps since the last entry"
    elif np.allclose(got, [per_step[:10].mean(), per_step.mean()], rtol=1e-4):
        why = "the second is the mean since the start: start a new list of losses after each entry"
    elif np.allclose(got, np.array(expected) / 0.6, rtol=1e-4):
        why = "that is the loss with keep_prob 1.0: feed the keep_prob argument (0.6 here) when training"
    elif np.allclose(got, np.array(expected) / 0.6 * 0.5, rtol=1e-4):
        why = "that is the loss with keep_prob 0.5: feed the keep_prob argument (0.6 here), not a constant"
    else:
        why = "run training.loss with train_op in each step and average the values over the last log_every steps"
    assert np.allclose(got, expected, rtol=1e-4), (
        f"train: expected history losses {[round(float(v), 6) for v in expected]}, got "
        f"{[round(float(v), 6) for v in got]}: {why}"
    )
    val = [h["val_accuracy"] for h in history]
    assert np.allclose(val, 1.0), (
        f"val_accuracy should be 1.0 here (every validation example is right with dropout off), got {val}: "
        "evaluate the whole validation set with evaluate(...) (keep_prob 1.0)"
    )
    assert evaluated and set(evaluated) == {500}, (
        f"train: measure val_accuracy with evaluate(sess, model, training.n_correct, data.validation, "
        f"batch_size=500), the docstring's batches of 500; evaluate got the batch sizes {sorted(set(evaluated))}"
        + (" (its default, 50: pass batch_size=500)" if 50 in evaluated else "")
    )


# --------------------------------------------------------------------------- differential checks
# The net behind the concept tests above: each function against the reference (solutions/) on small
# inputs chosen to show what the concept tests' few values cannot (batch 1, non-square sizes, several
# channels, kernels that are not symmetric, large logits, an empty input, other arguments). Where a
# function makes variables, both sides get the same weights: each trainable variable is set to values
# drawn from its NAME (the concept tests check the names first). Skipped: DataSet (any permutation drawn
# from its seeded RandomState is right, and the concept tests check the epochs), weight_variable (random:
# its statistics are checked above), train (a training loop, checked on a stand-in model above) and
# save_report (a picture).
import zlib  # noqa: E402

from tfkata.differential import Case, compare, reference  # noqa: E402

REF = reference("k04")


def _value_for(var):
    """The same values for a variable of that name and shape on both sides."""
    return _values(var.op.name, tuple(var.shape.as_list()))


@functools.lru_cache(maxsize=64)
def _values(name, shape):
    rng = np.random.RandomState(zlib.crc32(name.encode()))
    return (rng.standard_normal(shape) * 0.3).astype(np.float32)


def _with_weights(build, feed=None, after=None):
    """Build in a fresh seeded graph, initialise, give every trainable variable :func:`_value_for`, run what
    ``build`` returns (a nest of tensors) with ``feed(built)``; ``after(sess, built)`` may run more."""
    with fresh_graph() as graph:
        built = build()
        with tf.compat.v1.Session(graph=graph, config=_quick_session_config()) as s:
            s.run(tf.compat.v1.global_variables_initializer())
            for var in tf.compat.v1.trainable_variables():
                var.load(_value_for(var), s)
            if after is not None:
                return after(s, built)
            return s.run(built, feed(built) if feed else None)


@pytest.mark.differential
@pytest.mark.covers("preprocess_images")
def test_preprocess_images_matches_reference():
    rng = np.random.RandomState(11)
    cases = [
        Case("1 image [1, 28, 28] with pixels 0..255", np.arange(784).reshape(1, 28, 28).astype(np.uint8)),
        Case("3 images [3, 28, 28] that differ", rng.randint(0, 256, (3, 28, 28)).astype(np.uint8)),
    ]
    compare("preprocess_images", k04, REF, cases, lambda mod, case: mod.preprocess_images(case.args.copy()))


@pytest.mark.differential
@pytest.mark.covers("one_hot")
def test_one_hot_matches_reference():
    cases = [
        Case("labels [2] (one label, 10 classes)", (np.array([2]), {})),
        Case("labels [2, 0, 2] (10 classes, the largest label 2)", (np.array([2, 0, 2], np.uint8), {})),
        Case("labels [4, 1, 4, 0] with num_classes=5", (np.array([4, 1, 4, 0], np.int64), {"num_classes": 5})),
        Case("labels [] (none)", (np.zeros([0], np.int64), {})),
    ]
    compare("one_hot", k04, REF, cases, lambda mod, case: mod.one_hot(case.args[0], **case.args[1]))


@pytest.mark.differential
@pytest.mark.covers("read_data_sets")
def test_read_data_sets_matches_reference():
    cases = [
        Case("12 training and 5 test digits, validation_size=1, seed=0 (splits as [train, validation, test])", (1, 0)),
        Case("12 training and 5 test digits, validation_size=4, seed=7", (4, 7)),
    ]
    compare("read_data_sets", k04, REF, cases, _read_data_sets_run)


@pytest.mark.differential
@pytest.mark.covers("bias_variable")
def test_bias_variable_matches_reference():
    def run(mod, case):
        shape, kwargs = case.args
        with fresh_graph() as graph:
            b = mod.bias_variable(shape, **kwargs)
            with tf.compat.v1.Session(graph=graph) as s:
                s.run(tf.compat.v1.global_variables_initializer())
                return b.name, s.run(b)
    cases = [Case("shape [1]", ([1], {})), Case("shape [2, 3] named 'bias'", ([2, 3], {"name": "bias"}))]
    compare("bias_variable", k04, REF, cases, run)


@pytest.mark.differential
@pytest.mark.covers("conv2d")
def test_conv2d_matches_reference():
    rng = np.random.RandomState(13)

    def case(label, x_shape, w_shape):
        return Case(label, (rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(w_shape).astype(np.float32)))
    cases = [
        case("x [1, 3, 4, 1] and a 3x3 kernel that is not symmetric", [1, 3, 4, 1], [3, 3, 1, 1]),
        case("x [2, 5, 3, 2] (2 channels in) and a 3x3 kernel to 3 channels", [2, 5, 3, 2], [3, 3, 2, 3]),
        case("x [1, 4, 5, 1] and a 2x2 kernel (even: SAME pads one side more)", [1, 4, 5, 1], [2, 2, 1, 2]),
    ]
    compare("conv2d", k04, REF, cases,
            lambda mod, c: _with_weights(lambda: mod.conv2d(tf.constant(c.args[0]), tf.constant(c.args[1]))))


@pytest.mark.differential
@pytest.mark.covers("max_pool_2x2")
def test_max_pool_2x2_matches_reference():
    rng = np.random.RandomState(14)
    cases = [Case(f"x of shape {s} with negative values", rng.standard_normal(s).astype(np.float32))
             for s in ([1, 1, 1, 1], [2, 3, 5, 3], [1, 4, 2, 2])]
    compare("max_pool_2x2", k04, REF, cases, lambda mod, c: _with_weights(lambda: mod.max_pool_2x2(tf.constant(c.args))))


@pytest.mark.differential
@pytest.mark.covers("fc_layer")
def test_fc_layer_matches_reference():
    rng = np.random.RandomState(15)
    cases = [
        Case("x [1, 3] to 2 units (ReLU)", (rng.standard_normal((1, 3)), dict(out_dim=2))),
        Case("x [4, 5] to 3 units, activation=None", (rng.standard_normal((4, 5)), dict(out_dim=3, activation=None))),
        Case("x [2, 3] to 4 units, activation=tf.tanh", (rng.standard_normal((2, 3)), dict(out_dim=4, activation=tf.tanh))),
    ]
    compare("fc_layer", k04, REF, cases, lambda mod, c: _with_weights(
        lambda: mod.fc_layer(tf.constant(c.args[0], tf.float32), scope="dense", **c.args[1])))


@pytest.mark.differential
@pytest.mark.covers("conv_and_pool")
def test_conv_and_pool_matches_reference():
    rng = np.random.RandomState(16)
    cases = [
        Case("x [1, 4, 4, 1], kernel_size 3, 2 channels out", (rng.standard_normal((1, 4, 4, 1)), dict(kernel_size=3, out_channel=2))),
        Case("x [2, 5, 6, 3], kernel_size 2, 4 channels out (odd size: pooling rounds up)",
             (rng.standard_normal((2, 5, 6, 3)), dict(kernel_size=2, out_channel=4))),
    ]
    compare("conv_and_pool", k04, REF, cases, lambda mod, c: _with_weights(
        lambda: mod.conv_and_pool(tf.constant(c.args[0], tf.float32), scope="block", **c.args[1])))


@pytest.mark.differential
@pytest.mark.covers("build_cnn")
def test_build_cnn_matches_reference(raw):
    def run(mod, case):
        def build():
            m = mod.build_cnn()
            return m, [m.x_image, m.conv1, m.conv2, m.conv2_flat, m.fc1, m.logits]
        return _with_weights(build, after=lambda s, built: s.run(built[1], {built[0].x: case.args, built[0].keep_prob: 1.0}))
    cases = [Case("2 test digits, keep_prob 1.0 (x_image, conv1, conv2, conv2_flat, fc1, logits)", _test_images(raw, 2))]
    compare("build_cnn", k04, REF, cases, run, atol=1e-4, rtol=1e-4)


def _logits_labels(seed, batch, classes, scale=3.0):
    rng = np.random.RandomState(seed)
    return ((rng.standard_normal((batch, classes)) * scale).astype(np.float32),
            np.eye(classes, dtype=np.float32)[rng.randint(0, classes, batch)])


def _confident_and_wrong():
    logits, labels = _logits_labels(19, 3, 10)
    logits[1, (np.argmax(labels[1]) + 1) % 10] = 150.0  # 150 above the labelled class: softmax underflows to 0 there
    return logits, labels


LOGIT_CASES = [
    Case("logits [1, 3] (batch 1)", _logits_labels(17, 1, 3)),
    Case("logits [5, 4] that differ row by row", _logits_labels(18, 5, 4)),
    Case("logits [3, 10], row 1 confident and wrong (a logit of 150 on a class that is not its label)",
         _confident_and_wrong()),
]


def _metric_run(name):
    return lambda mod, c: _with_weights(lambda: getattr(mod, name)(tf.constant(c.args[0]), tf.constant(c.args[1])))


@pytest.mark.differential
@pytest.mark.covers("loss")
def test_loss_matches_reference():
    def run(mod, case):  # finite: a NaN compares as equal to anything in float comparisons
        value = _metric_run("loss")(mod, case)
        return {"loss": value, "finite": np.isfinite(value)}
    compare("loss", k04, REF, LOGIT_CASES, run)


@pytest.mark.differential
@pytest.mark.covers("correct_prediction")
def test_correct_prediction_matches_reference():
    compare("correct_prediction", k04, REF, LOGIT_CASES, _metric_run("correct_prediction"))


@pytest.mark.differential
@pytest.mark.covers("n_correct")
def test_n_correct_matches_reference():
    compare("n_correct", k04, REF, LOGIT_CASES, _metric_run("n_correct"))


@pytest.mark.differential
@pytest.mark.covers("accuracy")
def test_accuracy_matches_reference():
    compare("accuracy", k04, REF, LOGIT_CASES, _metric_run("accuracy"))


@pytest.mark.differential
@pytest.mark.covers("adam_train_step")
def test_adam_train_step_matches_reference():
    def run(mod, case):
        learning_rate, steps = case.args

        def build():
            w = tf.Variable(np.zeros((2, 3), np.float32), name="w")
            c = tf.Variable(np.zeros(3, np.float32), name="c")
            loss = tf.reduce_sum(tf.square(tf.matmul([[1.0, -2.0]], w) + c - [[1.0, 0.5, -3.0]]))
            op = mod.adam_train_step(loss, **({} if learning_rate is None else {"learning_rate": learning_rate}))
            return op, (w, c)

        def after(s, built):
            for _ in range(steps):
                s.run(built[0])
            return s.run(built[1])
        return _with_weights(build, after=after)
    cases = [Case("w [2, 3] and c [3], learning_rate 0.01, three steps", (0.01, 3)),
             Case("the same, the default learning rate, two steps", (None, 2))]
    compare("adam_train_step", k04, REF, cases, run)


def _stand_in_outputs(mod, case, what):
    """A _linear_model with named weights: what build_training / evaluate / predict give on it."""
    n, arg = case.args
    # Labels: what the weights predict (_values of W and c), every third one changed: some right, some wrong.
    images = np.random.RandomState(21).uniform(0.1, 1.0, (n, 784)).astype(np.float32)
    predicted = np.argmax(images[:, :10] @ _values("W", (10, 10)) + _values("c", (10,)), axis=1)
    predicted[::3] = (predicted[::3] + 1) % 10
    labels = np.eye(10, dtype=np.float32)[predicted]

    def build():
        model, count, _, images = _linear_model(n, seed=21)
        return model, count, images

    def after(s, built):
        model, count, images = built
        if what == "evaluate":
            return mod.evaluate(s, model, count, _Split(images, labels), batch_size=arg)
        return mod.predict(s, model, images, batch_size=arg)
    if what != "build_training":
        return _with_weights(build, after=after)

    def build_training():
        model, _, (W, c), images = _linear_model(n, seed=21)
        return model, mod.build_training(model, learning_rate=arg), (W, c), images

    def train_once(s, built):
        model, training, weights, images = built
        feed = {model.x: images, model.y_: labels, model.keep_prob: 1.0}
        values = s.run({"loss": training.loss, "correct_prediction": training.correct_prediction,
                        "n_correct": training.n_correct, "accuracy": training.accuracy}, feed)
        s.run(training.train_op, feed)
        values["W, c after one step"] = s.run(weights)
        return values
    return _with_weights(build_training, after=train_once)


@pytest.mark.differential
@pytest.mark.covers("build_training")
def test_build_training_matches_reference():
    cases = [Case("a linear stand-in model (logits = x[:, :10] @ W + c), a batch of 1, learning_rate 0.02 "
                  "(loss, correct_prediction, n_correct, accuracy, then W and c after one step)", (1, 0.02)),
             Case("the stand-in model, a batch of 6, learning_rate 0.005", (6, 0.005))]
    compare("build_training", k04, REF, cases, lambda mod, c: _stand_in_outputs(mod, c, "build_training"))


@pytest.mark.differential
@pytest.mark.covers("evaluate")
def test_evaluate_matches_reference():
    cases = [Case("3 examples, batch_size 50 (one short batch)", (3, 50)),
             Case("7 examples in batches of 2", (7, 2)),
             Case("5 examples in batches of 1", (5, 1))]
    compare("evaluate", k04, REF, cases, lambda mod, c: _stand_in_outputs(mod, c, "evaluate"))


@pytest.mark.differential
@pytest.mark.covers("predict")
def test_predict_matches_reference():
    cases = [Case("0 images (an empty [0, 784] array)", (0, 500)),
             Case("1 image", (1, 500)),
             Case("7 images in batches of 3", (7, 3))]
    compare("predict", k04, REF, cases, lambda mod, c: _stand_in_outputs(mod, c, "predict"))


# --------------------------------------------------------------------------- training
STEPS, BATCH, LEARNING_RATE, KEEP_PROB = 400, 50, 1e-3, 0.5
MIN_TEST_ACCURACY = 0.96  # measured at step 400 (TF 2.21 and 2.12): 97.58 %
MIN_VAL_ACCURACY = 0.96  # measured at step 400 (TF 2.21 and 2.12): 97.84 %
PICTURE = "kata-output/k04/report.png"


def _train_and_test(steps, batch_size, learning_rate, keep_prob, picture=None):
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
            # Accuracy on 5000 training digits with dropout off, computed here: compared with the validation
            # figure it tells "does not learn" from "learns but is evaluated differently".
            train_logits = sess.run(model.logits, {model.x: data.train.images[:5000], model.keep_prob: 1.0})
    run = _Run(
        history=history,
        test_accuracy=test_accuracy,
        train_accuracy=float(np.mean(np.argmax(train_logits, 1) == np.argmax(data.train.labels[:5000], 1))),
        seconds=seconds,
        images=data.test.images,
        labels=np.argmax(data.test.labels, axis=1),
        predictions=np.argmax(np.concatenate(logits), axis=1),
        picture=None,
    )
    if picture is not None:
        try:  # best effort, so that a failure message can point at the curve; graded by its own test
            path = output_dir("k04") / "report.png"
            k04.save_report(str(path), run.images, run.labels, run.predictions, run.history)
            run.picture = PICTURE if path.is_file() else None
        except Exception:  # noqa: BLE001 - save_report may still be a stub or need matplotlib
            run.picture = None
    return run


# The reference's training loss at steps 300 and 400 of the graded run (TF 2.21 and 2.12): 0.165, 0.128 (means
# over 100 steps of 50): the higher is the bar, so only a run ending above 1.5 x 0.165 is told "learns too slowly".
REFERENCE_LOSS = 0.165
# The function to read first for each kind of curve (tfkata.feedback.curves.KINDS): "Stuck?" names it.
SUSPECTS = {"rate": "build_training", "init": "build_cnn", "loop": "train", "eval": "evaluate", "measure": "evaluate"}


def _diagnosis(run, reference_loss=None):
    """One sentence on the curve of ``run`` (tfkata.feedback.curves), for a failure message."""
    losses = [h.get("loss", float("nan")) for h in run.history if isinstance(h, dict)]
    valid = [h.get("val_accuracy") for h in run.history if isinstance(h, dict) and "val_accuracy" in h]
    return explain_curve(
        losses, n_classes=10, train_metric=run.train_accuracy, valid_metric=valid or None, picture=run.picture,
        reference_loss=reference_loss, suspects=SUSPECTS,
    )


@pytest.fixture(scope="module")
def trained():
    """The graded run, once: 400 steps x 50, Adam 1e-3, keep_prob 0.5 (about 110 s of CPU)."""
    return _train_and_test(STEPS, BATCH, LEARNING_RATE, KEEP_PROB, picture=PICTURE)


@pytest.mark.training
@pytest.mark.covers(*ALL_TRAINING)
@pytest.mark.points(3)
@pytest.mark.timeout(900)
def test_train_history(trained):
    steps = [h.get("step") for h in trained.history]
    assert steps == list(range(100, STEPS + 1, 100)), (
        f"expected one history entry every 100 steps, at steps {list(range(100, STEPS + 1, 100))}, got {steps}"
    )
    for h in trained.history:
        assert set(h) == {"step", "loss", "val_accuracy"}, f"expected keys step, loss, val_accuracy, got {sorted(h)}"
        assert 0.0 <= h["val_accuracy"] <= 1.0, f"val_accuracy must be a fraction, got {h}"
    first, last = trained.history[0], trained.history[-1]
    line = (
        f"k04 history: loss {first['loss']:.4f} -> {last['loss']:.4f}, val acc {first['val_accuracy']:.4f} -> "
        f"{last['val_accuracy']:.4f}, train acc (5000 digits, dropout off) {trained.train_accuracy:.4f}"
    )
    print(line)
    assert np.isfinite(last["loss"]) and last["loss"] < first["loss"], f"the training loss did not fall: {_diagnosis(trained, REFERENCE_LOSS)}"
    assert last["val_accuracy"] >= MIN_VAL_ACCURACY, (
        f"validation accuracy after {STEPS} steps is {last['val_accuracy']:.4f}, expected >= {MIN_VAL_ACCURACY} "
        f"(the reference: 0.9784 at step 400 on TF 2.21 and 2.12): "
        f"{_diagnosis(trained, REFERENCE_LOSS)}"
    )


@pytest.mark.training
@pytest.mark.covers(*ALL_TRAINING)
@pytest.mark.points(5)
@pytest.mark.timeout(900)
def test_training_reaches_test_accuracy(trained):
    acc = trained.test_accuracy
    line = (
        f"k04: {STEPS} steps x {BATCH}, Adam {LEARNING_RATE:g}, keep_prob {KEEP_PROB}: "
        f"test accuracy {acc:.4f} on 10,000 images, training {trained.seconds:.1f} s"
    )
    print(line)
    assert acc >= MIN_TEST_ACCURACY, (
        f"test accuracy {acc:.4f} after {STEPS} steps, expected >= {MIN_TEST_ACCURACY} (measured 0.9758 with the "
        f"reference solution on TF 2.21 and 2.12): {_diagnosis(trained, REFERENCE_LOSS)}"
    )


@pytest.mark.training
@pytest.mark.covers("save_report", *ALL_TRAINING)
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
@pytest.mark.training
@pytest.mark.covers(*ALL_TRAINING)
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
    assert result.test_accuracy >= 0.990, f"{line}; expected >= 0.990: {_diagnosis(result)}"


@pytest.mark.gpu
@pytest.mark.training
@pytest.mark.covers(*ALL_TRAINING)
@pytest.mark.points(3)
@pytest.mark.timeout(3600)
def test_training_tutorial_schedule():
    """The tutorial's full schedule: 20,000 steps x 50, Adam 1e-4, keep_prob 0.5 -> >= 99.2 % (its headline)."""
    result = _train_and_test(20000, 50, 1e-4, 0.5)
    line = f"k04 gpu: 20000 steps x 50, Adam 0.0001: test accuracy {result.test_accuracy:.4f}, {result.seconds:.0f} s"
    print(line)
    assert result.test_accuracy >= 0.992, f"{line}; expected >= 0.992 (the tutorial's figure): {_diagnosis(result)}"
