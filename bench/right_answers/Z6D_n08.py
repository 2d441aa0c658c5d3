# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run n08        (or: pytest tests/test_n08_keras_attention.py)
# Generated from solutions/n08_keras_attention.py by `python -m tfkata.stubs n08`; `kata reset n08` restores it.
"""n08 · Attention as a Keras layer, beam search in eager code (the TF 2 twin of k08).

Then → now. In k08 attention was a set of graph functions (``luong_scores``, ``masked_softmax``,
``context_vector``, ``attentional_state``) sharing ``tf.compat.v1.layers.Dense`` objects through an
``AttentionParts`` tuple, run inside a hand-written ``tf.while_loop``; beam search was numpy over a
``session.run`` per step. Now Luong's "general" attention is ONE Keras layer that owns its two
weights (W of the score and W_c of the attentional state) and takes a boolean padding mask instead
of ``memory_sequence_length``; Keras's own ``keras.layers.Attention`` (a DOT score) computes the
very same alignments and context once you hand it the keys ``W h_s`` instead of the memory (the
"general" score is a dot score against transformed keys); and beam search is eager TensorFlow: one
``tf.math.top_k`` per step over every (hypothesis, token) candidate, finished hypotheses competing
as they are. Gained: a layer you call like a function, and a search you can step through. Lost:
nothing you can see; the weights are the same numbers (the tests load k08's into this layer and
report the max |diff|).

Shapes: B batch, T encoder steps, H units, V tokens (``PAD = EOS = GO = 0``). A query is a decoder
output, float32 ``[B, H]``; the memory is the encoder outputs, float32 ``[B, T, H]``; a mask is
bool ``[B, T]`` (True = a real step; ``tf.sequence_mask(lengths, T)``).

The whole model is k08's: n07's encoder (``n07.encode``), a decoder of ``keras.layers.LSTMCell``s
with input feeding (the previous attentional state joins the embedding), :class:`LuongAttention`
on the top cell's output, logits from the attentional state; teacher forcing is a ``tf.range`` loop
AutoGraph turns into a ``while_loop``; greedy decoding is ``n07.greedy_decode`` with the pair
(LSTM states, previous attention) as its state. Trained on k08's copy task with k08's budget and
schedule (1000 steps, Adam 3e-3 halved smoothly every 300 steps, floor 3e-4: :class:`HalvingSchedule`).

Keras 2 and Keras 3 (measured on TF 2.12 and 2.21): ``keras.layers.Attention`` masks the value
positions by subtracting 1e9 from their scores on both, so padded weights come out exactly 0.0
in float32 (exp underflows) for scores of ordinary size; :func:`masked_softmax` must give 0.0 whatever
the score, so it uses -inf. Both take ``mask=[query_mask, value_mask]`` and
``return_attention_scores=True``. Keras 2.12 exports the schedule base class only as
``keras.optimizers.schedules.learning_rate_schedule.LearningRateSchedule`` (see :class:`HalvingSchedule`).

Run it once your functions pass:  ``python -m katas.n08_keras_attention --steps 1000``.
"""
import collections
import time

import keras
import numpy as np
import tensorflow as tf

from tfkata.paths import output_dir

from . import k07_seq2seq as k07
from . import n07_keras_seq2seq as n07

VOCAB_SIZE, EMBED_SIZE, HIDDEN_UNITS, NUM_LAYERS = n07.VOCAB_SIZE, n07.EMBED_SIZE, n07.HIDDEN_UNITS, n07.NUM_LAYERS
PAD = EOS = GO = n07.EOS
MAX_DECODE_STEPS = n07.MAX_DECODE_STEPS

# The attention model's layers (build_attention_layers). The encoder's names are n07's, so n07.encode runs it.
AttentionLayers = collections.namedtuple(
    "AttentionLayers",
    [
        "encoder_embedding",  # n07's encoder embedding
        "encoder_lstms",  # n07's encoder LSTM layers
        "decoder_embedding",  # keras.layers.Embedding(V, E)
        "decoder_cells",  # num_layers keras.layers.LSTMCell(H); the first reads [embedding ; previous attention]
        "attention",  # LuongAttention(H)
        "output_layer",  # keras.layers.Dense(V) on the attentional state
    ],
)


