# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run n09        (or: pytest tests/test_n09_tf2_tools.py)
# Generated from solutions/n09_tf2_tools.py by `python -m tfkata.stubs n09`; `kata reset n09` restores it.
"""n09 · tf.summary, tf.train.Checkpoint, tf.data and check_numerics (the TF 2 twin of k09).

Then → now. In k09 every tool was part of the graph: summary ops that ``merge_all`` collected and a
``FileWriter`` appended to an event file, a ``Saver`` that saved every global variable by its graph
name, a one-shot iterator whose ``get_next`` you ran, and ``add_check_numerics_ops`` chaining a
check after every float op (with Grappler's rewrite switched off, or the bug hid). In TF 2 the same
tools are plain calls. ``tf.summary.scalar`` writes at once to the writer made default with
``tf.summary.create_file_writer(...).as_default()``, at the step you pass. ``tf.train.Checkpoint``
saves *objects* — the model, the optimizer with its slots and step, even the input pipeline's
iterator — keyed by the path to each variable, not by its name, and ``CheckpointManager`` keeps
the newest few. A ``tf.data.Dataset`` is a Python iterable: a ``for`` loop reads it and simply ends.
``tf.debugging.enable_check_numerics()`` checks every op from then on, eager or in a
``tf.function``, for the whole process. Gained: no session, no collections, no feed, checkpoints
that survive renaming a variable, an input position that resumes with the model. Lost: a TF 1
checkpoint no longer loads by itself — its keys are graph names, so migrating it takes an explicit
name map (the last section) — and a few things became process-wide switches you must turn off again.

Two TF facts this kata measures (TF 2.12–2.21): the tutorial's naive loss is NaN when it runs
eagerly, but finite inside a ``tf.function`` (Grappler rewrites ``log(softmax(z))`` there, as it
did in k09's sessions); and with the same global and op seeds, k09's pipeline read eagerly yields
exactly the batches its graph-mode iterator yielded.

The model is k09's MLP (784 → 32 → 10, truncated-normal weights with stddev 0.1, biases 0.1, Adam)
as a ``keras.Sequential`` whose two ``Dense`` layers are named ``layer1`` and ``layer2``.

Keras 2 and Keras 3 (``import keras``: Keras 2 on TF 2.12–2.15, Keras 3 from 2.16): everything
below works on both. What differs and does not matter here: the checkpoint keys (Keras 2 files a
Sequential's weights under ``model/layer_with_weights-0/...`` with the Adam slots beside each
weight; Keras 3 may file the very same variables under the optimizer's own lists,
``optimizer/_trainable_variables/0/...``, since a checkpoint stores each object once), and
``optimizer.variables`` (a property in Keras 3; a method on 2.12–2.15, where ``keras.optimizers.Adam``
of ``import keras`` is the legacy ``OptimizerV2``). Compare checkpoints by reading them back
(``tf.train.load_checkpoint``), not by their keys.

Run it once your functions pass:  ``python katas/n09_tf2_tools.py --logdir /tmp/n09`` and then
``tensorboard --logdir /tmp/n09``.
"""
import os
import re

import keras
import numpy as np
import tensorflow as tf


class CheckpointError(RuntimeError):
    """No usable checkpoint: the message names the directory and the fix."""


# =========================================================================== the model
def build_model(input_dim=784, hidden_dim=32, num_classes=10):
    """k09's MLP as a ``keras.Sequential``: ``keras.Input(shape=(input_dim,))``, then
    ``Dense(hidden_dim, activation="relu", name="layer1")`` and ``Dense(num_classes,
    name="layer2")`` (linear: the logits).

    Initialise as k09's ``nn_layer`` did: every kernel from a truncated normal with stddev 0.1
    (``keras.initializers.TruncatedNormal``), every bias 0.1 (``Constant``).
    """
    init = dict(kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.1),
                bias_initializer=keras.initializers.Constant(0.1))
    return keras.Sequential([
        keras.Input(shape=(input_dim,)),
        keras.layers.Dense(hidden_dim, activation="relu", name="layer1", **init),
        keras.layers.Dense(num_classes, name="layer2", **init),
    ])


