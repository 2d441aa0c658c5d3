# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run n05        (or: pytest tests/test_n05_keras_lstm_lm.py)
# Generated from solutions/n05_keras_lstm_lm.py by `python -m tfkata.stubs n05`; `kata reset n05` restores it.
"""n05 · The character LM with a Keras LSTM and tf.function (the TF 2 twin of k05).

Then → now. In k05 you wrote the LSTM cell from its gate equations (twelve matrices ``ix, im, ib,
fx, …``), unrolled it over ten placeholders, saved the last output and state in non-trainable
variables under ``control_dependencies`` so the next ``sess.run`` continued the text, clipped the
gradients with ``clip_by_global_norm``, decayed the learning rate with ``exponential_decay`` on a
``global_step``, and sampled through a second, one-step copy of the graph with its own saved state.
Now ``keras.layers.LSTM`` is the cell and the loop: its ``kernel`` holds the four input matrices
side by side, its ``recurrent_kernel`` the four ``m`` matrices, its ``bias`` the four biases, in
the gate order i, f, c, o; the state is an ordinary pair of tensors ``(h, c)`` that the training
loop passes into the next call of a ``tf.function`` step (no saved-state variables, no control
dependencies: the value returned IS the state, and no gradient flows through it into the previous
batch); ``keras.optimizers.schedules.ExponentialDecay`` counts the steps itself (the optimizer's
``iterations`` replaces ``global_step``); and sampling calls the very same model on one character
at a time. Gained: one model for training, validation and sampling, the whole validation text in
one call, no graph to keep in sync. Lost: the gate equations are no longer in your code — so the
proof is the migration guide's: give the Keras LSTM the weights of YOUR k05 cell and get the same
outputs, states, loss, clipped step and validation perplexity.

Shapes: B batch, T time steps (``num_unrollings``), N ``num_nodes``, V = 27 symbols (``' '`` = 0,
``'a'``..``'z'`` = 1..26). Text is handled as int32 ids; the model reads one-hot ``[B, T, 27]``.
Everything runs eagerly except the training step, a ``tf.function``.

Keras 2 and Keras 3 (``import keras``: Keras 3 from TensorFlow 2.16 on, Keras 2 on 2.12–2.15)
behave the same here (measured on 2.12 and 2.21). What differs: a functional model returns a list
(Keras 2) or a tuple (Keras 3) — index it; Keras 3 draws initial weights from its own seed
(``keras.utils.set_random_seed`` seeds both); Keras 2.12 exports ``ExponentialDecay`` only from
``keras.optimizers.schedules.learning_rate_schedule``.

Run it once your functions pass:  ``python katas/n05_keras_lstm_lm.py --steps 2001``.
"""
import keras
import numpy as np
import tensorflow as tf

VOCABULARY_SIZE = 27  # [a-z] + ' '
BATCH_SIZE = 64
NUM_UNROLLINGS = 10
NUM_NODES = 64
SUMMARY_FREQUENCY = 100
SAMPLE_FREQUENCY = 1000
GATES = ("i", "f", "c", "o")  # Keras's gate order inside kernel, recurrent_kernel and bias


# --------------------------------------------------------------------------- text as ids, batches
def text_to_ids(text):
    """The ids of a whole text as an int32 numpy array ``[len(text)]``: ``' '`` -> 0, ``'a'``..``'z'`` -> 1..26.

    Any other character counts as the space (0), as k05's ``char2id`` did (without the warning).
    Vectorise it: one numpy expression over the bytes, not a Python loop over 300k characters.
    """
    b = np.frombuffer(text.encode("latin-1", errors="replace"), dtype=np.uint8).astype(np.int32)
    ids = b - (ord("a") - 1)
    ids[(b < ord("a")) | (b > ord("z"))] = 0
    return ids.astype(np.int32)


def ids_to_text(ids):
    """The text of ids of any shape, read in order (the inverse of :func:`text_to_ids` on ``' '`` and ``a``-``z``)."""
    ids = np.asarray(ids).reshape(-1)
    return "".join(" " if i == 0 else chr(int(i) + ord("a") - 1) for i in ids)


def batch_windows(ids, batch_size=BATCH_SIZE, num_unrollings=NUM_UNROLLINGS):
    """k05's ``BatchGenerator`` as a Python generator of int32 windows ``[batch_size, num_unrollings + 1]``.

    Cut ``ids`` into ``batch_size`` segments: row b starts at ``b * (len(ids) // batch_size)``. Each
    window holds, for every row, the character under its cursor followed by the next
    ``num_unrollings`` ones (positions wrap around the end of the text); the next window starts
    where this one ended, so consecutive windows overlap by ONE column (the last column of a
    window is the first of the next) and no character pair is skipped. Inputs are ``window[:, :-1]``,
    labels ``window[:, 1:]``. Yields forever.
    """
    ids = np.asarray(ids)
    n = len(ids)
    segment = n // batch_size
    cursor = np.arange(batch_size) * segment
    while True:
        idx = (cursor[:, None] + np.arange(num_unrollings + 1)[None, :]) % n
        yield ids[idx].astype(np.int32)
        cursor = (cursor + num_unrollings) % n


