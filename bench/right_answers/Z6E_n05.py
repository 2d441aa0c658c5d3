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


def text_to_ids(text):
    b = np.frombuffer(text.encode("latin-1", errors="replace"), dtype=np.uint8).astype(np.int32)
    ids = b - (ord("a") - 1)
    ok = (b >= ord("a")) & (b <= ord("z"))
    return np.where(ok, ids, 0).astype(np.int32)


def ids_to_text(ids):
    a = np.asarray(ids).reshape(-1)
    return "".join(" " if i == 0 else chr(int(i) + ord("a") - 1) for i in a)


def batch_windows(ids, batch_size=BATCH_SIZE, num_unrollings=NUM_UNROLLINGS):
    n = len(ids)
    segment = n // batch_size
    cursor = np.arange(batch_size) * segment
    while True:
        pos = (cursor[:, None] + np.arange(num_unrollings + 1)[None, :]) % n
        yield np.asarray(ids)[pos].astype(np.int32)
        cursor = (cursor + num_unrollings) % n


def build_model(num_nodes=NUM_NODES):
    def tn():
        return keras.initializers.TruncatedNormal(mean=-0.1, stddev=0.1)
    x = keras.Input(shape=(None, VOCABULARY_SIZE), dtype="float32")
    h = keras.Input(shape=(num_nodes,))
    c = keras.Input(shape=(num_nodes,))
    lstm = keras.layers.LSTM(num_nodes, return_sequences=True, return_state=True, name="lstm",
                             kernel_initializer=tn(), recurrent_initializer=tn(),
                             bias_initializer="zeros", unit_forget_bias=False)
    seq, h2, c2 = lstm(x, initial_state=[h, c])
    logits = keras.layers.Dense(VOCABULARY_SIZE, name="classifier", kernel_initializer=tn(),
                                bias_initializer="zeros")(seq)
    return keras.Model([x, h, c], [logits, h2, c2])


def one_hot(ids):
    return tf.one_hot(ids, VOCABULARY_SIZE, dtype=tf.float32)


def zero_state(batch_size, num_nodes=NUM_NODES):
    return (tf.zeros([batch_size, num_nodes], tf.float32), tf.zeros([batch_size, num_nodes], tf.float32))


def port_k05_weights(model, params):
    kernel = np.concatenate([params[g + "x"] for g in GATES], axis=1)
    rec = np.concatenate([params[g + "m"] for g in GATES], axis=1)
    bias = np.concatenate([np.reshape(params[g + "b"], [-1]) for g in GATES], axis=0)
    model.get_layer("lstm").set_weights([kernel, rec, bias])
    model.get_layer("classifier").set_weights([np.asarray(params["w"]), np.asarray(params["b"])])
    return model


def sequence_loss(labels, logits):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def make_schedule(initial=10.0, decay_steps=5000, decay_rate=0.1):
    sched = getattr(keras.optimizers.schedules, "ExponentialDecay", None)
    if sched is None:
        sched = keras.optimizers.schedules.learning_rate_schedule.ExponentialDecay
    return sched(initial, decay_steps, decay_rate, staircase=True)


def make_optimizer(schedule=None):
    if schedule is None:
        schedule = make_schedule()
    return keras.optimizers.SGD(learning_rate=schedule)


def make_train_step(model, optimizer, clip_norm=1.25):
    @tf.function
    def step(window, h, c):
        inputs = one_hot(window[:, :-1])
        labels = window[:, 1:]
        with tf.GradientTape() as tape:
            logits, h2, c2 = model([inputs, h, c], training=True)
            loss = sequence_loss(labels, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        clipped, norm = tf.clip_by_global_norm(grads, clip_norm)
        optimizer.apply_gradients(zip(clipped, model.trainable_variables))
        return loss, h2, c2, norm
    return step


def make_forward(model, num_nodes=NUM_NODES):
    @tf.function(input_signature=[tf.TensorSpec([None, None, VOCABULARY_SIZE], tf.float32),
                                  tf.TensorSpec([None, num_nodes], tf.float32),
                                  tf.TensorSpec([None, num_nodes], tf.float32)])
    def forward(x, h, c):
        out = model([x, h, c], training=False)
        return out[0], out[1], out[2]
    return forward


def validation_perplexity(forward, valid_ids, num_nodes=NUM_NODES):
    valid_ids = np.asarray(valid_ids)
    h, c = zero_state(1, num_nodes)
    logits, _, _ = forward(one_hot(valid_ids[None, :]), h, c)
    p = tf.nn.softmax(logits[0]).numpy()
    labels = np.roll(valid_ids, -1)
    probs = np.maximum(p[np.arange(len(valid_ids)), labels], 1e-10)
    return float(np.exp(np.mean(-np.log(probs))))


def sample_step(forward, char_id, h, c):
    logits, h, c = forward(one_hot([[char_id]]), h, c)
    return tf.nn.softmax(logits[0, 0]).numpy(), h, c


def sample_text(forward, length=80, seed=None, num_nodes=NUM_NODES):
    rng = np.random.default_rng(seed)
    ch = int(rng.integers(27))
    out = [ch]
    h, c = zero_state(1, num_nodes)
    for _ in range(length - 1):
        p, h, c = sample_step(forward, ch, h, c)
        p = p.astype(np.float64)
        ch = int(rng.choice(27, p=p / p.sum()))
        out.append(ch)
    return ids_to_text(out)


def train(train_text, valid_text, num_steps=2001, summary_frequency=SUMMARY_FREQUENCY,
          sample_frequency=SAMPLE_FREQUENCY, windows=None, num_nodes=NUM_NODES, log=print):
    model = build_model(num_nodes)
    schedule = make_schedule()
    optimizer = make_optimizer(schedule)
    step_fn = make_train_step(model, optimizer)
    if windows is None:
        windows = batch_windows(text_to_ids(train_text), BATCH_SIZE, NUM_UNROLLINGS)
    windows = iter(windows)
    forward = make_forward(model, num_nodes)
    valid_ids = text_to_ids(valid_text)
    history = dict(step=[], mean_loss=[], learning_rate=[], minibatch_perplexity=[],
                   valid_perplexity=[], samples={})
    state = None
    total, count = 0.0, 0
    for step in range(num_steps):
        window = next(windows)
        if state is None:
            state = zero_state(int(np.shape(window)[0]), num_nodes)
        loss, h, c, _ = step_fn(tf.constant(window, tf.int32), state[0], state[1])
        state = (h, c)
        loss = float(loss)
        total += loss
        count += 1
        if step % summary_frequency == 0:
            mean_loss = total / count
            lr = float(schedule(step))
            vp = validation_perplexity(forward, valid_ids, num_nodes)
            history["step"].append(step)
            history["mean_loss"].append(float(mean_loss))
            history["learning_rate"].append(lr)
            history["minibatch_perplexity"].append(float(np.exp(loss)))
            history["valid_perplexity"].append(vp)
            log(f"step {step}: mean loss {mean_loss:.4f} lr {lr} minibatch ppl {np.exp(loss):.2f} valid ppl {vp:.2f}")
            if step % sample_frequency == 0:
                history["samples"][step] = [sample_text(forward, 80, seed=step * 10 + k, num_nodes=num_nodes) for k in range(5)]
                for s in history["samples"][step]:
                    log(s)
            total, count = 0.0, 0
    history["model"] = model
    return history


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
