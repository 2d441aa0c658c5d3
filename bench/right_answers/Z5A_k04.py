# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run k04        (or: pytest tests/test_k04_cnn_mnist.py)
# Generated from solutions/k04_cnn_mnist.py by `python -m tfkata.stubs k04`; `kata reset k04` restores it.
"""k04 · MNIST with a CNN (CNN：MNIST 手写数字识别).

The tutorial's ``mnist_cnn.py`` in pieces you can write and test one at a time: the input
pipeline that ``input_data.read_data_sets('MNIST_data', one_hot=True)`` used to give (it is gone
from TensorFlow 2), the LeNet-style helpers (``weight_variable`` ... ``conv_and_pool``), the
two-conv-layer network under ``variable_scope("CNN")``, its loss / accuracy / Adam step, the
training loop, the batched test evaluation and a picture of what went wrong.

Shapes use B for the batch size. Everything builds in the default ``tf.Graph`` with the
``tf.compat.v1`` API the slides use; the harness gives every test a fresh, seeded graph. The raw
digits come from ``tfkata.data.mnist.load_mnist()``, bundled with the repo and verified: a DICT
``{"x_train": uint8 [60000, 28, 28], "y_train": uint8 [60000], "x_test": uint8 [10000, 28, 28],
"y_test": uint8 [10000]}`` (not Keras' ``(x, y), (x, y)`` tuple: index it by name).

Run the whole tutorial once your functions pass:  ``python katas/k04_cnn_mnist.py --steps 2000``.
"""
import collections

import numpy as np

from tfkata.data.mnist import load_mnist
from tfkata.script import quiet_tensorflow

tf = quiet_tensorflow()  # import tensorflow as tf, without its start-up noise (see tfkata/script.py)

IMAGE_SIZE = 28
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE  # 784
NUM_CLASSES = 10

# What build_cnn returns: the placeholders to feed and every layer's output tensor.
Model = collections.namedtuple(
    "Model", ["x", "y_", "keep_prob", "x_image", "conv1", "conv2", "conv2_flat", "fc1", "fc1_drop", "logits"]
)
# What build_training returns: the ops put on top of the model's logits.
Training = collections.namedtuple("Training", ["loss", "train_op", "correct_prediction", "n_correct", "accuracy"])
# What read_data_sets returns, like mnist.train / mnist.validation / mnist.test in the tutorial.
Datasets = collections.namedtuple("Datasets", ["train", "validation", "test"])


# --------------------------------------------------------------------------- input pipeline
def preprocess_images(images):
    return (np.asarray(images).reshape(len(images), NUM_PIXELS).astype(np.float32) / 255.0).astype(np.float32)


def one_hot(labels, num_classes=NUM_CLASSES):
    labels = np.asarray(labels)
    out = np.zeros((labels.shape[0], num_classes), dtype=np.float32)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


class DataSet:
    def __init__(self, images, labels, seed=0):
        if len(images) != len(labels):
            raise ValueError("images and labels differ in length")
        self.images = images
        self.labels = labels
        self.num_examples = len(images)
        self._rng = np.random.RandomState(seed)
        self._perm = None
        self._pos = 0

    def next_batch(self, batch_size):
        if not 1 <= batch_size <= self.num_examples:
            raise ValueError("batch_size out of range")
        idx = []
        while len(idx) < batch_size:
            if self._perm is None or self._pos >= self.num_examples:
                self._perm = self._rng.permutation(self.num_examples)
                self._pos = 0
            take = min(batch_size - len(idx), self.num_examples - self._pos)
            idx.extend(self._perm[self._pos:self._pos + take])
            self._pos += take
        idx = np.array(idx)
        return self.images[idx], self.labels[idx]


