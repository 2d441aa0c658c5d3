# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run k08        (or: pytest tests/test_k08_attention.py)
# Generated from solutions/k08_attention.py by `python -m tfkata.stubs k08`; `kata reset k08` restores it.
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
    return tf.einsum("bh,bth->bt", query, keys)


def masked_softmax(scores, memory_lengths):
    """Softmax over the valid encoder positions only (``memory_sequence_length``).

    ``scores`` float32 ``[B, T_enc]``, ``memory_lengths`` int32 ``[B]``. Positions at or past a
    row's length must get weight exactly 0.0 (not just small), whatever their scores (even huge
    ones), and each row sums to 1.
    Returns the alignments, float32 ``[B, T_enc]``.
    """
    mask = tf.sequence_mask(memory_lengths, tf.shape(scores)[1])
    neg = tf.fill(tf.shape(scores), tf.constant(-np.inf, scores.dtype))
    weights = tf.nn.softmax(tf.where(mask, scores, neg), axis=-1)
    return tf.where(mask, weights, tf.zeros_like(weights))


def context_vector(alignments, memory):
    """The context: the encoder outputs weighted by the alignments and summed over the time axis.

    ``alignments`` float32 ``[B, T_enc]``, ``memory`` float32 ``[B, T_enc, H]``.
    Returns ``c_t = sum_s a_t(s) h_s``, float32 ``[B, H]``.
    """
    return tf.reduce_sum(alignments[:, :, None] * memory, axis=1)


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
            initializer=tf.compat.v1.truncated_normal_initializer(stddev=0.1))
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
    attention = attentional_state(context, output, parts.attention_layer)
    return attention, new_state, alignments


def attention_training_decoder(parts, memory, memory_lengths, decoder_inputs, initial_state):
    """Teacher forcing with attention: a ``tf.while_loop`` of :func:`attention_step` over time.

    ``memory``: the encoder outputs, float32 ``[B, T_enc, H]``; ``decoder_inputs``: int32
    ``[B, T_dec]`` (GO first); ``initial_state``: the encoder's final state. Compute the keys
    ``parts.memory_layer(memory)`` once; at step t feed ``decoder_inputs[:, t]``.

    Returns ``(logits, alignments)``: float32 ``[B, T_dec, V]`` and the alignment history float32
    ``[B, T_dec, T_enc]``.
    """
    keys = parts.memory_layer(memory)
    batch = tf.shape(decoder_inputs)[0]
    steps = tf.shape(decoder_inputs)[1]
    prev = tf.zeros([batch, parts.attention_layer.units], tf.float32)
    logits_ta = tf.TensorArray(tf.float32, size=steps)
    align_ta = tf.TensorArray(tf.float32, size=steps)

    def body(t, state, prev, logits_ta, align_ta):
        att, state, align = attention_step(parts, keys, memory, memory_lengths, decoder_inputs[:, t], state, prev)
        return t + 1, state, att, logits_ta.write(t, parts.output_layer(att)), align_ta.write(t, align)

    _, _, _, logits_ta, align_ta = tf.while_loop(
        lambda t, *_: t < steps, body, [tf.constant(0), initial_state, prev, logits_ta, align_ta])
    logits = tf.transpose(logits_ta.stack(), [1, 0, 2])
    alignments = tf.transpose(align_ta.stack(), [1, 0, 2])
    return logits, alignments