# --------------------------------------------------------------------------- the model
def build_model(num_nodes=NUM_NODES):
    """k05's model as a functional ``keras.Model``: ``[x, h, c] -> [logits, h, c]``.

    Inputs: ``x`` one-hot float32 ``[B, T, 27]`` (T may vary: ``keras.Input(shape=(None, 27))``),
    and the state to start from, ``h`` and ``c`` ``[B, N]``. Layers: ``keras.layers.LSTM(N,
    return_sequences=True, return_state=True)`` named ``"lstm"``, called with
    ``initial_state=[h, c]``, then ``keras.layers.Dense(27)`` named ``"classifier"`` on every
    step's output. Outputs: logits ``[B, T, 27]`` and the final ``h``, ``c`` ``[B, N]``.

    Initialise as k05 did: every weight matrix from ``TruncatedNormal(mean=-0.1, stddev=0.1)`` (the
    tutorial's positional quirk), every bias zero — so switch off Keras's ``unit_forget_bias``,
    which starts the forget gate's bias at 1. Make a new initializer object for each weight: one
    instance called several times returns the same values each time (Keras 2 and 3 alike).
    """
    def ki():
        return keras.initializers.TruncatedNormal(mean=-0.1, stddev=0.1)
    x = keras.Input(shape=(None, VOCABULARY_SIZE))
    h = keras.Input(shape=(num_nodes,))
    c = keras.Input(shape=(num_nodes,))
    lstm = keras.layers.LSTM(num_nodes, return_sequences=True, return_state=True, name="lstm",
                             kernel_initializer=ki(), recurrent_initializer=ki(),
                             bias_initializer="zeros", unit_forget_bias=False)
    seq, h2, c2 = lstm(x, initial_state=[h, c])
    logits = keras.layers.Dense(VOCABULARY_SIZE, name="classifier", kernel_initializer=ki(),
                                bias_initializer="zeros")(seq)
    return keras.Model([x, h, c], [logits, h2, c2])


def one_hot(ids):
    """int ids ``[...]`` -> float32 one-hot ``[..., 27]`` (``tf.one_hot``)."""
    return tf.one_hot(ids, VOCABULARY_SIZE, dtype=tf.float32)


def zero_state(batch_size, num_nodes=NUM_NODES):
    """The state to start from: ``(h, c)``, two float32 zero tensors ``[batch_size, num_nodes]``."""
    return (tf.zeros([batch_size, num_nodes], tf.float32), tf.zeros([batch_size, num_nodes], tf.float32))


def port_k05_weights(model, params):
    """Give ``build_model``'s layers the weights of k05's hand-written cell; return ``model``.

    ``params`` maps k05's names (``ix, im, ib, fx, fm, fb, cx, cm, cb, ox, om, ob, w, b``) to numpy
    arrays: ``gx`` ``[27, N]`` (from the input), ``gm`` ``[N, N]`` (from the previous output), ``gb``
    ``[1, N]``, ``w`` ``[N, 27]``, ``b`` ``[27]``. Keras's LSTM keeps ``kernel`` ``[27, 4N]``,
    ``recurrent_kernel`` ``[N, 4N]`` and ``bias`` ``[4N]``, each the four gates' blocks side by side
    in the order i, f, c, o; the classifier's kernel and bias are ``w`` and ``b``. k05's cell adds
    nothing to the forget gate (its ``fb`` is the whole bias), and neither does Keras's: copy ``fb``
    as it is. Use ``get_layer(...).set_weights``.
    """
    kernel = np.concatenate([params[g + "x"] for g in GATES], axis=1)
    recurrent = np.concatenate([params[g + "m"] for g in GATES], axis=1)
    bias = np.concatenate([np.reshape(params[g + "b"], [-1]) for g in GATES], axis=0)
    model.get_layer("lstm").set_weights([kernel, recurrent, bias])
    model.get_layer("classifier").set_weights([params["w"], params["b"]])
    return model


