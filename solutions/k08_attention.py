"""k08 · Attention and beam search (seq2seq 进阶：attention 与 beam search).

The tutorial's advanced seq2seq (``src/att_seq2seq_delete_and_copy.py``): delete the odd numbers,
then write the even ones *twice*. The plain encoder–decoder of k07 has to squeeze the whole input
into its final state and struggles; with attention the decoder looks back at every encoder output
at every step, and learns to walk over the evens once, then jump back and walk again (the
tutorial's heatmaps at steps 100, 600, 1.1k, 2.3k show that "go twice" pattern appear).

In 2018 this was ``tf.contrib.seq2seq.LuongAttention`` + ``AttentionWrapper(output_attention=True)``
+ ``BeamSearchDecoder``. None of that exists on today's TensorFlow (and tensorflow-addons is end of
life), so you write Luong attention (Luong et al. 2015, the "general" score), the attention decoder
and beam search by hand. The tutorial warns that TF's BeamSearchDecoder sometimes ran on past the
first EOS; yours stops there.

Reuses k07: data, decoder shift, encoder, masked loss, exact match and the training loop
(``k07.train(model_fn=...)``). Graph mode (``tf.compat.v1``); cells need ``tf_keras`` on TF >= 2.16.
"""
import collections

import numpy as np
import tensorflow as tf

from . import k07_seq2seq as k07

VOCAB_SIZE, EMBED_SIZE, HIDDEN_UNITS, NUM_LAYERS = k07.VOCAB_SIZE, k07.EMBED_SIZE, k07.HIDDEN_UNITS, k07.NUM_LAYERS
PAD = EOS = GO = k07.EOS
MAX_DECODE_STEPS = k07.MAX_DECODE_STEPS

# What the attention decoders share (created once, used by training and inference):
#   embedding       [V, E] decoder embedding matrix
#   cell            the decoder's MultiRNNCell; its input is [embedding ; previous attentional state]
#   memory_layer    W of the "general" score, a bias-free Dense(H) applied to the encoder outputs
#   attention_layer W_c, a bias-free Dense(H) applied to [context ; decoder output]
#   output_layer    Dense(V) applied to the attentional state
AttentionParts = collections.namedtuple(
    "AttentionParts", ["embedding", "cell", "memory_layer", "attention_layer", "output_layer"]
)

# k07's Seq2Seq fields (so k07.train can drive it) plus the alignment histories.
AttentionSeq2Seq = collections.namedtuple(
    "AttentionSeq2Seq",
    k07.Seq2Seq._fields
    + (
        "train_alignments",  # float32 [B, T_dec, T_enc], teacher forcing
        "alignments",  # float32 [B, T_out, T_enc], greedy decoding (matches predictions)
    ),
)


# --------------------------------------------------------------------------- Luong attention
def luong_scores(query, keys):
    """Luong's "general" score of one decoder state against every encoder position.

    ``score(h_t, h_s) = h_t · W h_s``. ``keys`` are the encoder outputs already multiplied by W
    (``parts.memory_layer(memory)``, computed once per batch), float32 ``[B, T_enc, H]``; ``query``
    is the decoder's output ``h_t``, float32 ``[B, H]``. Returns float32 ``[B, T_enc]``.
    """
    return tf.squeeze(tf.matmul(keys, tf.expand_dims(query, -1)), -1)


def masked_softmax(scores, memory_lengths):
    """Softmax over the valid encoder positions only (``memory_sequence_length``).

    ``scores`` float32 ``[B, T_enc]``, ``memory_lengths`` int32 ``[B]``. Positions at or past a
    row's length must get weight exactly 0.0 (not just small), whatever their scores (even huge
    ones), and each row sums to 1.
    Returns the alignments, float32 ``[B, T_enc]``.
    """
    mask = tf.sequence_mask(memory_lengths, maxlen=tf.shape(scores)[1])
    scores = tf.where(mask, scores, tf.fill(tf.shape(scores), -np.inf))
    return tf.nn.softmax(scores, axis=-1)


def context_vector(alignments, memory):
    """The context: the encoder outputs weighted by the alignments and summed over the time axis.

    ``alignments`` float32 ``[B, T_enc]``, ``memory`` float32 ``[B, T_enc, H]``.
    Returns ``c_t = sum_s a_t(s) h_s``, float32 ``[B, H]``.
    """
    return tf.squeeze(tf.matmul(tf.expand_dims(alignments, 1), memory), 1)


def attentional_state(context, query, attention_layer):
    """Luong's attentional hidden state ``h~_t = tanh(W_c [c_t ; h_t])``.

    ``context`` and ``query`` float32 ``[B, H]``; ``attention_layer`` is the bias-free dense layer
    W_c. Concatenate context first, then the decoder output. Returns float32 ``[B, H_att]``.
    """
    return tf.tanh(attention_layer(tf.concat([context, query], axis=-1)))


