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
    """The raw digits split as k04's ``read_data_sets`` did: ``Splits(train, validation, test)``.

    Each split is a pair ``(images uint8 [N, 28, 28], labels uint8 [N])`` from ``load_mnist()``, in
    the original order: validation = the FIRST ``validation_size`` training digits, train = the
    other 55,000, test = the 10,000 test digits. No scaling here: ``normalize`` does it in the
    pipeline.
    """
    raw = load_mnist()
    x, y, xt, yt = raw["x_train"], raw["y_train"], raw["x_test"], raw["y_test"]
    return Splits((x[validation_size:], y[validation_size:]), (x[:validation_size], y[:validation_size]), (xt, yt))


def normalize(images, labels):
    """One map step of the pipeline: raw digits -> what the model eats.

    ``images``: uint8 tensor [..., 28, 28] (a batch [B, 28, 28] or one image); ``labels``: integer
    tensor [...]. Returns ``(float32 [..., 28, 28, 1] with pixels / 255 in [0, 1], int64 labels
    [...])``: Keras's ``Conv2D`` wants a channel axis (channels last), where k04 fed rows of 784.
    """
    images = tf.cast(images, tf.float32) / 255.0
    return images[..., tf.newaxis], tf.cast(labels, tf.int64)


def make_dataset(images, labels, batch_size=100, shuffle=True, seed=0, repeat=False):
    """A ``tf.data.Dataset`` of ``normalize``d batches ``(float32 [B, 28, 28, 1], int64 [B])``.

    The order of the stages: ``from_tensor_slices((images, labels))`` -> if ``shuffle``, a shuffle
    over the WHOLE split (buffer = number of examples) seeded with ``seed`` and drawn afresh each
    epoch -> ``batch(batch_size)`` (the last batch may be shorter) -> if ``repeat``, repeat forever
    -> ``map(normalize)`` (once per batch: vectorised) -> ``prefetch`` (let tf.data pick the buffer),
    so the next batch is prepared while the model trains on this one. Without ``shuffle`` the
    examples keep their order (for evaluation).
    """
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(normalize)
    return ds.prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------- the model (Keras layers)
def build_model(dropout_rate=0.5):
    """k04's LeNet as a ``keras.Sequential`` whose layers are named as in ``LAYER_NAMES``.

    Input ``keras.Input(shape=(28, 28, 1))``; then
    ``conv1`` Conv2D 32 filters 5x5, stride 1, SAME padding, ReLU -> [B, 28, 28, 32];
    ``pool1`` MaxPooling2D 2x2, stride 2, SAME -> [B, 14, 14, 32];
    ``conv2`` Conv2D 64 filters 5x5 as conv1 -> [B, 14, 14, 64]; ``pool2`` -> [B, 7, 7, 64];
    ``flatten`` -> [B, 3136]; ``fc1`` Dense 1024, ReLU; ``dropout`` Dropout(``dropout_rate``);
    ``fc2`` Dense 10, LINEAR (the logits, as k04). 3,274,634 parameters.

    Initialise as k04 did: every kernel from a truncated normal with stddev 0.1, every bias 0.1.
    Keras's Dropout takes the RATE of dropping (k04's keep_prob is 1 - rate) and is active only when
    the model is called with ``training=True``.
    """
    init = lambda: keras.initializers.TruncatedNormal(stddev=0.1)
    binit = lambda: keras.initializers.Constant(0.1)
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, 5, padding="same", activation="relu", kernel_initializer=init(), bias_initializer=binit(), name="conv1"),
        keras.layers.MaxPooling2D(2, 2, padding="same", name="pool1"),
        keras.layers.Conv2D(64, 5, padding="same", activation="relu", kernel_initializer=init(), bias_initializer=binit(), name="conv2"),
        keras.layers.MaxPooling2D(2, 2, padding="same", name="pool2"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(1024, activation="relu", kernel_initializer=init(), bias_initializer=binit(), name="fc1"),
        keras.layers.Dropout(dropout_rate, name="dropout"),
        keras.layers.Dense(10, kernel_initializer=init(), bias_initializer=binit(), name="fc2"),
    ])


def load_k04_weights(model, weights):
    """Copy k04's trained variables into ``build_model``'s layers; return ``model``.

    ``weights`` maps k04's variable names to numpy arrays: ``"CNN/conv1/W:0"`` [5, 5, 1, 32],
    ``"CNN/conv1/b:0"`` [32], ``"CNN/conv2/W:0"`` [5, 5, 32, 64], ``"CNN/conv2/b:0"`` [64],
    ``"CNN/fc1/W:0"`` [3136, 1024], ``"CNN/fc1/b:0"`` [1024], ``"CNN/fc2/W:0"`` [1024, 10],
    ``"CNN/fc2/b:0"`` [10]. Work out for each pair which layer takes it and whether anything must
    be transposed or reordered: ``tf.nn.conv2d``'s kernel layout is [height, width, in, out] and
    k04 flattened ``conv2`` with ``tf.reshape`` of a [B, 7, 7, 64] tensor. Afterwards the model
    (called with ``training=False``) must give k04's logits (``keep_prob`` 1.0) on the same images.
    """
    for name in ("conv1", "conv2", "fc1", "fc2"):
        model.get_layer(name).set_weights([weights[f"CNN/{name}/W:0"], weights[f"CNN/{name}/b:0"]])
    return model


