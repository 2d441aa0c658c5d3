"""k09 · TensorBoard, checkpoints, the Dataset API, and hunting a NaN (其他模块).

The tools around a model, from the tutorial's mnist_with_summaries.py, mnist_debug.py and the
checkpoint logic of att_seq2seq_delete_and_copy.py, on a small MLP (784 → hidden → 10):

* TensorBoard: summary ops (``tf.compat.v1.summary.scalar`` / ``histogram``) are graph ops whose
  value is a serialized ``Summary``; ``merge_all`` runs them together and a ``FileWriter`` appends
  them to an event file under a log directory, one directory per run (``train``, ``test``).
  TensorFlow writes the event files itself; *viewing* them needs the ``tensorboard`` package
  (``pip install tensorboard``, then ``tensorboard --logdir <dir>``), which TF 2.21 no longer
  installs.
* Checkpoints: a ``tf.compat.v1.train.Saver`` saves every global variable (the weights, Adam's
  slots, the global step) every N steps; resuming restores the latest one and goes on from its
  global step.
* The Dataset API: shuffle → map (normalise, augment) → batch → repeat, read in graph mode
  through a ``tf.compat.v1`` iterator.
* Debugging: ``-y * log(softmax(z))`` becomes NaN once a probability underflows to 0;
  ``check_numerics`` finds the first bad op, ``softmax_cross_entropy_with_logits`` is the fix.

Everything builds graph ops in the default graph (the tests give each test a fresh, seeded one).
"""
import os

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2


class CheckpointError(RuntimeError):
    """No usable checkpoint: the message names the directory or file and the fix."""


# =========================================================================== TensorBoard
def variable_summaries(var):
    """Attach the tutorial's summaries to ``var`` (any float tensor or variable).

    Inside a ``tf.name_scope("summaries")``: scalars ``mean``, ``stddev`` (population standard
    deviation, ``sqrt(mean((var - mean)^2))``), ``max`` and ``min``, and a ``histogram`` of var.
    Returns the list of the five summary tensors (they also land in the graph's SUMMARIES
    collection, so ``merge_all`` finds them). TensorFlow makes op names unique *ignoring case*,
    so a scalar called ``mean`` next to a ``Mean`` op gets the tag ``.../summaries/mean_1`` — as in
    the tutorial; the tests accept such ``_N`` suffixes.
    """
    with tf.name_scope("summaries"):
        mean = tf.reduce_mean(var)
        with tf.name_scope("stddev"):
            stddev = tf.sqrt(tf.reduce_mean(tf.square(var - mean)))
        return [
            tf.compat.v1.summary.scalar("mean", mean),
            tf.compat.v1.summary.scalar("stddev", stddev),
            tf.compat.v1.summary.scalar("max", tf.reduce_max(var)),
            tf.compat.v1.summary.scalar("min", tf.reduce_min(var)),
            tf.compat.v1.summary.histogram("histogram", var),
        ]


def nn_layer(input_tensor, input_dim, output_dim, layer_name, act=tf.nn.relu):
    """One dense layer ``act(x W + b)`` with summaries, as mnist_with_summaries' ``nn_layer``.

    ``input_tensor`` is float32 ``[B, input_dim]``; returns the activations ``[B, output_dim]``.
    Inside ``tf.name_scope(layer_name)``: the weights ``W`` (a ``tf.Variable``, truncated normal,
    stddev 0.1, ``[input_dim, output_dim]``) in name scope ``weights`` and the biases ``b``
    (constant 0.1, ``[output_dim]``) in ``biases``, each with :func:`variable_summaries`; the
    pre-activation ``x W + b`` in ``Wx_plus_b`` with a histogram ``pre_activations``; then
    ``act`` and a histogram ``activations``.
    """
    with tf.name_scope(layer_name):
        with tf.name_scope("weights"):
            weights = tf.Variable(tf.random.truncated_normal([input_dim, output_dim], stddev=0.1))
            variable_summaries(weights)
        with tf.name_scope("biases"):
            biases = tf.Variable(tf.constant(0.1, shape=[output_dim]))
            variable_summaries(biases)
        with tf.name_scope("Wx_plus_b"):
            preactivate = tf.matmul(input_tensor, weights) + biases
            tf.compat.v1.summary.histogram("pre_activations", preactivate)
        activations = act(preactivate, name="activation")
        tf.compat.v1.summary.histogram("activations", activations)
        return activations