# --------------------------------------------------------------------------- the attention decoder
def attention_parts(vocab_size=VOCAB_SIZE, embed_size=EMBED_SIZE, hidden_units=HIDDEN_UNITS,
                    num_layers=NUM_LAYERS):
    """Create the :class:`AttentionParts` under ``tf.compat.v1.variable_scope("decoder")``.

    Embedding ``[vocab_size, embed_size]`` (truncated normal, stddev 0.1), ``k07.make_cell``,
    ``Dense(hidden_units, use_bias=False)`` for the memory layer and for the attention layer (no
    activation: :func:`attentional_state` applies the tanh), ``Dense(vocab_size)`` for the output.
    """
    with tf.compat.v1.variable_scope("decoder"):
        embedding = tf.compat.v1.get_variable(
            "embedding", [vocab_size, embed_size],
            initializer=tf.compat.v1.truncated_normal_initializer(stddev=0.1),
        )
        cell = k07.make_cell(hidden_units, num_layers)
        memory_layer = tf.compat.v1.layers.Dense(hidden_units, use_bias=False, name="memory_layer")
        attention_layer = tf.compat.v1.layers.Dense(hidden_units, use_bias=False, name="attention_layer")
        output_layer = tf.compat.v1.layers.Dense(vocab_size, name="output_layer")
    return AttentionParts(embedding, cell, memory_layer, attention_layer, output_layer)


def attention_step(parts, keys, memory, memory_lengths, token_ids, state, prev_attention):
    """One decoder step with input feeding (AttentionWrapper(output_attention=True)'s step).

    Embed ``token_ids`` (int32 ``[B]``) and concatenate the previous attentional state
    ``prev_attention`` (float32 ``[B, H_att]``, zeros at the first step): that is the cell's input.
    Run ``parts.cell`` once from ``state``; score its output against ``keys``, mask with
    ``memory_lengths``, build the context from ``memory`` and the new attentional state.

    Returns ``(attention, new_state, alignments)``: float32 ``[B, H_att]``, the cell's state, and
    float32 ``[B, T_enc]``. The logits of the step are ``parts.output_layer(attention)``.
    """
    inputs = tf.concat([tf.nn.embedding_lookup(parts.embedding, token_ids), prev_attention], axis=-1)
    output, new_state = parts.cell(inputs, state)
    alignments = masked_softmax(luong_scores(output, keys), memory_lengths)
    context = context_vector(alignments, memory)
    return attentional_state(context, output, parts.attention_layer), new_state, alignments


def _zero_attention(parts, memory):
    return tf.zeros([tf.shape(memory)[0], parts.attention_layer.units])


def attention_training_decoder(parts, memory, memory_lengths, decoder_inputs, initial_state):
    """Teacher forcing with attention: a ``tf.while_loop`` of :func:`attention_step` over time.

    ``memory``: the encoder outputs, float32 ``[B, T_enc, H]``; ``decoder_inputs``: int32
    ``[B, T_dec]`` (GO first); ``initial_state``: the encoder's final state. Compute the keys
    ``parts.memory_layer(memory)`` once; at step t feed ``decoder_inputs[:, t]``.

    Returns ``(logits, alignments)``: float32 ``[B, T_dec, V]`` and the alignment history float32
    ``[B, T_dec, T_enc]``.
    """
    keys = parts.memory_layer(memory)
    steps = tf.shape(decoder_inputs)[1]
    inputs_tm = tf.transpose(decoder_inputs)  # [T_dec, B]

    def body(t, state, prev_attention, logits_ta, align_ta):
        attention, state, alignments = attention_step(
            parts, keys, memory, memory_lengths, inputs_tm[t], state, prev_attention
        )
        logits_ta = logits_ta.write(t, parts.output_layer(attention))
        return t + 1, state, attention, logits_ta, align_ta.write(t, alignments)

    loop_vars = (
        tf.constant(0),
        initial_state,
        _zero_attention(parts, memory),
        tf.TensorArray(tf.float32, size=steps),
        tf.TensorArray(tf.float32, size=steps),
    )
    _, _, _, logits_ta, align_ta = tf.while_loop(lambda t, *_: t < steps, body, loop_vars)
    return tf.transpose(logits_ta.stack(), [1, 0, 2]), tf.transpose(align_ta.stack(), [1, 0, 2])


