# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run n07        (or: pytest tests/test_n07_keras_seq2seq.py)
# Generated from solutions/n07_keras_seq2seq.py by `python -m tfkata.stubs n07`; `kata reset n07` restores it.
"""n07 · seq2seq with Keras layers and a tf.function decoder (the TF 2 twin of k07).

Then → now. In k07 the model was a graph: five placeholders, ``variable_scope("encoder")`` and
``("decoder")``, ``MultiRNNCell`` stacks of ``BasicLSTMCell`` run by ``dynamic_rnn`` with a
``sequence_length``, a ``DecoderParts`` tuple so that teacher forcing and greedy decoding shared
weights, a hand-written ``tf.while_loop`` for greedy decoding, and ``sess.run(train_op, feed)``
once per batch. Now the same delete-the-odds model is a handful of Keras layers that own their
weights (``Embedding``, ``LSTM`` with ``return_sequences`` and ``return_state``, ``Dense``): the
encoder is masked with ``tf.sequence_mask`` instead of ``sequence_length``; teacher forcing is one
call of the decoder's LSTM layers on the whole shifted target; greedy decoding calls the SAME
layers' cells one step at a time in an ordinary Python ``for`` loop over ``tf.range`` that
``tf.function`` turns into a ``while_loop`` (AutoGraph), writing a ``TensorArray`` and leaving the
loop at the first step where every sequence has emitted EOS; training is a ``GradientTape`` step
in a ``tf.function`` whose ``input_signature`` keeps bucketed batches of every length on ONE
trace. Gained: no scopes, no placeholders, a decoding loop you can read (and run eagerly, step by
step, to debug). Lost: the explicit graph, and the layouts you did not choose: Keras keeps an
LSTM's input and recurrent kernels apart, orders the gates i, f, c, o (``BasicLSTMCell``: i, j,
f, o) and has no ``forget_bias`` (``BasicLSTMCell`` added 1.0 to the forget gate at every step),
and its state is ``[h, c]`` where k07's ``LSTMStateTuple`` is ``(c, h)``. The proof that the port
is right: load YOUR k07's weights into these layers (:func:`load_k07_weights`) and get k07's
final states, logits and greedy ids.

Shapes: B batch, T time, E = 30 embedding, H = 50 units, V = 11 tokens (``PAD = EOS = GO = 0``).
A decoder state is a list of ``num_layers`` pairs ``(h, c)``, each float32 ``[B, H]``, first
layer first. The data, the decoder shift and ``exact_match`` are k07's (numpy, imported from
your k07); everything else runs eagerly, and only the training step and the decoder are
``tf.function``s.

Keras 2 and Keras 3: ``import keras`` is Keras 3 from TensorFlow 2.16 on, Keras 2 on 2.12–2.15.
Everything here works on both, measured on 2.12 and 2.21: both keep an LSTM's weights as
``[kernel [D, 4H], recurrent_kernel [H, 4H], bias [4H]]`` in gate order i, f, c, o; both carry the
last valid output and state forward over masked steps (so the final state is the state at each
sequence's last valid step, as ``dynamic_rnn`` gave); ``layer.cell(x, [h, c])`` is one step on
both. What differs: Keras 3 draws initial weights from its own seed
(``keras.utils.set_random_seed`` sets that and TensorFlow's); on 2.12 ``keras.optimizers.Adam``
is Keras 2's legacy optimizer (measured; ``tf.keras``'s is the newer one), which applies an
embedding's sparse gradient as TF 1 did, while Keras 3's Adam does not (see
:func:`make_train_step`); the same seed gives other initial weights, so the trained figures differ
between the lines (each repeats bit for bit).

Run it once your functions pass:  ``python -m katas.n07_keras_seq2seq --steps 3000``.
"""
import collections
import time

import keras
import numpy as np
import tensorflow as tf

from . import k07_seq2seq as k07

VOCAB_SIZE, EMBED_SIZE, HIDDEN_UNITS, NUM_LAYERS = k07.VOCAB_SIZE, k07.EMBED_SIZE, k07.HIDDEN_UNITS, k07.NUM_LAYERS
PAD = EOS = GO = k07.EOS
BATCH_SIZE = k07.BATCH_SIZE
MAX_DECODE_STEPS = k07.MAX_DECODE_STEPS