def build_model(input_dim=784, hidden_dim=32, num_classes=10, learning_rate=1e-3):
    """The tutorial's summarised MLP (without its dropout), built in the default graph.

    * ``x``: float32 placeholder ``[None, input_dim]``, ``y``: int64 placeholder ``[None]``
      (class ids), both in name scope ``input``;
    * ``layer1 = nn_layer(x, input_dim, hidden_dim, "layer1")``, ``logits = nn_layer(layer1,
      hidden_dim, num_classes, "layer2", act=tf.identity)``;
    * ``loss``: mean sparse softmax cross entropy (name scope ``cross_entropy``) with a scalar
      summary named ``cross_entropy``; ``accuracy`` (name scope ``accuracy``) with a scalar
      summary named ``accuracy``. As in the tutorial, the name scopes take the plain names first,
      so the tags come out as ``cross_entropy_1`` and ``accuracy_1``; the tests accept that;
    * ``global_step`` (``tf.compat.v1.train.get_or_create_global_step()``) and ``train_op``:
      Adam(learning_rate) minimising the loss and incrementing the global step;
    * ``merged``: ``tf.compat.v1.summary.merge_all()``, made last so it holds every summary.

    Returns a dict with the keys ``x, y, logits, loss, accuracy, global_step, train_op, merged``.
    """
    with tf.name_scope("input"):
        x = tf.compat.v1.placeholder(tf.float32, [None, input_dim], name="x-input")
        y = tf.compat.v1.placeholder(tf.int64, [None], name="y-input")
    hidden = nn_layer(x, input_dim, hidden_dim, "layer1")
    logits = nn_layer(hidden, hidden_dim, num_classes, "layer2", act=tf.identity)
    with tf.name_scope("cross_entropy"):
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    tf.compat.v1.summary.scalar("cross_entropy", loss)
    with tf.name_scope("accuracy"):
        correct = tf.equal(tf.argmax(logits, 1), y)
        accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    tf.compat.v1.summary.scalar("accuracy", accuracy)
    global_step = tf.compat.v1.train.get_or_create_global_step()
    with tf.name_scope("train"):
        train_op = tf.compat.v1.train.AdamOptimizer(learning_rate).minimize(loss, global_step=global_step)
    merged = tf.compat.v1.summary.merge_all()
    return {
        "x": x,
        "y": y,
        "logits": logits,
        "loss": loss,
        "accuracy": accuracy,
        "global_step": global_step,
        "train_op": train_op,
        "merged": merged,
    }


def open_writers(log_dir, graph):
    """Two ``tf.compat.v1.summary.FileWriter``s: ``<log_dir>/train`` (given ``graph``, so
    TensorBoard's Graphs tab can draw it) and ``<log_dir>/test`` (no graph).

    Returns ``(train_writer, test_writer)``; the caller closes them (closing flushes the file).
    """
    train_writer = tf.compat.v1.summary.FileWriter(os.path.join(log_dir, "train"), graph)
    test_writer = tf.compat.v1.summary.FileWriter(os.path.join(log_dir, "test"))
    return train_writer, test_writer


def batch_for_step(images, labels, step, batch_size):
    """The training batch for global step ``step``: a pure function of the step.

    Rows ``step * batch_size, ..., step * batch_size + batch_size - 1``, each taken modulo
    ``len(images)`` (so the data wraps around). Because the batch depends on the step and on
    nothing else, a run resumed from a checkpoint at step k sees exactly the batches a straight
    run sees from step k on. Returns ``(images[idx], labels[idx])`` as numpy arrays.
    """
    idx = (step * batch_size + np.arange(batch_size)) % len(images)
    return images[idx], labels[idx]