# --------------------------------------------------------------------------- loss, schedule, one step
def sequence_loss(labels, logits):
    """Mean softmax cross-entropy of int ``labels`` ``[B, T]`` against ``logits`` ``[B, T, 27]``: a scalar.

    The average over every character of every row, as k05's loss over its concatenated steps.
    """
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def make_schedule(initial=10.0, decay_steps=5000, decay_rate=0.1):
    """k05's learning rate as a Keras schedule: 10.0 for steps 0..4999, 1.0 from 5000, 0.1 from 10000.

    ``keras.optimizers.schedules.ExponentialDecay`` with ``staircase=True``; calling it with a step
    gives the rate (the optimizer calls it with its own ``iterations``, k05's ``global_step``).
    Keras 2.12 does not export the class there: take
    ``keras.optimizers.schedules.learning_rate_schedule.ExponentialDecay`` when it is missing.
    """
    sched = getattr(keras.optimizers.schedules, "ExponentialDecay", None)
    if sched is None:
        sched = keras.optimizers.schedules.learning_rate_schedule.ExponentialDecay
    return sched(initial, decay_steps, decay_rate, staircase=True)


def make_optimizer(schedule=None):
    """Plain gradient descent (``keras.optimizers.SGD``, no momentum) at ``schedule`` (default: ``make_schedule()``)."""
    if schedule is None:
        schedule = make_schedule()
    return keras.optimizers.SGD(learning_rate=schedule)