# The model's layers (created once by build_layers; every function below takes them).
Seq2SeqLayers = collections.namedtuple(
    "Seq2SeqLayers",
    [
        "encoder_embedding",  # keras.layers.Embedding(V, E)
        "encoder_lstms",  # list of num_layers keras.layers.LSTM(H, return_sequences=True, return_state=True)
        "decoder_embedding",  # keras.layers.Embedding(V, E)
        "decoder_lstms",  # list of num_layers LSTM layers, as the encoder's
        "output_layer",  # keras.layers.Dense(V), linear: the logits
    ],
)

# The signature of one training batch (int32, any batch size and lengths): x, len_x, decoder input,
# decoder target, len_y.
BATCH_SIGNATURE = (
    tf.TensorSpec([None, None], tf.int32),
    tf.TensorSpec([None], tf.int32),
    tf.TensorSpec([None, None], tf.int32),
    tf.TensorSpec([None, None], tf.int32),
    tf.TensorSpec([None], tf.int32),
)


# --------------------------------------------------------------------------- k07's weights in Keras's layout
def lstm_weights_from_k07(kernel, bias, forget_bias=1.0):
    """One ``BasicLSTMCell``'s weights in a Keras ``LSTM`` layer's layout (numpy in, numpy out).

    ``kernel``: float32 ``[D + H, 4H]``, rows for the input first, then for ``h``; columns in
    BasicLSTMCell's gate order i, j (the new cell content), f, o. ``bias``: ``[4H]`` in that order.
    BasicLSTMCell computes ``f = sigmoid(... + b_f + forget_bias)``; Keras has no forget_bias.

    Returns ``[kernel [D, 4H], recurrent_kernel [H, 4H], bias [4H]]`` with the columns in Keras's
    order i, f, c, o and ``forget_bias`` added to the forget gate's bias: what ``LSTM.set_weights``
    takes.
    """
    kernel = np.asarray(kernel)
    bias = np.asarray(bias)
    H = kernel.shape[1] // 4
    D = kernel.shape[0] - H
    def reorder(a):
        i, j, f, o = np.split(a, 4, axis=-1)
        return np.concatenate([i, f, j, o], axis=-1)
    k = reorder(kernel)
    b = reorder(bias).copy()
    b[H:2 * H] += forget_bias
    return [k[:D], k[D:], b]


# --------------------------------------------------------------------------- the layers
def build_layers(vocab_size=VOCAB_SIZE, embed_size=EMBED_SIZE, hidden_units=HIDDEN_UNITS, num_layers=NUM_LAYERS):
    """Create and BUILD the model's layers; returns a :class:`Seq2SeqLayers`.

    Embeddings ``keras.layers.Embedding(vocab_size, embed_size)`` initialised from a truncated normal
    with stddev 0.1 (as k07); ``num_layers`` ``keras.layers.LSTM(hidden_units,
    return_sequences=True, return_state=True)`` for the encoder and as many, separate ones, for the
    decoder; ``keras.layers.Dense(vocab_size)`` (linear) for the output. Build each layer now
    (``layer.build(input_shape)``: the embeddings ``(None, None)``, the first LSTM ``(None, None,
    embed_size)``, the others ``(None, None, hidden_units)``, the output ``(None, hidden_units)``)
    so that its weights exist before the first call (``load_k07_weights`` and the optimizer need
    them).
    """
    init = keras.initializers.TruncatedNormal(stddev=0.1)
    enc_emb = keras.layers.Embedding(vocab_size, embed_size, embeddings_initializer=init)
    dec_emb = keras.layers.Embedding(vocab_size, embed_size, embeddings_initializer=init)
    enc_emb.build((None, None))
    dec_emb.build((None, None))
    def lstms():
        out = []
        for i in range(num_layers):
            l = keras.layers.LSTM(hidden_units, return_sequences=True, return_state=True)
            l.build((None, None, embed_size if i == 0 else hidden_units))
            out.append(l)
        return out
    enc = lstms()
    dec = lstms()
    dense = keras.layers.Dense(vocab_size)
    dense.build((None, hidden_units))
    return Seq2SeqLayers(enc_emb, enc, dec_emb, dec, dense)