# --------------------------------------------------------------------------- Luong attention
def general_scores(query, keys):
    """Luong's "general" score ``score(h_t, h_s) = h_t · W h_s`` for every encoder position.

    ``keys``: the memory already multiplied by W, float32 ``[B, T, H]``; ``query`` float32 ``[B, H]``.
    Returns float32 ``[B, T]``: ``scores[b, s] = query[b] · keys[b, s]``.
    """
    return tf.einsum("bh,bth->bt", query, keys)


def masked_softmax(scores, mask):
    """Softmax over the real positions only.

    ``scores`` float32 ``[B, T]``, ``mask`` bool ``[B, T]`` (True = real). A padded position gets
    weight exactly 0.0 whatever its score, and each row sums to 1. Returns float32 ``[B, T]``.
    """
    neg = tf.fill(tf.shape(scores), tf.constant(-np.inf, scores.dtype))
    weights = tf.nn.softmax(tf.where(mask, scores, neg), axis=-1)
    return tf.where(mask, weights, tf.zeros_like(weights))


class LuongAttention(keras.layers.Layer):
    """Luong's "general" attention with the attentional state, as one Keras layer (k08's pieces).

    ``memory_layer``: ``keras.layers.Dense(units, use_bias=False)`` (W of the score, applied to the
    memory: the keys); ``attention_layer``: ``keras.layers.Dense(units, use_bias=False)`` (W_c, no
    activation: the tanh is applied in ``call``). Create both in ``__init__`` so Keras tracks them.

    ``call(query, memory, mask)``: query float32 ``[B, H]``, memory float32 ``[B, T, H_mem]``, mask
    bool ``[B, T]``. keys = ``memory_layer(memory)``; alignments = :func:`masked_softmax` of
    :func:`general_scores`; context ``c = sum_s a(s) memory[s]`` (of the MEMORY, not the keys);
    attention ``tanh(W_c [c ; query])`` (context first). Returns ``(attention [B, units],
    alignments [B, T])``.
    """

    def __init__(self, units, **kwargs):
        """Keep ``units`` and make the two bias-free Dense layers, ``memory_layer`` and ``attention_layer``."""
        super().__init__(**kwargs)
        self.units = units
        self.memory_layer = keras.layers.Dense(units, use_bias=False)
        self.attention_layer = keras.layers.Dense(units, use_bias=False)

    def call(self, query, memory, mask):
        """``(attention [B, units], alignments [B, T])`` for one decoder step (see the class docstring)."""
        keys = self.memory_layer(memory)
        alignments = masked_softmax(general_scores(query, keys), mask)
        context = tf.reduce_sum(alignments[:, :, None] * memory, axis=1)
        attention = tf.tanh(self.attention_layer(tf.concat([context, query], axis=-1)))
        return attention, alignments


def keras_attention(query, memory, keys, mask):
    """The same alignments and context from ``keras.layers.Attention`` (a dot score).

    ``keras.layers.Attention()`` scores ``query · key`` and averages the VALUES. Call it on
    ``[query[:, None, :], memory, keys]`` (query ``[B, 1, H]``, value = memory, key = keys) with
    ``mask=[None, mask]`` and ``return_attention_scores=True``. With ``keys = W memory`` that is
    Luong's general score; with ``keys = memory``, the dot score. Returns ``(context [B, H_mem],
    alignments [B, T])`` (the length-1 query axis squeezed away).
    """
    context, scores = keras.layers.Attention()([query[:, None, :], memory, keys], mask=[None, mask],
                                               return_attention_scores=True)
    return context[:, 0, :], scores[:, 0, :]