def attention_greedy_decoder(parts, memory, memory_lengths, initial_state, max_steps=MAX_DECODE_STEPS):
    """Greedy decoding with attention, stopping at EOS like ``k07.greedy_decoder``.

    Start from GO, zeros as the previous attentional state, and ``initial_state``; feed back the
    argmax; after EOS a sequence emits PAD; stop when all are finished or after ``max_steps``.

    Returns ``(ids, lengths, alignments)``: int32 ``[B, T_out]``, int32 ``[B]`` (EOS counted) and the
    alignment history float32 ``[B, T_out, T_enc]``.
    """
    keys = parts.memory_layer(memory)
    batch = tf.shape(memory)[0]
    prev = tf.zeros([batch, parts.attention_layer.units], tf.float32)
    tokens = tf.fill([batch], GO)
    finished = tf.zeros([batch], tf.bool)
    lengths = tf.fill([batch], max_steps)
    ids_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    align_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)

    def cond(t, tokens, state, prev, finished, lengths, ids_ta, align_ta):
        return tf.logical_and(t < max_steps, tf.logical_not(tf.reduce_all(finished)))

    def body(t, tokens, state, prev, finished, lengths, ids_ta, align_ta):
        att, state, align = attention_step(parts, keys, memory, memory_lengths, tokens, state, prev)
        nxt = tf.argmax(parts.output_layer(att), axis=-1, output_type=tf.int32)
        nxt = tf.where(finished, tf.fill([batch], PAD), nxt)
        new_eos = tf.logical_and(tf.logical_not(finished), tf.equal(nxt, EOS))
        lengths = tf.where(new_eos, tf.fill([batch], t + 1), lengths)
        finished = tf.logical_or(finished, new_eos)
        return t + 1, nxt, state, att, finished, lengths, ids_ta.write(t, nxt), align_ta.write(t, align)

    _, _, _, _, _, lengths, ids_ta, align_ta = tf.while_loop(
        cond, body, [tf.constant(0), tokens, initial_state, prev, finished, lengths, ids_ta, align_ta])
    ids = tf.transpose(ids_ta.stack(), [1, 0])
    alignments = tf.transpose(align_ta.stack(), [1, 0, 2])
    return ids, lengths, alignments


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
    encoder_inputs = tf.compat.v1.placeholder(tf.int32, [None, None], name="encoder_inputs")
    encoder_lengths = tf.compat.v1.placeholder(tf.int32, [None], name="encoder_lengths")
    decoder_inputs = tf.compat.v1.placeholder(tf.int32, [None, None], name="decoder_inputs")
    decoder_targets = tf.compat.v1.placeholder(tf.int32, [None, None], name="decoder_targets")
    decoder_lengths = tf.compat.v1.placeholder(tf.int32, [None], name="decoder_lengths")
    memory, state = k07.encoder(encoder_inputs, encoder_lengths, vocab_size, embed_size, hidden_units, num_layers)
    parts = attention_parts(vocab_size, embed_size, hidden_units, num_layers)
    logits, train_alignments = attention_training_decoder(parts, memory, encoder_lengths, decoder_inputs, state)
    loss = k07.masked_loss(logits, decoder_targets, decoder_lengths)
    global_step = tf.compat.v1.train.get_or_create_global_step()
    lr = k07.decayed_learning_rate(learning_rate, global_step, halve_every)
    train_op = tf.compat.v1.train.AdamOptimizer(lr).minimize(loss, global_step=global_step)
    ids, _, alignments = attention_greedy_decoder(parts, memory, encoder_lengths, state, max_decode_steps)
    return AttentionSeq2Seq(encoder_inputs=encoder_inputs, encoder_lengths=encoder_lengths,
                            decoder_inputs=decoder_inputs, decoder_targets=decoder_targets,
                            decoder_lengths=decoder_lengths, logits=logits, loss=loss, train_op=train_op,
                            predictions=ids, train_alignments=train_alignments, alignments=alignments)


def train(steps=1000, learning_rate=3e-3, halve_every=300, copy_sequence=True, seed=1234, num_print=3,
          return_session=False, **kwargs):
    """Train the attention model on the copy task with ``k07.train`` (same loop, same dict).

    Pass :func:`build_attention_seq2seq` as ``model_fn``; every other argument goes through.
    """
    return k07.train(steps=steps, learning_rate=learning_rate, halve_every=halve_every,
                     copy_sequence=copy_sequence, seed=seed, num_print=num_print,
                     model_fn=build_attention_seq2seq, return_session=return_session, **kwargs)


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
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    alignments = np.asarray(alignments)
    if alignments.shape != (len(output), len(source)):
        raise ValueError("alignments %s is not [%d, %d]" % (alignments.shape, len(output), len(source)))
    fig = Figure(figsize=(6, 6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(alignments, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(source)))
    ax.set_xticklabels([str(s) for s in source])
    ax.set_yticks(range(len(output)))
    ax.set_yticklabels([str(o) for o in output])
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    fig.savefig(path)
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

    def done(tokens):
        return len(tokens) > 0 and tokens[-1] == eos

    for _ in range(max_steps):
        open_ = [b for b in beams if not done(b[0])]
        if not open_:
            break
        lp = np.asarray(next_log_probs([b[0] for b in open_]))
        cands = [b for b in beams if done(b[0])]
        for (tokens, score), row in zip(open_, lp):
            for v in range(lp.shape[1]):
                cands.append((tokens + (v,), score + float(row[v])))
        cands.sort(key=lambda c: (-c[1], c[0]))
        beams = cands[:beam_width]
    return sorted(beams, key=lambda c: (-c[1], c[0]))


def model_next_log_probs(session, model, x, len_x):
    """A ``next_log_probs`` for :func:`beam_search` from a trained model, for ONE input sequence.

    ``x``: int ``[T_enc]`` (or ``[1, T_enc]``), ``len_x``: its length. For K prefixes of equal length
    L, feed the input K times and the decoder inputs ``[GO, *prefix]`` (``[K, L + 1]``, lengths L + 1)
    to the teacher-forced model; the log-softmax of the logits at the last step is the answer,
    ``[K, V]``. Works for any model with :class:`k07.Seq2Seq`'s fields.
    """
    x = np.asarray(x).reshape(-1)

    def next_log_probs(prefixes):
        k = len(prefixes)
        dec = np.array([[GO] + list(p) for p in prefixes], dtype=np.int32)
        feed = {model.encoder_inputs: np.tile(x[None, :], [k, 1]).astype(np.int32),
                model.encoder_lengths: np.full([k], len_x, np.int32),
                model.decoder_inputs: dec,
                model.decoder_lengths: np.full([k], dec.shape[1], np.int32)}
        last = session.run(model.logits, feed)[:, -1, :].astype(np.float64)
        m = last.max(axis=-1, keepdims=True)
        return last - m - np.log(np.exp(last - m).sum(axis=-1, keepdims=True))

    return next_log_probs