def attention_greedy_decoder(parts, memory, memory_lengths, initial_state, max_steps=MAX_DECODE_STEPS):
    """Greedy decoding with attention, stopping at EOS like ``k07.greedy_decoder``.

    Start from GO, zeros as the previous attentional state, and ``initial_state``; feed back the
    argmax; after EOS a sequence emits PAD; stop when all are finished or after ``max_steps``.

    Returns ``(ids, lengths, alignments)``: int32 ``[B, T_out]``, int32 ``[B]`` (EOS counted) and the
    alignment history float32 ``[B, T_out, T_enc]``.
    """
    keys = parts.memory_layer(memory)
    batch_size = tf.shape(memory)[0]
    start = tf.fill([batch_size], GO)

    def cond(t, prev, state, prev_attention, finished, lengths, ids_ta, align_ta):
        return tf.logical_and(t < max_steps, tf.logical_not(tf.reduce_all(finished)))

    def body(t, prev, state, prev_attention, finished, lengths, ids_ta, align_ta):
        attention, state, alignments = attention_step(parts, keys, memory, memory_lengths, prev, state, prev_attention)
        ids = tf.argmax(parts.output_layer(attention), axis=-1, output_type=tf.int32)
        ids = tf.where(finished, tf.zeros_like(ids) + PAD, ids)
        lengths = tf.where(finished, lengths, tf.zeros_like(lengths) + t + 1)
        finished = tf.logical_or(finished, tf.equal(ids, EOS))
        return (t + 1, ids, state, attention, finished, lengths, ids_ta.write(t, ids),
                align_ta.write(t, alignments))

    loop_vars = (
        tf.constant(0),
        start,
        initial_state,
        _zero_attention(parts, memory),
        tf.zeros_like(start, dtype=tf.bool),
        tf.zeros_like(start),
        tf.TensorArray(tf.int32, size=0, dynamic_size=True),
        tf.TensorArray(tf.float32, size=0, dynamic_size=True),
    )
    out = tf.while_loop(cond, body, loop_vars)
    lengths, ids_ta, align_ta = out[5], out[6], out[7]
    return tf.transpose(ids_ta.stack()), lengths, tf.transpose(align_ta.stack(), [1, 0, 2])


def build_attention_seq2seq(learning_rate=3e-3, halve_every=300, max_decode_steps=MAX_DECODE_STEPS,
                            vocab_size=VOCAB_SIZE, embed_size=EMBED_SIZE, hidden_units=HIDDEN_UNITS,
                            num_layers=NUM_LAYERS):
    """k07's model with attention, as an :class:`AttentionSeq2Seq` (``k07.train`` can drive it).

    The same five placeholders as ``k07.build_seq2seq``; ``k07.encoder`` (its outputs are the
    memory, its final state starts the decoder); :func:`attention_parts`; the
    :func:`attention_training_decoder` and ``k07.masked_loss``; Adam with
    ``k07.decayed_learning_rate(learning_rate, global_step, halve_every)`` (the global step from
    ``tf.compat.v1.train.get_or_create_global_step()``, incremented by ``minimize``); the
    :func:`attention_greedy_decoder` with the same parts.
    """
    enc_in = tf.compat.v1.placeholder(tf.int32, [None, None], name="encoder_inputs")
    enc_len = tf.compat.v1.placeholder(tf.int32, [None], name="encoder_lengths")
    dec_in = tf.compat.v1.placeholder(tf.int32, [None, None], name="decoder_inputs")
    dec_out = tf.compat.v1.placeholder(tf.int32, [None, None], name="decoder_targets")
    dec_len = tf.compat.v1.placeholder(tf.int32, [None], name="decoder_lengths")
    memory, state = k07.encoder(enc_in, enc_len, vocab_size, embed_size, hidden_units, num_layers)
    parts = attention_parts(vocab_size, embed_size, hidden_units, num_layers)
    logits, train_alignments = attention_training_decoder(parts, memory, enc_len, dec_in, state)
    loss = k07.masked_loss(logits, dec_out, dec_len)
    step = tf.compat.v1.train.get_or_create_global_step()
    rate = k07.decayed_learning_rate(learning_rate, step, halve_every)
    train_op = tf.compat.v1.train.AdamOptimizer(rate).minimize(loss, global_step=step)
    predictions, _, alignments = attention_greedy_decoder(parts, memory, enc_len, state, max_decode_steps)
    return AttentionSeq2Seq(enc_in, enc_len, dec_in, dec_out, dec_len, logits, loss, train_op, predictions,
                            train_alignments, alignments)


def train(steps=1000, learning_rate=3e-3, halve_every=300, copy_sequence=True, seed=1234, num_print=3,
          return_session=False, **kwargs):
    """Train the attention model on the copy task with ``k07.train`` (same loop, same dict).

    Pass :func:`build_attention_seq2seq` as ``model_fn``; every other argument goes through.
    """
    return k07.train(steps=steps, learning_rate=learning_rate, halve_every=halve_every,
                     copy_sequence=copy_sequence, seed=seed,
                     num_print=num_print, model_fn=build_attention_seq2seq, return_session=return_session,
                     **kwargs)