# --------------------------------------------------------------------------- the attention decoder
def build_attention_layers(vocab_size=VOCAB_SIZE, embed_size=EMBED_SIZE, hidden_units=HIDDEN_UNITS,
                           num_layers=NUM_LAYERS):
    """k08's model as Keras layers, all BUILT (their weights exist); returns :class:`AttentionLayers`.

    The encoder and the decoder embedding from ``n07.build_layers`` (same arguments; its decoder LSTMs
    are not used); ``num_layers`` ``keras.layers.LSTMCell(hidden_units)``, the first built for inputs
    ``(None, embed_size + hidden_units)`` (input feeding: the embedding and the previous attentional
    state), the others ``(None, hidden_units)``; ``LuongAttention(hidden_units)`` with its
    ``memory_layer`` built for ``(None, None, hidden_units)`` and its ``attention_layer`` for
    ``(None, 2 * hidden_units)``; ``n07``'s output layer (Dense(V) on ``(None, hidden_units)``).
    """
    base = n07.build_layers(vocab_size, embed_size, hidden_units, num_layers)
    cells = [keras.layers.LSTMCell(hidden_units) for _ in range(num_layers)]
    for i, cell in enumerate(cells):
        cell.build((None, embed_size + hidden_units) if i == 0 else (None, hidden_units))
    attention = LuongAttention(hidden_units)
    attention.memory_layer.build((None, None, hidden_units))
    attention.attention_layer.build((None, 2 * hidden_units))
    attention.built = True
    return AttentionLayers(base.encoder_embedding, base.encoder_lstms, base.decoder_embedding, cells,
                           attention, base.output_layer)


def attention_decoder_step(layers, memory, mask, tokens, states, prev_attention):
    """One decoder step with input feeding (k08's ``attention_step``), on :class:`AttentionLayers`.

    The first cell's input is ``[decoder_embedding(tokens) ; prev_attention]`` (tokens int32 ``[B]``,
    prev_attention float32 ``[B, H]``, zeros at the first step); each cell runs once,
    ``x, (h, c) = cell(x, [h, c])``, feeding the next; the top output is the query of
    ``layers.attention(x, memory, mask)``. Returns ``(logits [B, V], attention [B, H], new_states,
    alignments [B, T])``, ``new_states`` a list of ``(h, c)`` like ``states``; the logits are
    ``output_layer(attention)``.
    """
    x = tf.concat([layers.decoder_embedding(tokens), prev_attention], axis=-1)
    new_states = []
    for cell, (h, c) in zip(layers.decoder_cells, states):
        x, (h, c) = cell(x, [h, c])
        new_states.append((h, c))
    attention, alignments = layers.attention(x, memory, mask)
    return layers.output_layer(attention), attention, new_states, alignments


def attention_teacher_forced(layers, memory, mask, decoder_inputs, states):
    """Teacher forcing with attention: :func:`attention_decoder_step` over every step of ``decoder_inputs``.

    ``decoder_inputs`` int32 ``[B, T_dec]`` (GO first), ``states`` the encoder's final states. Start
    from zeros as the previous attention; loop ``for t in tf.range(T_dec)`` writing the logits and the
    alignments into two ``tf.TensorArray``s (inside a ``tf.function`` AutoGraph makes it one
    ``while_loop``). Returns ``(logits [B, T_dec, V], alignments [B, T_dec, T_enc])``.
    """
    batch = tf.shape(decoder_inputs)[0]
    steps = tf.shape(decoder_inputs)[1]
    prev = tf.zeros([batch, layers.attention.units])
    logits_ta = tf.TensorArray(tf.float32, size=steps)
    align_ta = tf.TensorArray(tf.float32, size=steps)
    states = [tuple(s) for s in states]
    for t in tf.range(steps):
        logits, prev, states, align = attention_decoder_step(layers, memory, mask, decoder_inputs[:, t], states, prev)
        logits_ta = logits_ta.write(t, logits)
        align_ta = align_ta.write(t, align)
    return tf.transpose(logits_ta.stack(), [1, 0, 2]), tf.transpose(align_ta.stack(), [1, 0, 2])