def train_step(sess, model, writer, images, labels, step):
    """One training step that also logs: run ``merged``, ``loss`` and ``train_op`` in ONE
    ``sess.run`` on the fed batch, add the summary to ``writer`` at ``step``, return the loss
    (a Python float: the loss of the weights *before* this update).
    """
    feed = {model["x"]: images, model["y"]: labels}
    summary, loss, _ = sess.run([model["merged"], model["loss"], model["train_op"]], feed)
    writer.add_summary(summary, step)
    return float(loss)


def eval_step(sess, model, writer, images, labels, step):
    """Evaluate without training: run ``merged``, ``loss`` and ``accuracy`` on the fed data, add
    the summary to ``writer`` at ``step``, return ``(loss, accuracy)`` as Python floats.
    """
    feed = {model["x"]: images, model["y"]: labels}
    summary, loss, accuracy = sess.run([model["merged"], model["loss"], model["accuracy"]], feed)
    writer.add_summary(summary, step)
    return float(loss), float(accuracy)


def train_with_summaries(data, log_dir, num_steps, eval_every=10, batch_size=32, learning_rate=1e-3):
    """mnist_with_summaries' loop, logging to ``<log_dir>/train`` and ``<log_dir>/test``.

    ``data`` is ``(x_train [N, 784] float32, y_train [N] int64, x_test, y_test)``. Build the
    model in the default graph (:func:`build_model` with ``input_dim`` from the data and this
    learning rate), open a session, initialise, open the writers, then for ``step`` in
    ``range(num_steps)``: when ``step % eval_every == 0`` run :func:`eval_step` on the whole test
    set into the test writer, otherwise :func:`train_step` on ``batch_for_step(..., step, ...)``
    into the train writer. Close both writers.

    Returns ``{"train": {step: loss}, "test": {step: loss}}`` with the losses the steps returned.
    """
    x_train, y_train, x_test, y_test = data
    model = build_model(input_dim=x_train.shape[1], learning_rate=learning_rate)
    history = {"train": {}, "test": {}}
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        train_writer, test_writer = open_writers(log_dir, sess.graph)
        try:
            for step in range(num_steps):
                if step % eval_every == 0:
                    history["test"][step] = eval_step(sess, model, test_writer, x_test, y_test, step)[0]
                else:
                    xb, yb = batch_for_step(x_train, y_train, step, batch_size)
                    history["train"][step] = train_step(sess, model, train_writer, xb, yb, step)
        finally:
            train_writer.close()
            test_writer.close()
    return history


# =========================================================================== checkpoints
def restore_latest(sess, saver, ckpt_dir):
    """Restore the newest checkpoint in ``ckpt_dir`` into ``sess``; return its global step (int).

    Find it with ``tf.train.latest_checkpoint`` (it reads the small ``checkpoint`` index file the
    Saver keeps) and ``saver.restore``; the step is the value of the restored global step
    variable. Raise :class:`CheckpointError` with a message naming the directory (or checkpoint)
    and the fix when the directory does not exist, when it holds no usable checkpoint (no or a
    garbled ``checkpoint`` file, or one naming files that are gone), and when restoring fails
    because the files are corrupt or belong to another model (TensorFlow raises an ``OpError``
    such as ``DataLossError`` then, or a ``ValueError``).
    """
    if not os.path.isdir(ckpt_dir):
        raise CheckpointError(
            f"checkpoint directory {ckpt_dir} does not exist: train without resume first, "
            "or pass the directory the Saver wrote to"
        )
    try:
        path = tf.train.latest_checkpoint(ckpt_dir)
    except ValueError:  # an empty 'checkpoint' file, or one naming no model_checkpoint_path
        path = None
    if path is None:
        raise CheckpointError(
            f"no usable checkpoint in {ckpt_dir}: its 'checkpoint' index file is missing or "
            "unreadable, or names files that are gone; train without resume first"
        )
    try:
        saver.restore(sess, path)
    except (tf.errors.OpError, ValueError) as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(
            f"checkpoint {path} cannot be restored ({type(exc).__name__}: "
            f"{first[-1] if first else ''}): it is corrupt or was written by another model; "
            f"delete {ckpt_dir} and train again"
        ) from exc
    return int(sess.run(tf.compat.v1.train.get_global_step()))


