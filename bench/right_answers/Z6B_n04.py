# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run n04        (or: pytest tests/test_n04_keras_cnn.py)
# Generated from solutions/n04_keras_cnn.py by `python -m tfkata.stubs n04`; `kata reset n04` restores it.
"""n04 · The MNIST CNN with Keras layers and tf.data (the TF 2 twin of k04).

Then → now. In k04 you built the LeNet by hand in a graph: ``weight_variable`` and
``bias_variable`` under ``variable_scope``, ``tf.nn.conv2d`` / ``max_pool2d`` on a reshaped
placeholder, a ``keep_prob`` placeholder for dropout, ``AdamOptimizer.minimize`` and a Python loop
that fed ``next_batch`` through ``feed_dict`` into ``sess.run``. Now the same network is a
``keras.Sequential`` of layers that own their weights (``Conv2D``, ``MaxPooling2D``, ``Flatten``,
``Dense``, ``Dropout``), the input pipeline is a ``tf.data.Dataset`` (slices → seeded shuffle →
batch → map → prefetch) that runs beside the training step, dropout is switched by the
``training=`` argument instead of a fed probability, and training is either your own step — a
``GradientTape`` inside a ``tf.function``, which TensorFlow traces into a graph once — or
``model.fit``. Gained: no session, no placeholders, no scopes, weights you can look at eagerly,
a pipeline that prefetches. Lost: the explicit graph you could read op by op, and defaults you
did not choose (Keras's Adam epsilon is 1e-7 where TF 1's was 1e-8). The proof that the port is
right is the migration guide's: load the weights of YOUR k04 network into the Keras model and get
the same logits.

Shapes use B for the batch size. Images are [B, 28, 28, 1] float32 in [0, 1] (Keras layers want
the channel axis; k04 fed rows of 784), labels are int64 class ids [B] (no one-hot: the sparse
cross-entropy takes ids). Everything runs eagerly; only the training step is a ``tf.function``.

Keras 2 and Keras 3: this kata uses ``import keras``, which is Keras 3 from TensorFlow 2.16 on
and Keras 2 on 2.12–2.15. Everything below works on both. What differs: Keras 3 draws initial
weights and dropout masks from its own seed (``keras.utils.set_random_seed``), Keras 2 from
TensorFlow's (``tf.random.set_seed``) — set_random_seed sets both; Keras 3 optimizers have an
``apply(grads, vars)`` method, but ``apply_gradients(zip(grads, vars))`` works on both, so use it;
Keras 2 traces a ``tf.function`` step twice on its first call (the call that creates Adam's slot
variables), Keras 3 once. The numbers do not differ: both load k04's weights and give its logits.

Run it once your functions pass:  ``python katas/n04_keras_cnn.py --steps 600``.
"""
import collections

import keras
import numpy as np
import tensorflow as tf

from tfkata.data.mnist import load_mnist

IMAGE_SIZE = 28
NUM_CLASSES = 10

# What mnist_splits returns: raw (uint8 images [N, 28, 28], uint8 labels [N]) pairs.
Splits = collections.namedtuple("Splits", ["train", "validation", "test"])

# The layers of build_model, in order, by name (load_k04_weights and the tests find them by name).
LAYER_NAMES = ("conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "dropout", "fc2")


# --------------------------------------------------------------------------- input pipeline (tf.data)
def mnist_splits(validation_size=5000):
    raw = load_mnist()
    xt, yt = raw["x_train"], raw["y_train"]
    return Splits(
        (xt[validation_size:], yt[validation_size:]),
        (xt[:validation_size], yt[:validation_size]),
        (raw["x_test"], raw["y_test"]),
    )


def normalize(images, labels):
    x = tf.cast(images, tf.float32) / 255.0
    return tf.expand_dims(x, -1), tf.cast(labels, tf.int64)


def make_dataset(images, labels, batch_size=100, shuffle=True, seed=0, repeat=False):
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(normalize)
    return ds.prefetch(tf.data.AUTOTUNE)


def build_model(dropout_rate=0.5):
    init = lambda: keras.initializers.TruncatedNormal(stddev=0.1)
    binit = lambda: keras.initializers.Constant(0.1)
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, 5, strides=1, padding="same", activation="relu",
                            kernel_initializer=init(), bias_initializer=binit(), name="conv1"),
        keras.layers.MaxPooling2D(2, strides=2, padding="same", name="pool1"),
        keras.layers.Conv2D(64, 5, strides=1, padding="same", activation="relu",
                            kernel_initializer=init(), bias_initializer=binit(), name="conv2"),
        keras.layers.MaxPooling2D(2, strides=2, padding="same", name="pool2"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(1024, activation="relu", kernel_initializer=init(), bias_initializer=binit(), name="fc1"),
        keras.layers.Dropout(dropout_rate, name="dropout"),
        keras.layers.Dense(10, kernel_initializer=init(), bias_initializer=binit(), name="fc2"),
    ])