def make_attention_decoder(layers, max_steps=MAX_DECODE_STEPS):
    """Greedy decoding with attention as one ``tf.function(input_signature=n07.BATCH_SIGNATURE[:2])``.

    ``decode(inputs int32 [B, T], lengths int32 [B]) -> (ids, lengths)``: ``n07.encode`` (the memory
    and the states), the mask ``tf.sequence_mask(lengths, T)``, then ``n07.greedy_decode`` with a step
    whose state is the pair ``(states, previous attention)`` (zeros to start) and which calls
    :func:`attention_decoder_step`.
    """
    @tf.function(input_signature=n07.BATCH_SIGNATURE[:2])
    def decode(inputs, lengths):
        memory, states = n07.encode(layers, inputs, lengths)
        mask = tf.sequence_mask(lengths, tf.shape(inputs)[1])
        batch = tf.shape(inputs)[0]

        def step(tokens, state):
            st, prev = state
            logits, att, new_states, _ = attention_decoder_step(layers, memory, mask, tokens, st, prev)
            return logits, (new_states, att)

        start = ([tuple(s) for s in states], tf.zeros([batch, layers.attention.units]))
        return n07.greedy_decode(step, start, batch, max_steps)

    return decode


# Keras 3 exports the base class as keras.optimizers.schedules.LearningRateSchedule; Keras 2.12 only from the
# submodule (measured: its keras.optimizers.schedules holds nothing else).
_Schedule = getattr(keras.optimizers.schedules, "LearningRateSchedule", None) or \
    keras.optimizers.schedules.learning_rate_schedule.LearningRateSchedule


class HalvingSchedule(_Schedule):
    """k07's ``decayed_learning_rate`` as a Keras schedule: ``max(lr * 0.5 ** (step / halve_every), lr / 10)``.

    Smooth (not staircase); ``step`` is the optimizer's iteration count (0 at the first update).
    """

    def __init__(self, learning_rate, halve_every):
        """Keep the starting ``learning_rate`` and the number of steps ``halve_every`` that halves it."""
        self.learning_rate = learning_rate
        self.halve_every = halve_every

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        lr = self.learning_rate * tf.pow(0.5, step / self.halve_every)
        return tf.maximum(lr, self.learning_rate / 10)

    def get_config(self):
        """The constructor's arguments as a dict (Keras saves and restores a schedule through it)."""
        return {"learning_rate": self.learning_rate, "halve_every": self.halve_every}


def make_attention_train_step(layers, optimizer):
    """The training step as a ``tf.function(input_signature=n07.BATCH_SIGNATURE)`` returning the loss.

    Under a ``tf.GradientTape``: ``n07.encode``, the mask, :func:`attention_teacher_forced`,
    ``n07.masked_loss``; gradients for every trainable weight of every layer in ``layers`` (the
    attention's two kernels included), made dense (``tf.convert_to_tensor``, see n07), applied.
    """
    variables = []
    for layer in [layers.encoder_embedding, *layers.encoder_lstms, layers.decoder_embedding,
                  *layers.decoder_cells, layers.attention, layers.output_layer]:
        variables.extend(layer.trainable_weights)

    @tf.function(input_signature=n07.BATCH_SIGNATURE)
    def step(x, len_x, decoder_inputs, decoder_targets, len_y):
        with tf.GradientTape() as tape:
            memory, states = n07.encode(layers, x, len_x)
            mask = tf.sequence_mask(len_x, tf.shape(x)[1])
            logits, _ = attention_teacher_forced(layers, memory, mask, decoder_inputs, states)
            loss = n07.masked_loss(logits, decoder_targets, len_y)
        grads = tape.gradient(loss, variables)
        grads = [tf.convert_to_tensor(g) for g in grads]
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    return step