def evaluate(model, images, labels):
    """The loss and accuracy of ``model`` on ``images`` float32 ``[B, input_dim]`` and ``labels``
    int64 class ids ``[B]``, with ``training=False``.

    Returns ``(loss, accuracy)`` as float32 scalar tensors: the mean sparse softmax cross-entropy
    of the logits (``tf.nn.sparse_softmax_cross_entropy_with_logits``, as k09's ``loss``) and the
    fraction of rows whose argmax is the label.
    """
    logits = model(images, training=False)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    correct = tf.equal(tf.argmax(logits, axis=1), tf.cast(labels, tf.int64))
    return loss, tf.reduce_mean(tf.cast(correct, tf.float32))


def make_optimizer(learning_rate=1e-3):
    """``keras.optimizers.Adam`` that takes the same steps as k09's ``tf.compat.v1.train.AdamOptimizer``:
    beta_1 0.9, beta_2 0.999 as both default, and epsilon 1e-8 (TF 1's default; Keras's is 1e-7).
    """
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8)


def make_train_step(model, optimizer):
    """A ``tf.function`` ``step(images, labels) -> loss``: k09's ``train_op`` in TF 2.

    Under a ``tf.GradientTape``: the logits of ``model(images, training=True)`` and the mean sparse
    softmax cross-entropy against ``labels``; then ``optimizer.apply_gradients`` on the gradients
    of ``model.trainable_variables``. Returns the loss computed before the update (float32 scalar).
    """
    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


# =========================================================================== TensorBoard (tf.summary)
def variable_summaries(var, step):
    """Write k09's five summaries of ``var`` (a float tensor or variable) at ``step`` to the DEFAULT
    writer (the caller has entered ``writer.as_default()``).

    Inside ``tf.name_scope("summaries")``: ``tf.summary.scalar`` of ``mean``, ``stddev`` (population
    standard deviation, ``sqrt(mean((var - mean)^2))``), ``max`` and ``min``, and a
    ``tf.summary.histogram`` named ``histogram``. A TF 2 summary takes its ``step`` explicitly and
    is written at once: there is no op to run and no ``merge_all``. Eager name scopes prefix the tag
    as in k09 (``layer1/weights/summaries/mean``), without k09's ``_1`` suffixes. Returns None.
    """
    with tf.name_scope("summaries"):
        mean = tf.reduce_mean(var)
        tf.summary.scalar("mean", mean, step=step)
        tf.summary.scalar("stddev", tf.sqrt(tf.reduce_mean(tf.square(var - mean))), step=step)
        tf.summary.scalar("max", tf.reduce_max(var), step=step)
        tf.summary.scalar("min", tf.reduce_min(var), step=step)
        tf.summary.histogram("histogram", var, step=step)


def open_writers(log_dir):
    """Two TF 2 summary writers, ``tf.summary.create_file_writer``, for ``<log_dir>/train`` and
    ``<log_dir>/test`` (one folder per run, so TensorBoard overlays their curves).

    Returns ``(train_writer, test_writer)``; the caller closes them (``close()`` flushes the file).
    """
    return (tf.summary.create_file_writer(os.path.join(log_dir, "train")),
            tf.summary.create_file_writer(os.path.join(log_dir, "test")))


def train_with_summaries(data, log_dir, num_steps, eval_every=10, batch_size=32, learning_rate=1e-3):
    """k09's ``train_with_summaries`` in TF 2: the same steps and the same history.

    ``data`` is ``(x_train [N, 784] float32, y_train [N] int64, x_test, y_test)``. Build the model
    (``input_dim`` from the data), ``make_optimizer(learning_rate)``, ``make_train_step`` and
    ``open_writers(log_dir)``. For ``step`` in ``range(num_steps)``:

    * ``step % eval_every == 0``: :func:`evaluate` on the whole test set; with the test writer as
      default, scalars ``cross_entropy`` (the loss) and ``accuracy`` at ``step``;
    * otherwise train on the rows ``(step * batch_size + 0 .. batch_size - 1) % N`` (k09's
      ``batch_for_step``); with the train writer as default, the scalar ``cross_entropy`` (the loss
      the step returned) and, for each layer, :func:`variable_summaries` of its kernel in name scope
      ``<layer>/weights`` and of its bias in ``<layer>/biases`` (the weights after the step).

    Close both writers (also on error). Returns ``{"train": {step: loss}, "test": {step: loss}}``
    with Python floats.
    """
    x_train, y_train, x_test, y_test = data
    model = build_model(input_dim=x_train.shape[1])
    optimizer = make_optimizer(learning_rate)
    train_step = make_train_step(model, optimizer)
    train_writer, test_writer = open_writers(log_dir)
    history = {"train": {}, "test": {}}
    n = len(x_train)
    try:
        for step in range(num_steps):
            if step % eval_every == 0:
                loss, acc = evaluate(model, x_test, y_test)
                with test_writer.as_default():
                    tf.summary.scalar("cross_entropy", loss, step=step)
                    tf.summary.scalar("accuracy", acc, step=step)
                history["test"][step] = float(loss)
            else:
                idx = (step * batch_size + np.arange(batch_size)) % n
                loss = train_step(x_train[idx], y_train[idx])
                with train_writer.as_default():
                    tf.summary.scalar("cross_entropy", loss, step=step)
                    for layer in ("layer1", "layer2"):
                        lay = model.get_layer(layer)
                        with tf.name_scope(layer + "/weights"):
                            variable_summaries(lay.kernel, step)
                        with tf.name_scope(layer + "/biases"):
                            variable_summaries(lay.bias, step)
                history["train"][step] = float(loss)
    finally:
        train_writer.close()
        test_writer.close()
    return history