def load_k07_weights(layers, weights, forget_bias=1.0):
    """Copy k07's trained variables into the layers; return ``layers``.

    ``weights`` maps ROLES to numpy arrays (the test finds each of your k07 variables' role):
    ``"encoder/embedding"`` and ``"decoder/embedding"`` ``[V, E]``; ``"encoder/cell_0/kernel"``,
    ``"encoder/cell_0/bias"``, ... ``"encoder/cell_{L-1}/bias"`` and the same for ``"decoder/..."``
    (each a BasicLSTMCell's ``[D + H, 4H]`` kernel and ``[4H]`` bias); ``"output/kernel"`` ``[H, V]``
    and ``"output/bias"`` ``[V]``. The embeddings and the output layer go in unchanged; each cell
    through :func:`lstm_weights_from_k07`.
    """
    layers.encoder_embedding.set_weights([weights["encoder/embedding"]])
    layers.decoder_embedding.set_weights([weights["decoder/embedding"]])
    for part, lstms in (("encoder", layers.encoder_lstms), ("decoder", layers.decoder_lstms)):
        for i, lstm in enumerate(lstms):
            lstm.set_weights(lstm_weights_from_k07(weights[f"{part}/cell_{i}/kernel"],
                                                   weights[f"{part}/cell_{i}/bias"], forget_bias))
    layers.output_layer.set_weights([weights["output/kernel"], weights["output/bias"]])
    return layers


# --------------------------------------------------------------------------- encoder and decoders
def encode(layers, inputs, lengths):
    """The encoder: embed ``inputs`` (int32 ``[B, T]``), run the encoder LSTMs one after the other.

    Mask the padding with ``mask = tf.sequence_mask(lengths, T)`` passed to every LSTM call
    (``lstm(x, mask=mask)``; ``lengths`` int32 ``[B]``): that is what ``sequence_length`` did, and
    the state each layer returns is then the state at each sequence's last valid step.

    Returns ``(outputs, states)``: the top layer's outputs float32 ``[B, T, H]`` and the list of
    each layer's final ``(h, c)``, first layer first (what starts the decoder).
    """
    x = layers.encoder_embedding(inputs)
    mask = tf.sequence_mask(lengths, tf.shape(inputs)[1])
    states = []
    for lstm in layers.encoder_lstms:
        x, h, c = lstm(x, mask=mask)
        states.append((h, c))
    return x, states


def teacher_forced_logits(layers, decoder_inputs, states):
    """Teacher forcing: the decoder run over the whole shifted target at once.

    Embed ``decoder_inputs`` (int32 ``[B, T]``, GO first); call each decoder LSTM once on the whole
    sequence, layer i starting from ``initial_state=[h, c]`` of ``states[i]`` (the encoder's final
    states); apply the output layer. Returns the logits, float32 ``[B, T, V]``. No mask is needed:
    steps past a target's length do not change the valid ones, and the loss masks them.
    """
    x = layers.decoder_embedding(decoder_inputs)
    for lstm, (h, c) in zip(layers.decoder_lstms, states):
        x, _, _ = lstm(x, initial_state=[h, c])
    return layers.output_layer(x)


def decoder_step(layers, tokens, states):
    """One step of the decoder, with the very weights :func:`teacher_forced_logits` uses.

    Embed ``tokens`` (int32 ``[B]``), then for each layer call its LSTM's cell once:
    ``out, (h, c) = lstm.cell(x, [h, c])`` (the cell of the same ``LSTM`` layer: that is how the two
    decoders share weights), feeding each layer's output to the next; apply the output layer.
    Returns ``(logits float32 [B, V], new_states)`` with ``new_states`` shaped like ``states``
    (a list of ``(h, c)`` tuples).
    """
    x = layers.decoder_embedding(tokens)
    new_states = []
    for lstm, (h, c) in zip(layers.decoder_lstms, states):
        x, (h2, c2) = lstm.cell(x, [h, c])
        new_states.append((h2, c2))
    return layers.output_layer(x), new_states