# --------------------------------------------------------------------------- the heatmap
def plot_attention(source, output, alignments, path, title="Attention heatmap"):
    """Write one alignment matrix as a PNG heatmap (the tutorial's plot_attention_matrix).

    ``source``: the T_src input tokens, ``output``: the T_out decoded tokens (EOS included),
    ``alignments``: float ``[T_out, T_src]`` (row t = where output step t looked). Source tokens
    label the x axis, output tokens the y axis, one cell per weight, with a colour bar. Use
    matplotlib without pyplot (``matplotlib.figure.Figure`` + the Agg canvas) so no window or global
    backend is touched. The plot's title is ``title`` (``ax.set_title``). Raise ``ValueError`` when
    ``alignments`` is not ``[len(output), len(source)]``. Returns ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    alignments = np.asarray(alignments, dtype=np.float64)
    source, output = [str(int(s)) for s in source], [str(int(o)) for o in output]
    if alignments.shape != (len(output), len(source)):
        raise ValueError(f"alignments should be [T_out, T_src] = [{len(output)}, {len(source)}], got {list(alignments.shape)}")
    fig = Figure(figsize=(0.35 * len(source) + 2.0, 0.35 * len(output) + 1.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(alignments, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)))
    ax.set_xticklabels(source)
    ax.set_yticks(range(len(output)))
    ax.set_yticklabels(output)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    ax.set_title(title)
    fig.colorbar(image, ax=ax)
    fig.savefig(path, format="png", bbox_inches="tight")
    return path


# --------------------------------------------------------------------------- beam search
def beam_search(next_log_probs, beam_width, max_steps, eos=EOS):
    """Beam search over a next-token model (slide: beam search).

    ``next_log_probs(prefixes)`` takes a list of K token tuples (the tokens generated so far, GO not
    included, the first call gets ``[()]``) and returns float ``[K, V]`` log-probabilities of the next
    token. A hypothesis' score is the sum of its tokens' log-probabilities.

    Keep at most ``beam_width`` hypotheses. Each step, expand every unfinished one by every token;
    finished ones stay as they are; keep the ``beam_width`` best (ties: the smaller token sequence
    first). A hypothesis is finished at its FIRST EOS (EOS included, never extended; never pass a
    finished prefix to ``next_log_probs``). Stop when all kept hypotheses are finished or after
    ``max_steps`` tokens.

    Returns a list of ``(tokens, score)`` pairs, ``tokens`` a tuple of ints, best score first.
    """
    beams = [((), 0.0)]
    for _ in range(max_steps):
        alive = [b for b in beams if not (b[0] and b[0][-1] == eos)]
        if not alive:
            break
        candidates = [b for b in beams if b[0] and b[0][-1] == eos]
        logp = np.asarray(next_log_probs([tokens for tokens, _ in alive]), dtype=np.float64)
        for (tokens, score), row in zip(alive, logp):
            candidates += [(tokens + (tok,), score + float(lp)) for tok, lp in enumerate(row)]
        candidates.sort(key=lambda c: (-c[1], c[0]))
        beams = candidates[:beam_width]
    return sorted(beams, key=lambda c: (-c[1], c[0]))


def model_next_log_probs(session, model, x, len_x):
    """A ``next_log_probs`` for :func:`beam_search` from a trained model, for ONE input sequence.

    ``x``: int ``[T_enc]`` (or ``[1, T_enc]``), ``len_x``: its length. For K prefixes of equal length
    L, feed the input K times and the decoder inputs ``[GO, *prefix]`` (``[K, L + 1]``, lengths L + 1)
    to the teacher-forced model; the log-softmax of the logits at the last step is the answer,
    ``[K, V]``. Works for any model with :class:`k07.Seq2Seq`'s fields.
    """
    x = np.asarray(x, dtype=np.int32).reshape(-1)[: int(np.asarray(len_x).reshape(-1)[0])]

    def next_log_probs(prefixes):
        k = len(prefixes)
        dec_in = np.array([[GO, *p] for p in prefixes], dtype=np.int32).reshape(k, -1)
        feed = {
            model.encoder_inputs: np.tile(x, (k, 1)),
            model.encoder_lengths: np.full([k], len(x), dtype=np.int32),
            model.decoder_inputs: dec_in,
            model.decoder_lengths: np.full([k], dec_in.shape[1], dtype=np.int32),
        }
        logits = session.run(model.logits, feed)[:, -1]
        logits = logits - logits.max(-1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(-1, keepdims=True))

    return next_log_probs