# --------------------------------------------------------------------------- loss, optimizer, one step
def make_loss():
    """The loss k04 computed, as a Keras loss object: mean softmax cross-entropy on LOGITS.

    Called as ``loss(labels int [B], logits [B, 10])`` it returns a float32 scalar, the average over
    the batch. The labels are class ids, not one-hot, and the model's output is not a softmax.
    """
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def make_optimizer(learning_rate=1e-3):
    """Adam at ``learning_rate`` as ``keras.optimizers.Adam``, step for step the same as k04's.

    TF 1's ``AdamOptimizer`` used epsilon 1e-8 (beta_1 0.9, beta_2 0.999); Keras's default epsilon
    is 1e-7. Set it so that one step equals k04's.
    """
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8)


def make_train_step(model, optimizer, loss_fn):
    """A ``tf.function`` ``step(images [B, 28, 28, 1], labels [B]) -> loss`` (a float32 scalar).

    One step: under a ``tf.GradientTape``, call the model with ``training=True`` (dropout on) and
    compute ``loss_fn(labels, logits)``; take the gradients of the loss with respect to
    ``model.trainable_variables`` and let ``optimizer.apply_gradients`` update them; return the
    loss (computed before the update). Decorate the inner function with ``tf.function`` so it is
    traced into a graph once and then run as a graph for every batch of the same shape.
    """
    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = loss_fn(labels, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    return step


# --------------------------------------------------------------------------- evaluation and prediction
def evaluate(model, dataset):
    """Accuracy of ``model`` on the WHOLE ``dataset`` (batches ``(images, labels)``): a Python float.

    Go through the dataset once, call the model with ``training=False`` (dropout off), count the
    batches' correct argmax predictions and divide by the number of examples (batches may differ in
    size, so do not average per-batch accuracies).
    """
    correct = 0
    total = 0
    for images, labels in dataset:
        logits = model(images, training=False)
        pred = tf.argmax(logits, axis=1, output_type=tf.int64)
        correct += int(tf.reduce_sum(tf.cast(pred == tf.cast(labels, tf.int64), tf.int32)))
        total += int(tf.shape(labels)[0])
    return float(correct / total)


def predict(model, images, batch_size=500):
    """The predicted class of each image: an int64 numpy array [N].

    ``images``: float32 [N, 28, 28, 1] (already normalized). Use ``model.predict`` (batches of
    ``batch_size``, ``verbose=0``: Keras runs it with dropout off) and take the argmax.
    """
    probs = model.predict(images, batch_size=batch_size, verbose=0)
    return np.argmax(probs, axis=1).astype(np.int64)


# --------------------------------------------------------------------------- training, two ways
def train(model, dataset, steps, optimizer, loss_fn, val_dataset, log_every=100, verbose=True):
    """Your own loop: ``steps`` steps of ``make_train_step(model, optimizer, loss_fn)``. Returns the history.

    ``dataset`` yields training batches (repeat it: ``steps`` may exceed one epoch); take exactly
    ``steps`` of them. After every ``log_every`` steps append ``{"step": step, "loss": mean training
    loss over those steps, "val_accuracy": evaluate(model, val_dataset)}`` (Python int/floats) and,
    if ``verbose``, print it: the same history as k04's ``train``.
    """
    step_fn = make_train_step(model, optimizer, loss_fn)
    history = []
    losses = []
    for step, (images, labels) in enumerate(dataset.take(steps), start=1):
        losses.append(float(step_fn(images, labels)))
        if step % log_every == 0:
            entry = {"step": step, "loss": float(np.mean(losses)), "val_accuracy": evaluate(model, val_dataset)}
            history.append(entry)
            losses = []
            if verbose:
                print(entry)
    return history


def fit(model, dataset, steps, val_dataset, learning_rate=1e-3, log_every=100, verbose=0):
    """The Keras way: ``compile`` then ``fit`` for ``steps`` steps. Returns the history as ``train`` does.

    Compile with ``make_optimizer(learning_rate)``, ``make_loss()`` and ``metrics=["accuracy"]``.
    Let one Keras "epoch" be ``log_every`` steps of the repeating ``dataset`` (``steps_per_epoch``)
    and run ``steps // log_every`` of them with ``validation_data=val_dataset``, so Keras's per-epoch
    logs are k04's history entries: convert ``History.history`` (``"loss"`` and ``"val_accuracy"``
    lists) to ``[{"step": 100, "loss": ..., "val_accuracy": ...}, ...]`` of Python floats.
    ``verbose`` goes to ``model.fit`` as it is (0: silent, 2: one line per epoch).
    """
    model.compile(optimizer=make_optimizer(learning_rate), loss=make_loss(), metrics=["accuracy"])
    h = model.fit(dataset, steps_per_epoch=log_every, epochs=steps // log_every, validation_data=val_dataset, verbose=verbose)
    return [{"step": (i + 1) * log_every, "loss": float(l), "val_accuracy": float(a)}
            for i, (l, a) in enumerate(zip(h.history["loss"], h.history["val_accuracy"]))]


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