def greedy_decode(step, states, batch_size, max_steps=MAX_DECODE_STEPS):
    """Greedy decoding as a Python loop that AutoGraph turns into a ``tf.while_loop``.

    ``step(tokens int32 [B], states) -> (logits [B, V], states)`` is one decoder step (e.g.
    ``decoder_step`` with the layers bound); ``states`` its start. Start every sequence from GO.
    Loop ``for t in tf.range(max_steps)`` (a TENSOR range: inside a ``tf.function`` that becomes one
    ``while_loop``; a Python ``range`` would unroll ``max_steps`` copies of the step into the graph):
    leave the loop (``break``) as soon as every sequence is finished; else take one step, the argmax
    is the next token (int32), a finished sequence emits PAD instead, record each length (EOS
    counted) and write the tokens into a ``tf.TensorArray(tf.int32, size=0, dynamic_size=True)``.
    A sequence is finished once it has emitted EOS. Works eagerly and inside a ``tf.function``.

    Returns ``(ids int32 [B, T_out], lengths int32 [B])``: ``T_out`` the steps run, ``lengths``
    ``max_steps`` for a sequence that never emitted EOS.
    """
    tokens = tf.fill([batch_size], tf.constant(GO, tf.int32))
    finished = tf.zeros([batch_size], tf.bool)
    lengths = tf.fill([batch_size], tf.constant(max_steps, tf.int32))
    ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    for t in tf.range(max_steps):
        if tf.reduce_all(finished):
            break
        logits, states = step(tokens, states)
        nxt = tf.argmax(logits, axis=-1, output_type=tf.int32)
        nxt = tf.where(finished, tf.constant(PAD, tf.int32), nxt)
        ta = ta.write(t, nxt)
        newly = tf.logical_and(tf.logical_not(finished), tf.equal(nxt, EOS))
        lengths = tf.where(newly, t + 1, lengths)
        finished = tf.logical_or(finished, newly)
        tokens = nxt
    ids = tf.transpose(tf.reshape(ta.stack(), [-1, batch_size]))
    return ids, lengths


def make_greedy_decoder(layers, max_steps=MAX_DECODE_STEPS):
    """Inference as one ``tf.function``: ``decode(inputs int32 [B, T], lengths int32 [B]) -> (ids, lengths)``.

    Give it ``input_signature=(tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32))``
    so any batch traces once; inside, :func:`encode` and then :func:`greedy_decode` with
    :func:`decoder_step` on ``layers`` and the batch size ``tf.shape(inputs)[0]``.
    """
    @tf.function(input_signature=(tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)))
    def decode(inputs, lengths):
        _, states = encode(layers, inputs, lengths)
        return greedy_decode(lambda tok, st: decoder_step(layers, tok, st), states,
                             tf.shape(inputs)[0], max_steps)
    return decode


# --------------------------------------------------------------------------- loss, optimizer, one step
def masked_loss(logits, targets, lengths):
    """Mean cross entropy over the valid steps only, as k07's.

    ``keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)`` per step,
    times ``tf.sequence_mask(lengths, T, dtype=tf.float32)``, summed, divided by the mask's sum. (A
    ``SparseCategoricalCrossentropy`` object with ``sample_weight=mask`` is not the same number: it
    divides by every position, B * T.) Returns a float32 scalar.
    """
    ce = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    mask = tf.sequence_mask(lengths, tf.shape(targets)[1], dtype=tf.float32)
    return tf.reduce_sum(ce * mask) / tf.reduce_sum(mask)


def make_optimizer(learning_rate=3e-3):
    """``keras.optimizers.Adam`` step for step the same as k07's ``AdamOptimizer`` (epsilon 1e-8, not Keras's 1e-7)."""
    return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8)


def make_train_step(layers, optimizer):
    """A ``tf.function`` ``step(x, len_x, decoder_inputs, decoder_targets, len_y) -> loss``.

    Use ``input_signature=BATCH_SIGNATURE``: bucketed batches have other lengths every step, and
    without a signature each new shape is traced again. One step: under a ``tf.GradientTape``,
    :func:`encode`, :func:`teacher_forced_logits` from its states, :func:`masked_loss`; the
    gradients with respect to every trainable weight of every layer in ``layers`` (embeddings,
    LSTMs, output); ``optimizer.apply_gradients``; return the loss (computed before the update).
    The embeddings' gradients come back from the tape as ``tf.IndexedSlices`` (only the rows looked
    up); make every gradient dense (``tf.convert_to_tensor``) before applying it: Keras 3's Adam
    applies slices with a repeated id differently from TF 1 (measured on Keras 3.15: a row looked up
    twice moved by 1.41 x the learning rate on the first step, where Adam moves no weight by more
    than the learning rate); Keras 2's gives TF 1's numbers either way.

    (The first call traces twice: it creates the optimizer's slot variables, and a ``tf.function``
    that creates variables is traced again. Later batches, of any shape, reuse the trace.)
    """
    all_layers = [layers.encoder_embedding, *layers.encoder_lstms, layers.decoder_embedding,
                  *layers.decoder_lstms, layers.output_layer]
    variables = [w for layer in all_layers for w in layer.trainable_weights]

    @tf.function(input_signature=BATCH_SIGNATURE)
    def step(x, len_x, decoder_inputs, decoder_targets, len_y):
        with tf.GradientTape() as tape:
            _, states = encode(layers, x, len_x)
            logits = teacher_forced_logits(layers, decoder_inputs, states)
            loss = masked_loss(logits, decoder_targets, len_y)
        grads = tape.gradient(loss, variables)
        grads = [tf.convert_to_tensor(g) for g in grads]
        optimizer.apply_gradients(zip(grads, variables))
        return loss
    return step