def load_k04_weights(model, weights):
    for name in ("conv1", "conv2", "fc1", "fc2"):
        model.get_layer(name).set_weights([np.asarray(weights[f"CNN/{name}/W:0"]),
                                           np.asarray(weights[f"CNN/{name}/b:0"])])
    return model


def make_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def make_optimizer(learning_rate=1e-3):
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8)


def make_train_step(model, optimizer, loss_fn):
    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = loss_fn(labels, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    return step


def evaluate(model, dataset):
    correct = 0
    total = 0
    for images, labels in dataset:
        logits = model(images, training=False)
        pred = tf.argmax(logits, axis=1)
        correct += int(tf.reduce_sum(tf.cast(tf.equal(pred, tf.cast(labels, tf.int64)), tf.int64)))
        total += int(tf.shape(labels)[0])
    return float(correct / total)


def predict(model, images, batch_size=500):
    if len(images) == 0:
        return np.zeros([0], dtype=np.int64)
    logits = model.predict(images, batch_size=batch_size, verbose=0)
    return np.argmax(logits, axis=1).astype(np.int64)


def train(model, dataset, steps, optimizer, loss_fn, val_dataset, log_every=100, verbose=True):
    step_fn = make_train_step(model, optimizer, loss_fn)
    history = []
    losses = []
    for step, (images, labels) in enumerate(dataset.take(steps), start=1):
        losses.append(float(step_fn(images, labels)))
        if step % log_every == 0:
            rec = {"step": int(step), "loss": float(np.mean(losses)), "val_accuracy": float(evaluate(model, val_dataset))}
            losses = []
            history.append(rec)
            if verbose:
                print(rec)
    return history


def fit(model, dataset, steps, val_dataset, learning_rate=1e-3, log_every=100, verbose=0):
    model.compile(optimizer=make_optimizer(learning_rate), loss=make_loss(), metrics=["accuracy"])
    h = model.fit(dataset, epochs=steps // log_every, steps_per_epoch=log_every,
                  validation_data=val_dataset, verbose=verbose)
    return [{"step": (i + 1) * log_every, "loss": float(l), "val_accuracy": float(v)}
            for i, (l, v) in enumerate(zip(h.history["loss"], h.history["val_accuracy"]))]


if __name__ == "__main__":
    import argparse
    import time

    parser = argparse.ArgumentParser(description="Train k04's MNIST CNN the TF 2 way with your n04 functions.")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--fit", action="store_true", help="train with model.fit instead of your own loop")
    args = parser.parse_args()

    keras.utils.set_random_seed(1234)
    splits = mnist_splits()
    train_ds = make_dataset(*splits.train, batch_size=args.batch_size, seed=1234, repeat=True)
    val_ds = make_dataset(*splits.validation, batch_size=500, shuffle=False)
    test_ds = make_dataset(*splits.test, batch_size=500, shuffle=False)
    model = build_model()
    start = time.time()
    if args.fit:
        history = fit(model, train_ds, args.steps, val_ds, learning_rate=args.learning_rate, verbose=2)
    else:
        history = train(model, train_ds, args.steps, make_optimizer(args.learning_rate), make_loss(), val_ds)
    print(f"trained {args.steps} steps in {time.time() - start:.1f} s")
    print(f"test accuracy {evaluate(model, test_ds):.4f}")
