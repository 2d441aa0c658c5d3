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
    """Raw MNIST digits -> the network's input rows.

    ``images``: uint8 numpy array [N, 28, 28], pixels 0..255. Returns a float32 array [N, 784]
    (each image flattened row by row) with pixels scaled to [0, 1] by dividing by 255, as
    ``input_data.read_data_sets`` did. The input array is not modified.
    """
    images = np.asarray(images)
    return images.reshape(len(images), NUM_PIXELS).astype(np.float32) / np.float32(255.0)


def one_hot(labels, num_classes=NUM_CLASSES):
    """Class ids -> one-hot rows (what ``one_hot=True`` gave the tutorial).

    ``labels``: integer numpy array [N] with values in 0..num_classes-1. Returns a float32 array
    [N, num_classes] that is 1.0 at column ``labels[i]`` of row i and 0.0 elsewhere.
    """
    labels = np.asarray(labels).astype(np.int64)
    out = np.zeros((len(labels), num_classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


class DataSet:
    """One split (train, validation or test) with the tutorial's ``next_batch``.

    Attributes: ``images`` float32 [N, 784], ``labels`` float32 [N, 10] (one-hot), both kept in
    the order given, and ``num_examples`` = N.
    """

    def __init__(self, images, labels, seed=0):
        """Keep ``images`` [N, 784] and ``labels`` [N, 10] (same N, else ValueError) and set up batching.

        Shuffling must be reproducible: draw every permutation from your own
        ``np.random.RandomState(seed)``, never from the global numpy state.
        """
        if len(images) != len(labels):
            raise ValueError(f"images and labels differ in length: {len(images)} vs {len(labels)}")
        self.images = images
        self.labels = labels
        self.num_examples = len(images)
        self._rng = np.random.RandomState(seed)
        self._order = None
        self._position = 0

    def next_batch(self, batch_size):
        """The next ``batch_size`` examples as ``(images [batch_size, 784], labels [batch_size, 10])``.

        Walk through the data in a random order that is drawn afresh at the start of every epoch
        (the first one included), so within an epoch no example comes twice and every example
        comes once. A batch that runs past the end of an epoch is completed from the start of the
        next (reshuffled) one. ``batch_size`` must be 1..num_examples, else ValueError.
        """
        if not 1 <= batch_size <= self.num_examples:
            raise ValueError(f"batch_size must be 1..{self.num_examples}, got {batch_size}")
        parts = []
        needed = batch_size
        while needed:
            if self._order is None or self._position == self.num_examples:
                self._order = self._rng.permutation(self.num_examples)
                self._position = 0
            take = min(needed, self.num_examples - self._position)
            parts.append(self._order[self._position : self._position + take])
            self._position += take
            needed -= take
        index = np.concatenate(parts)
        return self.images[index], self.labels[index]


def read_data_sets(validation_size=5000, seed=0):
    """The tutorial's ``mnist`` object, from ``load_mnist()``: ``Datasets(train, validation, test)``.

    ``load_mnist()`` returns a dict of uint8 arrays: ``raw["x_train"]`` [60000, 28, 28],
    ``raw["y_train"]`` [60000], ``raw["x_test"]`` [10000, 28, 28], ``raw["y_test"]`` [10000].

    As ``input_data.read_data_sets(..., one_hot=True)`` did: the FIRST ``validation_size`` of the
    60,000 training digits become the validation set, the rest (55,000) the training set, and the
    10,000 test digits the test set, each a ``DataSet`` of preprocessed images and one-hot labels
    in the original order. Seed the three with ``seed``, ``seed + 1`` and ``seed + 2``.
    """
    raw = load_mnist()
    x_train, y_train = preprocess_images(raw["x_train"]), one_hot(raw["y_train"])
    x_test, y_test = preprocess_images(raw["x_test"]), one_hot(raw["y_test"])
    return Datasets(
        train=DataSet(x_train[validation_size:], y_train[validation_size:], seed=seed),
        validation=DataSet(x_train[:validation_size], y_train[:validation_size], seed=seed + 1),
        test=DataSet(x_test, y_test, seed=seed + 2),
    )


# --------------------------------------------------------------------------- helpers (slide: conv_and_pool)
def weight_variable(shape, name="W"):
    """A float32 ``tf.Variable`` of ``shape`` named ``name``, initialised from a truncated normal, stddev 0.1.

    Truncated: values beyond two standard deviations (|w| > 0.2) are redrawn, so no weight starts
    large. Small random weights break the symmetry between units.
    """
    return tf.Variable(tf.random.truncated_normal(shape, stddev=0.1), name=name)


def bias_variable(shape, name="b"):
    """A float32 ``tf.Variable`` of ``shape`` named ``name``, every entry initialised to 0.1.

    A slightly positive bias keeps ReLU units active (not "dead") at the start of training.
    """
    return tf.Variable(tf.constant(0.1, shape=shape), name=name)


def conv2d(x, W):
    """2-D convolution of ``x`` [B, H, W, C_in] with the kernel ``W`` [k, k, C_in, C_out].

    Stride 1 in every dimension and SAME padding (the input is zero-padded so the output keeps
    the spatial size): returns [B, H, W, C_out].
    """
    return tf.nn.conv2d(x, W, strides=[1, 1, 1, 1], padding="SAME")


def max_pool_2x2(x):
    """2x2 max pooling with stride 2 and SAME padding: [B, H, W, C] -> [B, ceil(H/2), ceil(W/2), C].

    Each output pixel is the largest of a 2x2 block; the blocks do not overlap.
    """
    return tf.nn.max_pool2d(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")


def fc_layer(x, out_dim=10, scope="fc", activation=tf.nn.relu):
    """A fully connected layer: ``activation(x @ W + b)`` built under ``variable_scope(scope)``.

    ``x``: [B, in_dim] with in_dim known from the static shape. Inside the scope make
    ``W = weight_variable([in_dim, out_dim])`` and ``b = bias_variable([out_dim])`` (so they are
    named ``<scope>/W`` and ``<scope>/b``). ``activation=None`` gives a linear layer. Returns
    [B, out_dim].
    """
    with tf.compat.v1.variable_scope(scope):
        in_dim = int(x.shape[-1])
        W = weight_variable([in_dim, out_dim])
        b = bias_variable([out_dim])
        out = tf.matmul(x, W) + b
        return activation(out) if activation is not None else out


def conv_and_pool(x, kernel_size=5, out_channel=32, scope="conv_layer"):
    """One conv block under ``variable_scope(scope)``: ``max_pool_2x2(relu(conv2d(x, W) + b))``.

    ``x``: [B, H, W, C_in] with C_in known from the static shape. ``W = weight_variable([kernel_size,
    kernel_size, C_in, out_channel])``, ``b = bias_variable([out_channel])``. Returns
    [B, H/2, W/2, out_channel] (rounded up).
    """
    with tf.compat.v1.variable_scope(scope):
        in_channel = int(x.shape[-1])
        W = weight_variable([kernel_size, kernel_size, in_channel, out_channel])
        b = bias_variable([out_channel])
        return max_pool_2x2(tf.nn.relu(conv2d(x, W) + b))


# --------------------------------------------------------------------------- the model (slide: LeNet)
def build_cnn():
    """The tutorial's network, built under ``tf.compat.v1.variable_scope("CNN")``. Returns a ``Model``.

    - placeholders: ``x`` float32 [None, 784], ``y_`` float32 [None, 10] (one-hot), ``keep_prob``
      float32 scalar (the probability of KEEPING a unit in dropout);
    - ``x_image`` = x reshaped to [B, 28, 28, 1];
    - ``conv1`` = conv_and_pool(5x5, 32 channels, scope "conv1") -> [B, 14, 14, 32];
    - ``conv2`` = conv_and_pool(5x5, 64 channels, scope "conv2") -> [B, 7, 7, 64];
    - ``conv2_flat`` = conv2 reshaped to [B, 3136] as it is laid out (row, column, channel:
      ``tf.reshape(conv2, [-1, 7 * 7 * 64])``, no transpose first);
    - ``fc1`` = fc_layer(1024 units, scope "fc1", ReLU) [B, 1024];
    - ``fc1_drop`` = dropout of fc1 with ``keep_prob`` (kept units are scaled by 1/keep_prob);
    - ``logits`` = fc_layer(10 units, scope "fc2", activation=None) [B, 10].

    The last layer is LINEAR. Its outputs are logits: the loss applies softmax itself, and a
    softmax needs scores that can be negative. The tutorial's ``fc_layer`` always applied ReLU, so
    its logits were clamped at 0: a wrong class can then only sit at 0, never below, and a logit
    pushed to 0 gets no gradient at all (a dead unit) and can never recover. TensorFlow's own
    "Deep MNIST" keeps the readout layer linear; so do we. 3,274,634 trainable parameters.
    """
    with tf.compat.v1.variable_scope("CNN"):
        x = tf.compat.v1.placeholder(tf.float32, shape=[None, NUM_PIXELS], name="x")
        y_ = tf.compat.v1.placeholder(tf.float32, shape=[None, NUM_CLASSES], name="y_")
        keep_prob = tf.compat.v1.placeholder(tf.float32, shape=[], name="keep_prob")

        x_image = tf.reshape(x, [-1, IMAGE_SIZE, IMAGE_SIZE, 1])
        conv1 = conv_and_pool(x_image, kernel_size=5, out_channel=32, scope="conv1")
        conv2 = conv_and_pool(conv1, kernel_size=5, out_channel=64, scope="conv2")
        conv2_flat = tf.reshape(conv2, [-1, 7 * 7 * 64])

        fc1 = fc_layer(conv2_flat, out_dim=1024, scope="fc1")
        fc1_drop = tf.compat.v1.nn.dropout(fc1, keep_prob=keep_prob)
        logits = fc_layer(fc1_drop, out_dim=NUM_CLASSES, scope="fc2", activation=None)
    return Model(x, y_, keep_prob, x_image, conv1, conv2, conv2_flat, fc1, fc1_drop, logits)


# --------------------------------------------------------------------------- loss and metrics
def loss(logits, labels):
    """The mean softmax cross-entropy of ``logits`` [B, 10] against one-hot ``labels`` [B, 10].

    A float32 scalar: the average over the batch (not the sum), so the step size does not
    depend on the batch size.
    """
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logits, labels=labels))


def correct_prediction(logits, labels):
    """A bool tensor [B]: True where the highest logit is at the class the one-hot label marks."""
    return tf.equal(tf.argmax(logits, 1), tf.argmax(labels, 1))


def n_correct(logits, labels):
    """The number of correct predictions in the batch, as a float32 scalar (summed, not averaged).

    Summing lets the test evaluation add counts over batches of any size.
    """
    return tf.reduce_sum(tf.cast(correct_prediction(logits, labels), tf.float32))


def accuracy(logits, labels):
    """The fraction of correct predictions in the batch: a float32 scalar in [0, 1]."""
    return tf.reduce_mean(tf.cast(correct_prediction(logits, labels), tf.float32))


def adam_train_step(loss_tensor, learning_rate=1e-4):
    """The op that does one Adam step (``tf.compat.v1.train.AdamOptimizer``) on every trainable variable.

    Returns the ``tf.Operation`` from ``minimize``; the tutorial used learning_rate 1e-4.
    """
    return tf.compat.v1.train.AdamOptimizer(learning_rate).minimize(loss_tensor)


def build_training(model, learning_rate=1e-4):
    """Everything training and evaluation need on top of ``model.logits`` and ``model.y_``.

    Returns ``Training(loss, train_op, correct_prediction, n_correct, accuracy)``, made with the
    functions above (the train op with ``adam_train_step`` at ``learning_rate``).
    """
    loss_tensor = loss(model.logits, model.y_)
    return Training(
        loss=loss_tensor,
        train_op=adam_train_step(loss_tensor, learning_rate),
        correct_prediction=correct_prediction(model.logits, model.y_),
        n_correct=n_correct(model.logits, model.y_),
        accuracy=accuracy(model.logits, model.y_),
    )


# --------------------------------------------------------------------------- training and evaluation
def train(sess, model, training, data, steps=20000, batch_size=50, keep_prob=0.5, log_every=100, verbose=True):
    """Initialise all variables in ``sess``, then run ``steps`` training steps. Returns the history.

    Each step feeds ``data.train.next_batch(batch_size)`` with dropout on (``keep_prob``) and runs
    ``training.train_op`` and ``training.loss`` together, in ONE ``sess.run`` (the loss that step's
    update was computed from). After every ``log_every`` steps (steps 100, 200, ... by default) append
    ``{"step": step, "loss": mean training loss over those steps, "val_accuracy": accuracy on the
    whole validation set}`` to the history (use ``evaluate`` with batches of 500) and, if
    ``verbose``, print that line. Returns the history: a list of dicts of Python ints/floats.
    """
    sess.run(tf.compat.v1.global_variables_initializer())
    history = []
    losses = []
    for step in range(1, steps + 1):
        xs, ys = data.train.next_batch(batch_size)
        _, loss_value = sess.run(
            [training.train_op, training.loss], feed_dict={model.x: xs, model.y_: ys, model.keep_prob: keep_prob}
        )
        losses.append(loss_value)
        if step % log_every == 0:
            val_accuracy = evaluate(sess, model, training.n_correct, data.validation, batch_size=500)
            entry = {"step": step, "loss": float(np.mean(losses)), "val_accuracy": val_accuracy}
            history.append(entry)
            losses = []
            if verbose:
                print(f"step {step}, training loss {entry['loss']:.4f}, validation accuracy {val_accuracy:.4f}")
    return history


def evaluate(sess, model, n_correct_op, dataset, batch_size=50):
    """Accuracy on the WHOLE ``dataset``, counted in batches (the tutorial: 200 batches of 50 over 10k).

    Walk ``dataset.images`` / ``dataset.labels`` in order in slices of ``batch_size`` (the last one
    may be shorter; do not use next_batch, which would disturb the split's shuffling), run
    ``n_correct_op`` on each with dropout OFF (``keep_prob`` 1.0), and return the total divided by
    ``dataset.num_examples`` as a Python float.
    """
    total = 0.0
    for start in range(0, dataset.num_examples, batch_size):
        stop = start + batch_size
        total += sess.run(
            n_correct_op,
            feed_dict={
                model.x: dataset.images[start:stop],
                model.y_: dataset.labels[start:stop],
                model.keep_prob: 1.0,
            },
        )
    return float(total) / dataset.num_examples


def predict(sess, model, images, batch_size=500):
    """The predicted class of each row of ``images`` [N, 784]: an int64 numpy array [N].

    Run ``model.logits`` in slices of ``batch_size`` with dropout off and take the argmax. On 0 images
    (N = 0) it returns an empty int64 array.
    """
    out = []
    for start in range(0, len(images), batch_size):
        logits = sess.run(model.logits, feed_dict={model.x: images[start : start + batch_size], model.keep_prob: 1.0})
        out.append(np.argmax(logits, axis=1))
    return np.concatenate(out).astype(np.int64) if out else np.zeros([0], np.int64)


# --------------------------------------------------------------------------- picture
def save_report(path, images, labels, predictions, history, max_digits=24):
    """Write a PNG of exactly 1200 x 600 pixels to ``path`` and return ``path``.

    Left half: up to ``max_digits`` misclassified digits (in dataset order) in a 4 x 6 grid, each
    titled with the predicted and the true label. Right half: the training curve from ``history``
    (``train``'s list): training loss and validation accuracy against the step, on two y axes.
    ``images`` [N, 784] or [N, 28, 28]; ``labels`` and ``predictions`` int [N].

    Use matplotlib without a display: a ``matplotlib.figure.Figure(figsize=(12, 6), dpi=100)``
    drawn by the Agg backend (``FigureCanvasAgg``), not pyplot's window. Save without
    ``bbox_inches="tight"``, which would change the size. Import matplotlib inside the function.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    images = np.asarray(images).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    wrong = np.flatnonzero(labels != predictions)[:max_digits]

    fig = Figure(figsize=(12, 6), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(4, 12, left=0.02, right=0.92, top=0.9, bottom=0.1, wspace=0.4, hspace=0.5)
    for k in range(24):
        ax = fig.add_subplot(grid[k // 6, k % 6])
        ax.set_xticks([])
        ax.set_yticks([])
        if k < len(wrong):
            i = wrong[k]
            ax.imshow(images[i], cmap="gray_r")
            ax.set_title(f"{predictions[i]} (true {labels[i]})", fontsize=8)
        else:
            ax.axis("off")
    fig.text(0.25, 0.95, f"misclassified: {int(np.sum(labels != predictions))} of {len(labels)}", ha="center")

    ax = fig.add_subplot(grid[:, 7:])
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["loss"] for h in history], color="tab:red", marker=".", label="training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss", color="tab:red")
    ax2 = ax.twinx()
    ax2.plot(steps, [h["val_accuracy"] for h in history], color="tab:blue", marker=".", label="validation accuracy")
    ax2.set_ylabel("validation accuracy", color="tab:blue")
    ax.set_title("training curve")
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