# =========================================================================== checkpoints
def make_checkpoint(model, optimizer, iterator):
    """A ``tf.train.Checkpoint`` of everything a resumed run needs: ``model=model``,
    ``optimizer=optimizer`` (its Adam slots and its ``iterations``, the step counter) and
    ``data=iterator`` (a ``tf.data`` iterator: its position and shuffle state are saved too, so a
    resumed run reads the batches a straight run would have read).
    """
    return tf.train.Checkpoint(model=model, optimizer=optimizer, data=iterator)


def restore_latest(checkpoint, manager):
    """Restore ``manager.latest_checkpoint`` into ``checkpoint``; return the restored step, the
    optimizer's ``iterations`` as an int.

    Careful: ``checkpoint.restore(None)`` silently restores nothing. When the manager has no
    checkpoint, raise :class:`CheckpointError` naming ``manager.directory`` instead. After
    ``restore``, call ``assert_existing_objects_matched()`` on the status it returns, so a
    checkpoint written by another model fails loudly: it raises ``AssertionError`` (a variable the
    checkpoint lacks) or ``ValueError`` (a shape that differs), and a corrupt file an
    ``tf.errors.OpError``; wrap each in a CheckpointError naming the checkpoint.
    """
    path = manager.latest_checkpoint
    if path is None:
        raise CheckpointError("no checkpoint in %s: train without resume first" % manager.directory)
    try:
        status = checkpoint.restore(path)
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise CheckpointError("checkpoint %s does not fit this model: %s" % (path, e)) from e
    return int(checkpoint.optimizer.iterations.numpy())


def train_with_checkpoints(data, ckpt_dir, num_steps, save_every, resume=False, batch_size=32,
                           learning_rate=1e-3, seed=0):
    """Train :func:`build_model` up to step ``num_steps``, checkpointing as k09 did, the TF 2 way.

    ``data`` is ``(x_train [N, input_dim] float32, y_train [N] int64)``. The batches come from a
    ``tf.data`` pipeline: ``from_tensor_slices`` → ``shuffle(N, seed=seed)`` → ``batch(batch_size,
    drop_remainder=True)`` → ``repeat()``, read through ONE ``iter(...)``. Make the model,
    ``make_optimizer(learning_rate)``, ``make_train_step``, :func:`make_checkpoint` and a
    ``tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=5)``. With ``resume``, start from
    :func:`restore_latest` (errors propagate), else from 0. Then for each ``step`` from the start to
    ``num_steps - 1``: train on ``next(iterator)``; when ``step + 1`` is a multiple of
    ``save_every`` or equals ``num_steps``, ``manager.save(checkpoint_number=step + 1)``.

    Returns a dict: ``start_step`` (int), ``global_step`` (the optimizer's iterations at the end,
    int), ``saved_steps`` (the steps saved in this call, in order), ``weights``
    (``{"layer1/kernel": array, "layer1/bias": ..., "layer2/kernel": ..., "layer2/bias": ...}``)
    and ``checkpoint`` (the path of the newest checkpoint).
    """
    x, y = data
    n = len(x)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(n, seed=seed).batch(batch_size, drop_remainder=True).repeat()
    iterator = iter(ds)
    model = build_model(input_dim=x.shape[1])
    optimizer = make_optimizer(learning_rate)
    train_step = make_train_step(model, optimizer)
    checkpoint = make_checkpoint(model, optimizer, iterator)
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=5)
    start = restore_latest(checkpoint, manager) if resume else 0
    saved = []
    for step in range(start, num_steps):
        images, labels = next(iterator)
        train_step(images, labels)
        if (step + 1) % save_every == 0 or step + 1 == num_steps:
            manager.save(checkpoint_number=step + 1)
            saved.append(step + 1)
    weights = {}
    for layer in ("layer1", "layer2"):
        lay = model.get_layer(layer)
        weights[layer + "/kernel"] = lay.kernel.numpy()
        weights[layer + "/bias"] = lay.bias.numpy()
    return {"start_step": int(start), "global_step": int(optimizer.iterations.numpy()), "saved_steps": saved,
            "weights": weights, "checkpoint": manager.latest_checkpoint}