def train_with_checkpoints(data, ckpt_dir, num_steps, save_every, resume=False, batch_size=32,
                           learning_rate=1e-3):
    """Train :func:`build_model` up to global step ``num_steps``, checkpointing as the tutorial's
    attention script does.

    ``data`` is ``(x_train [N, 784] float32, y_train [N] int64)``. Make a
    ``tf.compat.v1.train.Saver`` after the model; in a session either restore the latest
    checkpoint (``resume=True``, with :func:`restore_latest`; errors propagate) or initialise the
    variables and start at 0. Then for each ``step`` from the start to ``num_steps - 1``: train on
    ``batch_for_step(x, y, step, batch_size)``; whenever the global step (now ``step + 1``) is a
    multiple of ``save_every`` or equals ``num_steps``, ``saver.save(sess, <ckpt_dir>/model,
    global_step=...)`` (the directory is created if needed).

    Returns a dict: ``start_step`` (int), ``global_step`` (int, at the end), ``saved_steps`` (the
    global steps saved in this call, in order) and ``weights`` (``{variable op name: numpy
    array}`` for every trainable variable).
    """
    x_train, y_train = data
    model = build_model(input_dim=x_train.shape[1], learning_rate=learning_rate)
    saver = tf.compat.v1.train.Saver(max_to_keep=5)
    saved = []
    with tf.compat.v1.Session() as sess:
        if resume:
            start = restore_latest(sess, saver, ckpt_dir)
        else:
            sess.run(tf.compat.v1.global_variables_initializer())
            start = 0
        os.makedirs(ckpt_dir, exist_ok=True)
        for step in range(start, num_steps):
            xb, yb = batch_for_step(x_train, y_train, step, batch_size)
            sess.run(model["train_op"], {model["x"]: xb, model["y"]: yb})
            done = step + 1
            if done % save_every == 0 or done == num_steps:
                saver.save(sess, os.path.join(ckpt_dir, "model"), global_step=model["global_step"])
                saved.append(done)
        weights = {v.op.name: sess.run(v) for v in tf.compat.v1.trainable_variables()}
        return {
            "start_step": start,
            "global_step": int(sess.run(model["global_step"])),
            "saved_steps": saved,
            "weights": weights,
        }


# =========================================================================== the Dataset API
def normalize(image):
    """uint8 pixels 0..255 → float32 in [0, 1] (divide by 255); any shape."""
    return tf.cast(image, tf.float32) / 255.0


def augment(image, seed, noise_stddev=0.05):
    """Random augmentation of ONE normalised image ``[H, W, C]`` float32 in [0, 1] (slide: 数据增强).

    Flip it left-right with probability 1/2 (``tf.image.random_flip_left_right``, op seed
    ``seed``), add Gaussian noise of stddev ``noise_stddev`` (op seed ``seed + 1``), clip back to
    [0, 1]. Same shape and dtype out. Each run draws anew; with the graph seed and these op seeds
    fixed, the sequence of draws is reproducible.
    """
    image = tf.image.random_flip_left_right(image, seed=seed)
    image = image + tf.random.normal(tf.shape(image), stddev=noise_stddev, seed=seed + 1)
    return tf.clip_by_value(image, 0.0, 1.0)