def train(steps=1000, learning_rate=3e-3, halve_every=300, batch_size=n07.BATCH_SIZE, eval_samples=500, seed=1234,
          num_print=3):
    """Train the attention model on k08's copy task with k08's budget; measure it as ``k07.train`` does.

    ``keras.utils.set_random_seed(seed)``; :func:`build_attention_layers`; Adam
    ``n07.make_optimizer(HalvingSchedule(learning_rate, halve_every))``;
    :func:`make_attention_train_step`; :func:`make_attention_decoder`. Data as ``n07.train`` but with
    ``copy_sequence=True``: ``rng = np.random.RandomState(seed)``, batches popped from
    ``k07.bucketed_batches`` over pools ``k07.generate_data(32 * batch_size, True, rng)``. Evaluate on
    ``k07.generate_data(eval_samples, True, np.random.RandomState(seed + 1))``.

    Returns a dict: ``accuracy`` (``k07.exact_match``), ``steps``, ``seconds``, ``eval_seconds``,
    ``loss`` (mean of the last 100), ``losses``, ``layers``, ``eval`` = (x, y, len_x, len_y, predictions).
    """
    keras.utils.set_random_seed(seed)
    layers = build_attention_layers()
    optimizer = n07.make_optimizer(HalvingSchedule(learning_rate, halve_every))
    train_step = make_attention_train_step(layers, optimizer)
    decode = make_attention_decoder(layers)
    rng = np.random.RandomState(seed)
    queue, losses = [], []
    start = time.time()
    for _ in range(steps):
        if not queue:
            queue = k07.bucketed_batches(*k07.generate_data(32 * batch_size, True, rng), batch_size=batch_size, rng=rng)
        x, y, lx, ly = queue.pop()
        din, dout = k07.get_decoder_input_and_output(y)
        losses.append(float(train_step(x, lx, din, dout, ly)))
    seconds = time.time() - start
    ex, ey, elx, ely = k07.generate_data(eval_samples, True, np.random.RandomState(seed + 1))
    start = time.time()
    predictions, _ = decode(ex, elx)
    predictions = predictions.numpy()
    eval_seconds = time.time() - start
    for i in range(min(num_print, eval_samples)):
        print("Sample x:", ex[i, :elx[i]].tolist())
        print("Expected y:", ey[i, :ely[i]].tolist())
        print("Greedy Decoding result:", predictions[i].tolist())
    return {"accuracy": k07.exact_match(predictions, ey), "steps": steps, "seconds": seconds,
            "eval_seconds": eval_seconds, "loss": float(np.mean(losses[-100:])) if losses else float("nan"),
            "losses": losses, "layers": layers, "eval": (ex, ey, elx, ely, predictions)}


# --------------------------------------------------------------------------- beam search
def beam_search(next_log_probs, beam_width, max_steps, eos=EOS):
    """Beam search in eager TensorFlow, one ``tf.math.top_k`` per step.

    ``next_log_probs(prefixes)``: a list of K token tuples (GO not included; the first call gets
    ``[()]``) -> float ``[K, V]`` log-probabilities of the next token. A hypothesis' score is the sum
    of its tokens' log-probabilities (keep them float64).

    Each step: the candidates are the finished hypotheses as they are, then every unfinished one
    extended by every token (score + log-prob: a ``[K, V]`` tensor, flattened row by row); keep the
    ``tf.math.top_k(scores, k=min(beam_width, n))`` best (ties: the earlier candidate). A hypothesis
    is finished at its FIRST EOS (EOS included): never extend it, never pass it to
    ``next_log_probs``. Stop when every kept hypothesis is finished or after ``max_steps`` tokens.

    Returns a list of ``(tokens, score)``: ``tokens`` a tuple of ints, ``score`` a float, best first.
    """
    hyps = [()]
    scores = tf.constant([0.0], tf.float64)

    def done(tokens):
        return len(tokens) > 0 and tokens[-1] == eos

    for _ in range(max_steps):
        if all(done(h) for h in hyps):
            break
        fin = [i for i, h in enumerate(hyps) if done(h)]
        unf = [i for i, h in enumerate(hyps) if not done(h)]
        lp = tf.constant(np.asarray(next_log_probs([hyps[i] for i in unf]), np.float64))
        vocab = lp.shape[1]
        ext = tf.gather(scores, tf.constant(unf, tf.int32))[:, None] + lp
        cand_scores = tf.concat([tf.gather(scores, tf.constant(fin, tf.int32)), tf.reshape(ext, [-1])], 0)
        cand_tokens = [hyps[i] for i in fin] + [hyps[i] + (v,) for i in unf for v in range(vocab)]
        n = len(cand_tokens)
        top = tf.math.top_k(cand_scores, k=min(beam_width, n))
        hyps = [cand_tokens[int(i)] for i in top.indices.numpy()]
        scores = top.values
    return [(h, float(s)) for h, s in zip(hyps, scores.numpy())]