# =========================================================================== the Dataset API, eagerly
def normalize(image):
    """uint8 pixels 0..255 → float32 in [0, 1] (divide by 255); any shape. As k09."""
    return tf.cast(image, tf.float32) / 255.0


def augment(image, seed, noise_stddev=0.05):
    """k09's augmentation of ONE normalised image ``[H, W, C]``: flip left-right with probability
    1/2 (``tf.image.random_flip_left_right``, op seed ``seed``), add Gaussian noise of stddev
    ``noise_stddev`` (op seed ``seed + 1``), clip to [0, 1]. The same ops as k09: with the same
    global seed (``tf.random.set_seed``, the eager twin of the graph seed) they draw the same numbers.
    """
    image = tf.image.random_flip_left_right(image, seed=seed)
    image = image + tf.random.normal(tf.shape(image), stddev=noise_stddev, seed=seed + 1)
    return tf.clip_by_value(image, 0.0, 1.0)


def make_dataset(images, labels, batch_size, seed, augment_data=True, noise_stddev=0.05, num_epochs=None):
    """k09's pipeline, read eagerly: ``(images [B, H, W, C] float32, labels [B])`` batches.

    ``images`` uint8 ``[N, H, W, C]``, ``labels`` ``[N]``. In this order: ``from_tensor_slices``;
    ``shuffle`` over all N with ``seed``, reshuffled each epoch; ``map`` :func:`normalize` and, when
    ``augment_data``, :func:`augment`; ``batch(batch_size)``; ``repeat(num_epochs)``. No iterator
    to make: ``for images, labels in dataset`` reads it, ``dataset.take(k)`` limits it, and a
    finite dataset simply ends the loop (where k09's ``sess.run`` raised ``OutOfRangeError``).
    """
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if augment_data:
        ds = ds.map(lambda im, lb: (augment(normalize(im), seed, noise_stddev), lb))
    else:
        ds = ds.map(lambda im, lb: (normalize(im), lb))
    return ds.batch(batch_size).repeat(num_epochs)


# =========================================================================== hunting a NaN
def naive_cross_entropy(labels, logits):
    """The tutorial's buggy loss, as in k09: ``-labels * log(softmax(logits))`` summed over classes,
    averaged over the batch, inside ``tf.name_scope("cross_entropy")`` with ``tf.nn.softmax`` and
    ``tf.math.log``. ``labels`` one-hot float32 ``[B, C]``, ``logits`` float32 ``[B, C]``.

    Run eagerly it is NaN as soon as a probability underflows to 0 (no Grappler to rewrite it);
    inside a ``tf.function`` Grappler turns ``log(softmax)`` into ``log_softmax`` and hides the bug.
    """
    with tf.name_scope("cross_entropy"):
        return tf.reduce_mean(-tf.reduce_sum(labels * tf.math.log(tf.nn.softmax(logits)), axis=1))