def make_dataset(images, labels, batch_size, seed, augment_data=True, noise_stddev=0.05, num_epochs=None):
    """A ``tf.data.Dataset`` of ``(images [B, H, W, C] float32, labels [B])`` batches from numpy.

    ``images`` is uint8 ``[N, H, W, C]``, ``labels`` ``[N]``. In this order: ``from_tensor_slices``;
    ``shuffle`` with a buffer of all N examples and ``seed`` (reshuffled each epoch); ``map`` each
    example through :func:`normalize` and, when ``augment_data``, :func:`augment` (same seed and
    noise); ``batch(batch_size)`` (the last batch of an epoch may be smaller); ``repeat(num_epochs)``
    (None: forever). Shuffling before batching and repeating last means every epoch shows every
    example exactly once.
    """
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)

    def prepare(image, label):
        image = normalize(image)
        if augment_data:
            image = augment(image, seed, noise_stddev)
        return image, label

    return dataset.map(prepare).batch(batch_size).repeat(num_epochs)


def next_batch(dataset):
    """Graph mode: a one-shot iterator over ``dataset`` and its ``get_next()``.

    Use ``tf.compat.v1.data.make_one_shot_iterator``. Returns the ``(images, labels)`` tensors;
    each ``sess.run`` of them yields the next batch, and ``tf.errors.OutOfRangeError`` once the
    dataset is exhausted.
    """
    return tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()


# =========================================================================== hunting a NaN
def naive_cross_entropy(labels, logits):
    """mnist_debug's buggy loss: ``-labels * log(softmax(logits))``, summed over classes and
    averaged over the batch (the tutorial averaged over every entry instead, 1/C of this).

    ``labels`` is one-hot float32 ``[B, C]``, ``logits`` float32 ``[B, C]``; returns a scalar.
    Build it inside ``tf.name_scope("cross_entropy")`` with ``tf.nn.softmax`` and ``tf.math.log``
    so the ops are called ``cross_entropy/Softmax``, ``cross_entropy/Log``, ``cross_entropy/mul``.
    When a probability underflows to 0, log gives -inf and ``0 * -inf`` is NaN.
    """
    with tf.name_scope("cross_entropy"):
        probs = tf.nn.softmax(logits)
        diff = -(labels * tf.math.log(probs))
        return tf.reduce_mean(tf.reduce_sum(diff, axis=1))


def stable_cross_entropy(labels, logits):
    """The fix: ``tf.nn.softmax_cross_entropy_with_logits`` (it works with log-softmax, never
    takes the log of 0), averaged over the batch. Same inputs and meaning as
    :func:`naive_cross_entropy`; returns a scalar.
    """
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def debug_config():
    """A ``tf.compat.v1.ConfigProto`` that turns off Grappler's arithmetic optimizer.

    Grappler rewrites ``log(softmax(z))`` into the stable ``log_softmax(z)`` when nothing else
    reads the softmax, so fetching only the naive loss can hide the tutorial's bug (measured on
    TF 2.12-2.21). To debug the graph you wrote, set
    ``graph_options.rewrite_options.arithmetic_optimization`` to ``RewriterConfig.OFF``
    (``from tensorflow.core.protobuf import rewriter_config_pb2``).
    """
    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.arithmetic_optimization = rewriter_config_pb2.RewriterConfig.OFF
    return config


def run_with_nan_check(sess, fetches, feed_dict=None):
    """``sess.run(fetches, feed_dict)``, with every float tensor of the graph checked for Inf/NaN.

    ``tf.compat.v1.add_check_numerics_ops()`` adds a ``check_numerics`` after every float op of
    the default graph, chained in creation order, and returns one op grouping them; run it with
    the fetches. The first op whose output is not finite raises ``tf.errors.InvalidArgumentError``
    whose message names that tensor (e.g. ``cross_entropy/Log:0 : Tensor had Inf values``). Since
    the check covers the whole graph, every placeholder in it must be fed. Returns what
    ``sess.run(fetches)`` returns when all is finite.
    """
    check = tf.compat.v1.add_check_numerics_ops()
    return sess.run([fetches, check], feed_dict)[0]
