"""k04 · MNIST with a CNN (reviewer B solution)."""
import collections

import numpy as np

from tfkata.data.mnist import load_mnist
from tfkata.script import quiet_tensorflow

tf = quiet_tensorflow()

IMAGE_SIZE = 28
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE  # 784
NUM_CLASSES = 10

Model = collections.namedtuple(
    "Model", ["x", "y_", "keep_prob", "x_image", "conv1", "conv2", "conv2_flat", "fc1", "fc1_drop", "logits"]
)
Training = collections.namedtuple("Training", ["loss", "train_op", "correct_prediction", "n_correct", "accuracy"])
Datasets = collections.namedtuple("Datasets", ["train", "validation", "test"])


def preprocess_images(images):
    images = np.asarray(images)
    return (images.reshape(images.shape[0], -1).astype(np.float32) / 255.0).astype(np.float32)


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
            raise ValueError("batch_size must be 1..num_examples")
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
    validation = DataSet(x[:validation_size], y[:validation_size], seed=seed + 1)
    test = DataSet(preprocess_images(raw["x_test"]), one_hot(raw["y_test"]), seed=seed + 2)
    return Datasets(train, validation, test)


def weight_variable(shape, name="W"):
    return tf.Variable(tf.random.truncated_normal(shape, stddev=0.1), name=name, dtype=tf.float32)


def bias_variable(shape, name="b"):
    return tf.Variable(tf.constant(0.1, shape=shape, dtype=tf.float32), name=name)


def conv2d(x, W):
    return tf.nn.conv2d(x, W, strides=[1, 1, 1, 1], padding="SAME")


def max_pool_2x2(x):
    return tf.nn.max_pool2d(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")


def fc_layer(x, out_dim=10, scope="fc", activation=tf.nn.relu):
    with tf.compat.v1.variable_scope(scope):
        in_dim = x.shape[-1]
        W = weight_variable([in_dim, out_dim])
        b = bias_variable([out_dim])
        y = tf.matmul(x, W) + b
        return activation(y) if activation is not None else y


def conv_and_pool(x, kernel_size=5, out_channel=32, scope="conv_layer"):
    with tf.compat.v1.variable_scope(scope):
        c_in = x.shape[-1]
        W = weight_variable([kernel_size, kernel_size, c_in, out_channel])
        b = bias_variable([out_channel])
        return max_pool_2x2(tf.nn.relu(conv2d(x, W) + b))


def build_cnn():
    with tf.compat.v1.variable_scope("CNN"):
        x = tf.compat.v1.placeholder(tf.float32, [None, 784], name="x")
        y_ = tf.compat.v1.placeholder(tf.float32, [None, 10], name="y_")
        keep_prob = tf.compat.v1.placeholder(tf.float32, [], name="keep_prob")
        x_image = tf.reshape(x, [-1, 28, 28, 1])
        conv1 = conv_and_pool(x_image, 5, 32, scope="conv1")
        conv2 = conv_and_pool(conv1, 5, 64, scope="conv2")
        conv2_flat = tf.reshape(conv2, [-1, 7 * 7 * 64])
        fc1 = fc_layer(conv2_flat, 1024, scope="fc1", activation=tf.nn.relu)
        fc1_drop = tf.nn.dropout(fc1, rate=1.0 - keep_prob)
        logits = fc_layer(fc1_drop, 10, scope="fc2", activation=None)
    return Model(x, y_, keep_prob, x_image, conv1, conv2, conv2_flat, fc1, fc1_drop, logits)


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
    train_op = adam_train_step(l, learning_rate)
    cp = correct_prediction(model.logits, model.y_)
    nc = n_correct(model.logits, model.y_)
    acc = accuracy(model.logits, model.y_)
    return Training(l, train_op, cp, nc, acc)


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
            losses = []
            history.append(rec)
            if verbose:
                print(f"step {step}: loss {rec['loss']:.4f}, val accuracy {rec['val_accuracy']:.4f}")
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
        out.append(np.argmax(logits, axis=1))
    if not out:
        return np.zeros([0], dtype=np.int64)
    return np.concatenate(out).astype(np.int64)


def save_report(path, images, labels, predictions, history, max_digits=24):
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    images = np.asarray(images).reshape(-1, 28, 28)
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    fig = Figure(figsize=(12, 6), dpi=100)
    FigureCanvasAgg(fig)
    wrong = np.nonzero(labels != predictions)[0][:max_digits]
    for k, i in enumerate(wrong):
        ax = fig.add_subplot(4, 12, (k // 6) * 12 + (k % 6) + 1)
        ax.imshow(images[i], cmap="gray")
        ax.set_title(f"{predictions[i]} / {labels[i]}", fontsize=7)
        ax.axis("off")
    ax = fig.add_subplot(1, 2, 2)
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["loss"] for h in history], "b-")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(steps, [h["val_accuracy"] for h in history], "r-")
    ax2.set_ylabel("val accuracy")
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