def make_train_step(model, optimizer, clip_norm=1.25):
    """A ``tf.function`` ``step(window [B, T + 1] int32, h, c) -> (loss, h, c, global_norm)``.

    One step of k05's training: inputs are ``one_hot(window[:, :-1])``, labels ``window[:, 1:]``;
    under a ``GradientTape`` run the model from the state ``(h, c)`` and take
    :func:`sequence_loss`; clip the gradients of ``model.trainable_variables`` together with
    ``tf.clip_by_global_norm(grads, clip_norm)`` and apply them with ``optimizer.apply_gradients``.
    Return the loss (before the update), the model's final ``h`` and ``c`` (the caller passes them
    to the next step: that is how the state is carried across batches) and the global norm BEFORE
    clipping.
    """
    @tf.function
    def step(window, h, c):
        x = one_hot(window[:, :-1])
        labels = window[:, 1:]
        with tf.GradientTape() as tape:
            logits, h2, c2 = model([x, h, c], training=True)
            loss = sequence_loss(labels, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        clipped, norm = tf.clip_by_global_norm(grads, clip_norm)
        optimizer.apply_gradients(zip(clipped, model.trainable_variables))
        return loss, h2, c2, norm
    return step


# --------------------------------------------------------------------------- perplexity and sampling
def make_forward(model, num_nodes=NUM_NODES):
    """The model for evaluation and sampling as ONE traced graph: ``forward(x, h, c) -> (logits, h, c)``.

    Calling a Keras LSTM eagerly runs its time loop op by op in Python (seconds for 1000 characters);
    a ``tf.function`` runs it as a graph. Give it an ``input_signature`` so that any batch size and
    any length reuse one trace: ``tf.TensorSpec([None, None, 27], tf.float32)`` for ``x`` and
    ``tf.TensorSpec([None, num_nodes], tf.float32)`` for ``h`` and ``c``. Call the model with
    ``training=False`` and return a tuple of its three outputs.
    """
    @tf.function(input_signature=[tf.TensorSpec([None, None, VOCABULARY_SIZE], tf.float32),
                                  tf.TensorSpec([None, num_nodes], tf.float32),
                                  tf.TensorSpec([None, num_nodes], tf.float32)])
    def forward(x, h, c):
        out = model([x, h, c], training=False)
        return out[0], out[1], out[2]
    return forward


def validation_perplexity(forward, valid_ids, num_nodes=NUM_NODES):
    """The model's perplexity on the ids ``valid_ids`` ``[L]``, as k05 measured it, in ONE model call.

    k05 fed the validation text one character at a time from a reset state and scored each
    prediction against the NEXT character, the last one against the first (its batch generator
    wraps around). Do the same at once: run ``forward`` (:func:`make_forward`) from the zero state
    on the whole text as one sequence ``[1, L, 27]``, score position t against ``valid_ids[(t + 1) % L]`` (``np.roll``) with
    probabilities floored at 1e-10 as k05's ``logprob``, and return ``exp`` of the mean as a float.
    """
    valid_ids = np.asarray(valid_ids)
    h, c = zero_state(1, num_nodes)
    logits, _, _ = forward(one_hot(valid_ids[None, :]), h, c)
    p = tf.nn.softmax(logits[0]).numpy()
    labels = np.roll(valid_ids, -1)
    probs = np.maximum(p[np.arange(len(valid_ids)), labels], 1e-10)
    return float(np.exp(np.mean(-np.log(probs))))


def sample_step(forward, char_id, h, c):
    """One step of the model on ONE character: ``(probabilities [27] numpy, h, c)``.

    Run ``forward`` on ``one_hot([[char_id]])`` (``[1, 1, 27]``) from the state ``(h, c)`` (``[1, N]``
    each) and return the softmax of the logits as a float numpy vector, and the new state.
    """
    logits, h, c = forward(one_hot([[char_id]]), h, c)
    return tf.nn.softmax(logits[0, 0]).numpy(), h, c


def sample_text(forward, length=80, seed=None, num_nodes=NUM_NODES):
    """``length`` characters sampled from the model (the slide's samples), a string.

    Use ``rng = np.random.default_rng(seed)``. The first character is drawn uniformly from the 27
    symbols; then, from the zero state, ``length - 1`` times: :func:`sample_step` on the last
    character, draw the next one from the probabilities with ``rng.choice(27, p=...)`` (normalise
    them first, p / p.sum(), best in float64), carrying the state forward.
    """
    rng = np.random.default_rng(seed)
    ch = int(rng.integers(27))
    chars = [ch]
    h, c = zero_state(1, num_nodes)
    for _ in range(length - 1):
        p, h, c = sample_step(forward, ch, h, c)
        p = p.astype(np.float64)
        ch = int(rng.choice(27, p=p / p.sum()))
        chars.append(ch)
    return ids_to_text(np.array(chars))


# --------------------------------------------------------------------------- training
def train(train_text, valid_text, num_steps=2001, summary_frequency=SUMMARY_FREQUENCY,
          sample_frequency=SAMPLE_FREQUENCY, windows=None, num_nodes=NUM_NODES, log=print):
    """k05's training, the TF 2 way. Returns the same history as k05's ``train``.

    Build :func:`build_model` (``num_nodes``, passed on to every function that takes it), :func:`make_optimizer`
    and :func:`make_train_step`;
    ``windows`` defaults to :func:`batch_windows` over ``text_to_ids(train_text)`` (batch 64, 10
    unrollings). Start from :func:`zero_state` with the batch size of the windows (the rows of the
    first window: a caller may pass windows of another batch size), and for each of ``num_steps``
    steps run the step on the next window and the current state, and keep the state it returns for
    the next step.

    Every ``summary_frequency`` steps (step 0 included) append to the history: ``step``,
    ``mean_loss`` (mean loss since the previous summary; at step 0 that step's loss),
    ``learning_rate`` (the schedule at that step), ``minibatch_perplexity`` (``exp`` of that step's
    loss), ``valid_perplexity`` (:func:`validation_perplexity` of ``valid_text`` through one
    :func:`make_forward` of the model, made once); at a summary whose step is a multiple of
    ``sample_frequency`` (step 0 included) also ``samples[step]`` = 5 :func:`sample_text` strings of 80
    characters, each with a seed of its own. ``log`` a line for each summary. All numbers are Python floats. Also returned under
    ``"model"``: the trained model.
    """
    model = build_model(num_nodes)
    schedule = make_schedule()
    optimizer = make_optimizer(schedule)
    step_fn = make_train_step(model, optimizer)
    if windows is None:
        windows = batch_windows(text_to_ids(train_text))
    windows = iter(windows)
    forward = make_forward(model, num_nodes)
    valid_ids = text_to_ids(valid_text)
    hist = dict(step=[], mean_loss=[], learning_rate=[], minibatch_perplexity=[],
                valid_perplexity=[], samples={})
    h = c = None
    total = 0.0
    n = 0
    for step in range(num_steps):
        w = next(windows)
        if h is None:
            h, c = zero_state(w.shape[0], num_nodes)
        loss, h, c, _ = step_fn(tf.constant(w, tf.int32), h, c)
        loss = float(loss)
        total += loss
        n += 1
        if step % summary_frequency == 0:
            hist["step"].append(step)
            hist["mean_loss"].append(total / n)
            hist["learning_rate"].append(float(schedule(step)))
            hist["minibatch_perplexity"].append(float(np.exp(loss)))
            hist["valid_perplexity"].append(validation_perplexity(forward, valid_ids, num_nodes))
            log(f"step {step}: mean loss {total / n:.4f}, lr {float(schedule(step)):.2f}, "
                f"minibatch perplexity {np.exp(loss):.2f}, validation perplexity {hist['valid_perplexity'][-1]:.2f}")
            if step % sample_frequency == 0:
                hist["samples"][step] = [sample_text(forward, 80, seed=step * 10 + k, num_nodes=num_nodes)
                                         for k in range(5)]
                for s in hist["samples"][step]:
                    log(s)
            total = 0.0
            n = 0
    hist["model"] = model
    return hist


if __name__ == "__main__":
    import argparse
    import time

    from tfkata.data import text as corpora

    parser = argparse.ArgumentParser(description="Train k05's character LM the TF 2 way with your n05 functions.")
    parser.add_argument("--steps", type=int, default=2001)
    args = parser.parse_args()
    keras.utils.set_random_seed(1234)
    valid, train_text = corpora.split_valid(corpora.offline_corpus())
    start = time.time()
    history = train(train_text, valid, num_steps=args.steps)
    print(f"trained {args.steps} steps in {time.time() - start:.1f} s; "
          f"validation perplexity {history['valid_perplexity'][-1]:.2f}")
