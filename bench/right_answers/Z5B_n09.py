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


def build_model(input_dim=784, hidden_dim=32, num_classes=10):
    def k():
        return keras.initializers.TruncatedNormal(stddev=0.1)

    def b():
        return keras.initializers.Constant(0.1)

    return keras.Sequential([
        keras.Input(shape=(input_dim,)),
        keras.layers.Dense(hidden_dim, activation="relu", name="layer1", kernel_initializer=k(), bias_initializer=b()),
        keras.layers.Dense(num_classes, name="layer2", kernel_initializer=k(), bias_initializer=b()),
    ])


def evaluate(model, images, labels):
    logits = model(images, training=False)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    correct = tf.equal(tf.argmax(logits, axis=1), tf.cast(labels, tf.int64))
    acc = tf.reduce_mean(tf.cast(correct, tf.float32))
    return loss, acc


def make_optimizer(learning_rate=1e-3):
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8)


def make_train_step(model, optimizer):
    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    return step


def variable_summaries(var, step):
    with tf.name_scope("summaries"):
        mean = tf.reduce_mean(var)
        tf.summary.scalar("mean", mean, step=step)
        stddev = tf.sqrt(tf.reduce_mean(tf.square(var - mean)))
        tf.summary.scalar("stddev", stddev, step=step)
        tf.summary.scalar("max", tf.reduce_max(var), step=step)
        tf.summary.scalar("min", tf.reduce_min(var), step=step)
        tf.summary.histogram("histogram", var, step=step)


def open_writers(log_dir):
    return (tf.summary.create_file_writer(os.path.join(log_dir, "train")),
            tf.summary.create_file_writer(os.path.join(log_dir, "test")))


def train_with_summaries(data, log_dir, num_steps, eval_every=10, batch_size=32, learning_rate=1e-3):
    x_train, y_train, x_test, y_test = data
    n = len(x_train)
    model = build_model(input_dim=x_train.shape[1])
    optimizer = make_optimizer(learning_rate)
    step_fn = make_train_step(model, optimizer)
    train_writer, test_writer = open_writers(log_dir)
    history = {"train": {}, "test": {}}
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
                loss = step_fn(x_train[idx], y_train[idx])
                with train_writer.as_default():
                    tf.summary.scalar("cross_entropy", loss, step=step)
                    for layer in model.layers:
                        with tf.name_scope(layer.name + "/weights"):
                            variable_summaries(layer.kernel, step)
                        with tf.name_scope(layer.name + "/biases"):
                            variable_summaries(layer.bias, step)
                history["train"][step] = float(loss)
    finally:
        train_writer.close()
        test_writer.close()
    return history


def make_checkpoint(model, optimizer, iterator):
    return tf.train.Checkpoint(model=model, optimizer=optimizer, data=iterator)


def restore_latest(checkpoint, manager):
    path = manager.latest_checkpoint
    if path is None:
        raise CheckpointError(f"no checkpoint in {manager.directory}: train first (resume=False)")
    try:
        status = checkpoint.restore(path)
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise CheckpointError(f"checkpoint {path} does not match this model: {e}") from e
    return int(checkpoint.optimizer.iterations.numpy())


def train_with_checkpoints(data, ckpt_dir, num_steps, save_every, resume=False, batch_size=32,
                           learning_rate=1e-3, seed=0):
    x, y = data
    n = len(x)
    ds = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(n, seed=seed)
          .batch(batch_size, drop_remainder=True).repeat())
    iterator = iter(ds)
    model = build_model(input_dim=x.shape[1])
    optimizer = make_optimizer(learning_rate)
    step_fn = make_train_step(model, optimizer)
    checkpoint = make_checkpoint(model, optimizer, iterator)
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=5)
    start = restore_latest(checkpoint, manager) if resume else 0
    saved = []
    for step in range(start, num_steps):
        images, labels = next(iterator)
        step_fn(images, labels)
        if (step + 1) % save_every == 0 or step + 1 == num_steps:
            manager.save(checkpoint_number=step + 1)
            saved.append(step + 1)
    weights = {}
    for name in ("layer1", "layer2"):
        layer = model.get_layer(name)
        weights[f"{name}/kernel"] = layer.kernel.numpy()
        weights[f"{name}/bias"] = layer.bias.numpy()
    return {"start_step": int(start), "global_step": int(optimizer.iterations.numpy()),
            "saved_steps": saved, "weights": weights, "checkpoint": manager.latest_checkpoint}


def normalize(image):
    return tf.cast(image, tf.float32) / 255.0


def augment(image, seed, noise_stddev=0.05):
    image = tf.image.random_flip_left_right(image, seed=seed)
    image = image + tf.random.normal(tf.shape(image), stddev=noise_stddev, seed=seed + 1)
    return tf.clip_by_value(image, 0.0, 1.0)


def make_dataset(images, labels, batch_size, seed, augment_data=True, noise_stddev=0.05, num_epochs=None):
    n = len(images)
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if augment_data:
        ds = ds.map(lambda im, lb: (augment(normalize(im), seed, noise_stddev), lb))
    else:
        ds = ds.map(lambda im, lb: (normalize(im), lb))
    return ds.batch(batch_size).repeat(num_epochs)


def naive_cross_entropy(labels, logits):
    with tf.name_scope("cross_entropy"):
        return tf.reduce_mean(-tf.reduce_sum(labels * tf.math.log(tf.nn.softmax(logits)), axis=1))


def stable_cross_entropy(labels, logits):
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def first_bad_op(fn, *args):
    tf.debugging.enable_check_numerics()
    try:
        fn(*args)
    except tf.errors.InvalidArgumentError as e:
        m = re.search(r'op "([^"]+)"', str(e))
        if m is None:
            raise
        return m.group(1)
    finally:
        tf.debugging.disable_check_numerics()
    return None


K09_SCOPES = (("weights", "kernel"), ("biases", "bias"))


def k09_name_map(checkpoint_path):
    names = [name for name, _ in tf.train.list_variables(checkpoint_path)]
    result = {}
    for layer in ("layer1", "layer2"):
        for scope, attr in K09_SCOPES:
            prefix = f"{layer}/{scope}/"
            found = [n for n in names if n.startswith(prefix) and "/Adam" not in n]
            if len(found) != 1:
                raise ValueError(f"expected exactly one variable under {prefix!r}, found {found}; keys: {names}")
            result[found[0]] = f"{layer}/{attr}"
    return result


def load_k09_checkpoint(model, checkpoint_path):
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