def model_next_log_probs(layers, x, len_x):
    """A ``next_log_probs`` for :func:`beam_search` from n07's model or the attention model.

    ``layers``: n07's :class:`n07.Seq2SeqLayers` or :class:`AttentionLayers` (then the decoder is
    :func:`attention_teacher_forced`, the memory repeated K times and the mask all True).

    For ONE input ``x`` (int ``[T]``) of length ``len_x``: encode ``x[:len_x]`` once with
    ``n07.encode`` (batch of 1); for K prefixes of equal length L, repeat each state K times
    (``tf.repeat(s, K, axis=0)``), run ``n07.teacher_forced_logits`` on ``[GO, *prefix]`` (``[K, L + 1]``)
    and return ``tf.nn.log_softmax`` of the LAST step's logits, numpy ``[K, V]``.
    """
    x = np.asarray(x).reshape(-1)[:len_x].astype(np.int32)
    memory, states = n07.encode(layers, tf.constant(x[None]), tf.constant([len_x], tf.int32))

    def next_log_probs(prefixes):
        k = len(prefixes)
        dec = tf.constant(np.array([[GO] + list(p) for p in prefixes], np.int32).reshape(k, -1))
        st = [tuple(tf.repeat(s, k, axis=0) for s in hc) for hc in states]
        if isinstance(layers, AttentionLayers):
            mem = tf.repeat(memory, k, axis=0)
            mask = tf.ones(tf.shape(mem)[:2], tf.bool)
            logits, _ = attention_teacher_forced(layers, mem, mask, dec, st)
        else:
            logits = n07.teacher_forced_logits(layers, dec, st)
        return tf.nn.log_softmax(logits[:, -1, :]).numpy()

    return next_log_probs


# --------------------------------------------------------------------------- the heatmap
def plot_attention(source, output, alignments, filename="attention.png"):
    """Write one alignment matrix as a PNG heatmap into ``output_dir("n08")``; return the path.

    ``source``: T_src tokens (x axis), ``output``: T_out tokens (y axis), ``alignments``: float
    ``[T_out, T_src]`` (row t = where output step t looked). ``ValueError`` when the shape is not
    ``[len(output), len(source)]``. Use ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot),
    ``imshow`` with vmin 0, vmax 1, the tokens as tick labels and a colour bar.
    """
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    alignments = np.asarray(alignments)
    if alignments.shape != (len(output), len(source)):
        raise ValueError("alignments %s is not [%d, %d]" % (alignments.shape, len(output), len(source)))
    fig = Figure(figsize=(6, 6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(alignments, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(source)))
    ax.set_xticklabels([str(int(s)) for s in source])
    ax.set_yticks(range(len(output)))
    ax.set_yticklabels([str(int(o)) for o in output])
    fig.colorbar(im, ax=ax)
    path = output_dir("n08") / filename
    fig.savefig(path)
    return path


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Train k08's attention model the TF 2 way with your n08 functions.")
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    result = train(steps=args.steps)
    print(f"exact match {result['accuracy']:.1%} after {args.steps} steps ({result['seconds']:.1f} s of training)")
    x, y, lx, ly, predictions = result["eval"]
    i = int(np.argmax(ly[:20]))
    n = int(np.flatnonzero(predictions[i] == EOS)[0]) + 1 if EOS in predictions[i] else predictions.shape[1]
    memory, states = n07.encode(result["layers"], tf.constant(x[i : i + 1]), tf.constant(lx[i : i + 1]))
    mask = tf.sequence_mask(lx[i : i + 1], x.shape[1])
    decoder_inputs = tf.constant(np.concatenate([[GO], predictions[i, : n - 1]])[None].astype(np.int32))
    _, alignments = attention_teacher_forced(result["layers"], memory, mask, decoder_inputs, states)
    print("heatmap:", plot_attention(x[i, : lx[i]], predictions[i, :n], alignments[0, :, : lx[i]].numpy()))