def read_data_sets(validation_size=5000, seed=0):
    raw = load_mnist()
    x = preprocess_images(raw["x_train"])
    y = one_hot(raw["y_train"])
    train = DataSet(x[validation_size:], y[validation_size:], seed=seed)
    val = DataSet(x[:validation_size], y[:validation_size], seed=seed + 1)
    test = DataSet(preprocess_images(raw["x_test"]), one_hot(raw["y_test"]), seed=seed + 2)
    return Datasets(train, val, test)


# --------------------------------------------------------------------------- helpers (slide: conv_and_pool)
def weight_variable(shape, name="W"):
    return tf.Variable(tf.random.truncated_normal(shape, stddev=0.1), name=name)


def bias_variable(shape, name="b"):
    return tf.Variable(tf.constant(0.1, shape=shape), name=name)


def conv2d(x, W):
    return tf.nn.conv2d(x, W, strides=[1, 1, 1, 1], padding="SAME")


def max_pool_2x2(x):
    return tf.nn.max_pool2d(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")


def fc_layer(x, out_dim=10, scope="fc", activation=tf.nn.relu):
    with tf.compat.v1.variable_scope(scope):
        in_dim = x.shape[-1]
        W = weight_variable([in_dim, out_dim])
        b = bias_variable([out_dim])
        h = tf.matmul(x, W) + b
        return activation(h) if activation is not None else h


def conv_and_pool(x, kernel_size=5, out_channel=32, scope="conv_layer"):
    with tf.compat.v1.variable_scope(scope):
        c_in = x.shape[-1]
        W = weight_variable([kernel_size, kernel_size, c_in, out_channel])
        b = bias_variable([out_channel])
        return max_pool_2x2(tf.nn.relu(conv2d(x, W) + b))


# --------------------------------------------------------------------------- the model (slide: LeNet)
def build_cnn():
    with tf.compat.v1.variable_scope("CNN"):
        x = tf.compat.v1.placeholder(tf.float32, [None, NUM_PIXELS], name="x")
        y_ = tf.compat.v1.placeholder(tf.float32, [None, NUM_CLASSES], name="y_")
        keep_prob = tf.compat.v1.placeholder(tf.float32, [], name="keep_prob")
        x_image = tf.reshape(x, [-1, IMAGE_SIZE, IMAGE_SIZE, 1])
        conv1 = conv_and_pool(x_image, 5, 32, scope="conv1")
        conv2 = conv_and_pool(conv1, 5, 64, scope="conv2")
        conv2_flat = tf.reshape(conv2, [-1, 7 * 7 * 64])
        fc1 = fc_layer(conv2_flat, 1024, scope="fc1")
        fc1_drop = tf.nn.dropout(fc1, rate=1 - keep_prob)
        logits = fc_layer(fc1_drop, NUM_CLASSES, scope="fc2", activation=None)
    return Model(x, y_, keep_prob, x_image, conv1, conv2, conv2_flat, fc1, fc1_drop, logits)


# --------------------------------------------------------------------------- loss and metrics
def loss(logits, labels):
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def correct_prediction(logits, labels):
    return tf.equal(tf.argmax(logits, 1), tf.argmax(labels, 1))


def n_correct(logits, labels):
    return tf.reduce_sum(tf.cast(correct_prediction(logits, labels), tf.float32))


def accuracy(logits, labels):
    return tf.reduce_mean(tf.cast(correct_prediction(logits, labels), tf.float32))


def adam_train_step(loss_tensor, learning_rate=1e-4):
    return tf.compat.v1.train.AdamOptimizer(learning_rate).minimize(loss_tensor)


def build_training(model, learning_rate=1e-4):
    l = loss(model.logits, model.y_)
    return Training(
        l,
        adam_train_step(l, learning_rate),
        correct_prediction(model.logits, model.y_),
        n_correct(model.logits, model.y_),
        accuracy(model.logits, model.y_),
    )


# --------------------------------------------------------------------------- training and evaluation
def train(sess, model, training, data, steps=20000, batch_size=50, keep_prob=0.5, log_every=100, verbose=True):
    sess.run(tf.compat.v1.global_variables_initializer())
    history = []
    losses = []
    for step in range(1, steps + 1):
        bx, by = data.train.next_batch(batch_size)
        _, l = sess.run([training.train_op, training.loss],
                        feed_dict={model.x: bx, model.y_: by, model.keep_prob: keep_prob})
        losses.append(float(l))
        if step % log_every == 0:
            val = evaluate(sess, model, training.n_correct, data.validation, batch_size=500)
            rec = {"step": int(step), "loss": float(np.mean(losses)), "val_accuracy": float(val)}
            history.append(rec)
            losses = []
            if verbose:
                print(f"step {step}: loss {rec['loss']:.4f}, validation accuracy {val:.4f}")
    return history


def evaluate(sess, model, n_correct_op, dataset, batch_size=50):
    total = 0.0
    for start in range(0, dataset.num_examples, batch_size):
        total += sess.run(n_correct_op, feed_dict={
            model.x: dataset.images[start:start + batch_size],
            model.y_: dataset.labels[start:start + batch_size],
            model.keep_prob: 1.0})
    return float(total / dataset.num_examples)


def predict(sess, model, images, batch_size=500):
    out = []
    for start in range(0, len(images), batch_size):
        logits = sess.run(model.logits, feed_dict={model.x: images[start:start + batch_size], model.keep_prob: 1.0})
        out.append(np.argmax(logits, 1).astype(np.int64))
    if not out:
        return np.zeros([0], dtype=np.int64)
    return np.concatenate(out).astype(np.int64)


# --------------------------------------------------------------------------- picture
def save_report(path, images, labels, predictions, history, max_digits=24):
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    images = np.asarray(images).reshape(-1, 28, 28)
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    wrong = np.flatnonzero(labels != predictions)[:max_digits]
    fig = Figure(figsize=(12, 6), dpi=100)
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(4, 12)
    for k, i in enumerate(wrong[:24]):
        ax = fig.add_subplot(gs[k // 6, k % 6])
        ax.imshow(images[i], cmap="gray")
        ax.set_title(f"pred {predictions[i]} / true {labels[i]}", fontsize=7)
        ax.axis("off")
    ax = fig.add_subplot(gs[:, 7:])
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["loss"] for h in history], "b-", label="loss")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax2 = ax.twinx()
    ax2.plot(steps, [h["val_accuracy"] for h in history], "r-", label="val accuracy")
    ax2.set_ylabel("validation accuracy")
    fig.savefig(path, dpi=100)
    return path


if __name__ == "__main__":
    import argparse
    import os

    from tfkata.script import Progress

    parser = argparse.ArgumentParser(description="Train the tutorial's MNIST CNN with your k04 functions.")
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--keep-prob", type=float, default=0.5)
    parser.add_argument("--png", default="kata-output/k04/report.png")
    args = parser.parse_args()

    with tf.Graph().as_default():  # graph mode: placeholders do not exist in eager execution
        tf.compat.v1.set_random_seed(1234)
        mnist = read_data_sets(seed=1234)
        model = build_cnn()
        training = build_training(model, learning_rate=args.learning_rate)
        with tf.compat.v1.Session() as sess:
            with Progress(args.steps, every=10) as progress:  # steps, examples/s and time left on one line
                counted = mnist._replace(train=progress.counting(mnist.train))
                history = train(
                    sess, model, training, counted, steps=args.steps, batch_size=args.batch_size,
                    keep_prob=args.keep_prob,
                )
            print(f"test accuracy {evaluate(sess, model, training.n_correct, mnist.test):.4f}")
            predictions = predict(sess, model, mnist.test.images)
    os.makedirs(os.path.dirname(args.png) or ".", exist_ok=True)
    print("wrote", save_report(args.png, mnist.test.images, np.argmax(mnist.test.labels, 1), predictions, history))