def stable_cross_entropy(labels, logits):
    """The fix: the batch mean of ``tf.nn.softmax_cross_entropy_with_logits`` (it never takes the
    log of 0). Same inputs as :func:`naive_cross_entropy`; a float32 scalar.
    """
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def first_bad_op(fn, *args):
    """Call ``fn(*args)`` with ``tf.debugging.enable_check_numerics()`` on; return the TYPE of the
    first op whose output held an Inf or NaN (e.g. ``"Log"``), or None when everything was finite.

    With checking on, that op raises ``tf.errors.InvalidArgumentError`` whose message says
    ``... in output 0 of eagerly-executing op "Log" ...`` (eager) or ``... of graph op "Log" ...``
    (in a ``tf.function``): take the name between the quotes. Any other error propagates. Checking
    is global to the process and slows every op: ``tf.debugging.disable_check_numerics()`` in a
    ``finally``, whatever happened.
    """
    tf.debugging.enable_check_numerics()
    try:
        fn(*args)
        return None
    except tf.errors.InvalidArgumentError as e:
        m = re.search(r'of (?:eagerly-executing|graph) op "([^"]+)"', str(e))
        if not m:
            raise
        return m.group(1)
    finally:
        tf.debugging.disable_check_numerics()


# =========================================================================== migrating k09's checkpoint
# The Keras attribute each of k09's variables goes to, by name scope inside a layer.
K09_SCOPES = (("weights", "kernel"), ("biases", "bias"))


def k09_name_map(checkpoint_path):
    """The explicit name map from a TF 1 ``Saver`` checkpoint of k09's model to the Keras model:
    ``{checkpoint key: "layer1/kernel", ...}`` for the four trained variables.

    List the checkpoint's keys with ``tf.train.list_variables(checkpoint_path)`` (pairs ``(name,
    shape)``). For each layer (``layer1``, ``layer2``) and each scope/attribute pair in
    ``K09_SCOPES``, the key is the one name that starts with ``"<layer>/<scope>/"`` and is not one of
    Adam's slots (those contain ``/Adam``: ``layer1/weights/Variable/Adam``, ``.../Adam_1``); the
    value is ``"<layer>/<attribute>"``. Raise ``ValueError`` naming the prefix and the keys seen when
    there is not exactly one such name.
    """
    names = [name for name, _ in tf.train.list_variables(checkpoint_path)]
    mapping = {}
    for layer in ("layer1", "layer2"):
        for scope, attr in K09_SCOPES:
            prefix = "%s/%s/" % (layer, scope)
            found = [nm for nm in names if nm.startswith(prefix) and "/Adam" not in nm]
            if len(found) != 1:
                raise ValueError("expected exactly one key starting with %r, saw %s" % (prefix, names))
            mapping[found[0]] = "%s/%s" % (layer, attr)
    return mapping


def load_k09_checkpoint(model, checkpoint_path):
    """Load k09's TF 1 checkpoint into :func:`build_model`'s Keras model; return its global step.

    ``reader = tf.train.load_checkpoint(checkpoint_path)``; for every ``key, target`` of
    :func:`k09_name_map`, ``reader.get_tensor(key)`` goes into ``model.get_layer(layer)``'s
    ``kernel`` or ``bias`` (``assign``). k09's weights are ``[in, out]`` as Keras's kernels, so
    nothing is transposed. Returns ``int(reader.get_tensor("global_step"))``. Afterwards the model
    gives k09's logits on the same inputs.
    """
    reader = tf.train.load_checkpoint(checkpoint_path)
    for key, target in k09_name_map(checkpoint_path).items():
        layer, attr = target.split("/")
        getattr(model.get_layer(layer), attr).assign(reader.get_tensor(key))
    return int(reader.get_tensor("global_step"))


if __name__ == "__main__":
    import argparse

    from tfkata.data.mnist import load_mnist

    parser = argparse.ArgumentParser(description="k09's summarised MLP, the TF 2 way, with your n09 functions.")
    parser.add_argument("--logdir", default="/tmp/n09")
    parser.add_argument("--steps", type=int, default=201)
    args = parser.parse_args()
    keras.utils.set_random_seed(1234)
    raw = load_mnist()
    flat = lambda a: (a.reshape(len(a), -1) / 255.0).astype(np.float32)  # noqa: E731
    history = train_with_summaries(
        (flat(raw["x_train"][:5000]), raw["y_train"][:5000].astype(np.int64), flat(raw["x_test"][:1000]),
         raw["y_test"][:1000].astype(np.int64)),
        args.logdir, args.steps, learning_rate=5e-3,
    )
    print({step: round(loss, 4) for step, loss in history["test"].items()})
    print(f"now run: tensorboard --logdir {args.logdir}")