# --------------------------------------------------------------------------- training
def train(steps=3000, learning_rate=3e-3, batch_size=BATCH_SIZE, use_buckets=True, eval_samples=500, seed=1234,
          num_print=3):
    """Train the Keras model on k07's task and measure it, as ``k07.train`` does.

    ``keras.utils.set_random_seed(seed)`` first (initial weights), then :func:`build_layers`,
    :func:`make_optimizer`, :func:`make_train_step` and :func:`make_greedy_decoder`. Draw the data
    exactly as k07.train: ``rng = np.random.RandomState(seed)``, with ``use_buckets`` batches popped
    from the end (``queue.pop()``) of ``k07.bucketed_batches(..., batch_size=batch_size, rng=rng)`` over
    pools ``k07.generate_data(32 * batch_size, rng=rng)`` (a new pool when the queue is empty), the
    decoder input and target from ``k07.get_decoder_input_and_output``. Then decode ``eval_samples``
    fresh sequences (``k07.generate_data(eval_samples, rng=np.random.RandomState(seed + 1))``) and
    print ``num_print`` of them as k07 does.

    Returns a dict: ``accuracy`` (``k07.exact_match``), ``steps``, ``seconds`` (training),
    ``eval_seconds``, ``loss`` (mean of the last 100 losses), ``losses`` (every step's, as floats),
    ``layers`` and ``eval`` = (x, y, len_x, len_y, predictions).
    """
    keras.utils.set_random_seed(seed)
    layers = build_layers()
    optimizer = make_optimizer(learning_rate)
    step_fn = make_train_step(layers, optimizer)
    decode = make_greedy_decoder(layers)
    rng = np.random.RandomState(seed)
    queue = []
    losses = []
    t0 = time.time()
    for _ in range(steps):
        if use_buckets:
            if not queue:
                queue = k07.bucketed_batches(*k07.generate_data(32 * batch_size, rng=rng),
                                             batch_size=batch_size, rng=rng)
            x, y, len_x, len_y = queue.pop()
        else:
            x, y, len_x, len_y = k07.generate_data(batch_size, rng=rng)
        di, do = k07.get_decoder_input_and_output(y)
        loss = step_fn(x, len_x, di, do, len_y)
        losses.append(float(loss))
    seconds = time.time() - t0
    t1 = time.time()
    ex, ey, elx, ely = k07.generate_data(eval_samples, rng=np.random.RandomState(seed + 1))
    ids, _ = decode(ex, elx)
    pred = ids.numpy()
    eval_seconds = time.time() - t1
    acc = k07.exact_match(pred, ey)
    for i in range(min(num_print, len(ex))):
        print("Sample x:", ex[i][:elx[i]])
        print("Expected y:", ey[i][:ely[i]])
        print("Greedy Decoding result:", pred[i])
    return dict(accuracy=acc, steps=steps, seconds=seconds, eval_seconds=eval_seconds,
                loss=float(np.mean(losses[-100:])) if losses else float("nan"), losses=losses,
                layers=layers, eval=(ex, ey, elx, ely, pred))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Train k07's seq2seq the TF 2 way with your n07 functions.")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    args = parser.parse_args()
    result = train(steps=args.steps, learning_rate=args.learning_rate)
    print(f"exact match {result['accuracy']:.1%} after {args.steps} steps ({result['seconds']:.1f} s of training)")
