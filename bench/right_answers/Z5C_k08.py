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
    return tf.squeeze(tf.matmul(keys, tf.expand_dims(query, -1)), -1)


def masked_softmax(scores, memory_lengths):
    """Softmax over the valid encoder positions only (``memory_sequence_length``).

    ``scores`` float32 ``[B, T_enc]``, ``memory_lengths`` int32 ``[B]``. Positions at or past a
    row's length must get weight exactly 0.0 (not just small), whatever their scores (even huge
    ones), and each row sums to 1.
    Returns the alignments, float32 ``[B, T_enc]``.
    """
    mask = tf.sequence_mask(memory_lengths, tf.shape(scores)[1])
    neg = tf.fill(tf.shape(scores), tf.constant(-np.inf, scores.dtype))
    masked = tf.where(mask, scores, neg)
    m = tf.reduce_max(masked, axis=1, keepdims=True)
    e = tf.where(mask, tf.exp(masked - m), tf.zeros_like(scores))
    return e / tf.reduce_sum(e, axis=1, keepdims=True)


def context_vector(alignments, memory):
    """The context: the encoder outputs weighted by the alignments and summed over the time axis.

    ``alignments`` float32 ``[B, T_enc]``, ``memory`` float32 ``[B, T_enc, H]``.
    Returns ``c_t = sum_s a_t(s) h_s``, float32 ``[B, H]``.
    """
    return tf.reduce_sum(tf.expand_dims(alignments, -1) * memory, axis=1)


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
        emb = tf.compat.v1.get_variable("embedding", [vocab_size, embed_size],
                                        initializer=tf.compat.v1.truncated_normal_initializer(stddev=0.1))
        cell = k07.make_cell(hidden_units, num_layers)
        mem = tf.compat.v1.layers.Dense(hidden_units, use_bias=False, name="memory_layer")
        att = tf.compat.v1.layers.Dense(hidden_units, use_bias=False, name="attention_layer")
        out = tf.compat.v1.layers.Dense(vocab_size, name="output_layer")
    return AttentionParts(emb, cell, mem, att, out)


def attention_step(parts, keys, memory, memory_lengths, token_ids, state, prev_attention):
    """One decoder step with input feeding (AttentionWrapper(output_attention=True)'s step).

    Embed ``token_ids`` (int32 ``[B]``) and concatenate the previous attentional state
    ``prev_attention`` (float32 ``[B, H_att]``, zeros at the first step): that is the cell's input.
    Run ``parts.cell`` once from ``state``; score its output against ``keys``, mask with
    ``memory_lengths``, build the context from ``memory`` and the new attentional state.

    Returns ``(attention, new_state, alignments)``: float32 ``[B, H_att]``, the cell's state, and
    float32 ``[B, T_enc]``. The logits of the step are ``parts.output_layer(attention)``.
    """
    x = tf.concat([tf.nn.embedding_lookup(parts.embedding, token_ids), prev_attention], axis=-1)
    with tf.compat.v1.variable_scope("decoder", reuse=tf.compat.v1.AUTO_REUSE):
        out, new_state = parts.cell(x, state)
    scores = luong_scores(out, keys)
    align = masked_softmax(scores, memory_lengths)
    ctx = context_vector(align, memory)
    att = attentional_state(ctx, out, parts.attention_layer)
    return att, new_state, align


def attention_training_decoder(parts, memory, memory_lengths, decoder_inputs, initial_state):
    """Teacher forcing with attention: a ``tf.while_loop`` of :func:`attention_step` over time.

    ``memory``: the encoder outputs, float32 ``[B, T_enc, H]``; ``decoder_inputs``: int32
    ``[B, T_dec]`` (GO first); ``initial_state``: the encoder's final state. Compute the keys
    ``parts.memory_layer(memory)`` once; at step t feed ``decoder_inputs[:, t]``.

    Returns ``(logits, alignments)``: float32 ``[B, T_dec, V]`` and the alignment history float32
    ``[B, T_dec, T_enc]``.
    """
    keys = parts.memory_layer(memory)
    B = tf.shape(decoder_inputs)[0]
    T = tf.shape(decoder_inputs)[1]
    H = parts.attention_layer.units
    prev0 = tf.zeros([B, H], tf.float32)
    logits_ta = tf.TensorArray(tf.float32, size=T)
    align_ta = tf.TensorArray(tf.float32, size=T)

    def cond(t, state, prev, lta, ata):
        return t < T

    def body(t, state, prev, lta, ata):
        att, new_state, align = attention_step(parts, keys, memory, memory_lengths, decoder_inputs[:, t],
                                               state, prev)
        lta = lta.write(t, parts.output_layer(att))
        ata = ata.write(t, align)
        return t + 1, new_state, att, lta, ata

    _, _, _, lta, ata = tf.while_loop(cond, body, [tf.constant(0), initial_state, prev0, logits_ta, align_ta])
    return tf.transpose(lta.stack(), [1, 0, 2]), tf.transpose(ata.stack(), [1, 0, 2])


def attention_greedy_decoder(parts, memory, memory_lengths, initial_state, max_steps=MAX_DECODE_STEPS):
    """Greedy decoding with attention, stopping at EOS like ``k07.greedy_decoder``.

    Start from GO, zeros as the previous attentional state, and ``initial_state``; feed back the
    argmax; after EOS a sequence emits PAD; stop when all are finished or after ``max_steps``.

    Returns ``(ids, lengths, alignments)``: int32 ``[B, T_out]``, int32 ``[B]`` (EOS counted) and the
    alignment history float32 ``[B, T_out, T_enc]``.
    """
    keys = parts.memory_layer(memory)
    B = tf.shape(memory)[0]
    H = parts.attention_layer.units
    tokens0 = tf.fill([B], GO)
    prev0 = tf.zeros([B, H], tf.float32)
    finished0 = tf.zeros([B], tf.bool)
    lengths0 = tf.fill([B], max_steps)
    ids_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    al_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)

    def cond(t, tokens, state, prev, finished, lengths, ita, ata):
        return tf.logical_and(t < max_steps, tf.logical_not(tf.reduce_all(finished)))

    def body(t, tokens, state, prev, finished, lengths, ita, ata):
        att, new_state, align = attention_step(parts, keys, memory, memory_lengths, tokens, state, prev)
        nxt = tf.cast(tf.argmax(parts.output_layer(att), axis=-1), tf.int32)
        nxt = tf.where(finished, tf.zeros_like(nxt) + PAD, nxt)
        new_eos = tf.logical_and(tf.logical_not(finished), tf.equal(nxt, EOS))
        lengths = tf.where(new_eos, tf.zeros_like(lengths) + t + 1, lengths)
        finished = tf.logical_or(finished, new_eos)
        return t + 1, nxt, new_state, att, finished, lengths, ita.write(t, nxt), ata.write(t, align)

    out = tf.while_loop(cond, body, [tf.constant(0), tokens0, initial_state, prev0, finished0, lengths0,
                                     ids_ta, al_ta])
    lengths, ita, ata = out[5], out[6], out[7]
    return tf.transpose(ita.stack(), [1, 0]), lengths, tf.transpose(ata.stack(), [1, 0, 2])


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
    v1 = tf.compat.v1
    enc_in = v1.placeholder(tf.int32, [None, None], name="encoder_inputs")
    enc_len = v1.placeholder(tf.int32, [None], name="encoder_lengths")
    dec_in = v1.placeholder(tf.int32, [None, None], name="decoder_inputs")
    dec_tgt = v1.placeholder(tf.int32, [None, None], name="decoder_targets")
    dec_len = v1.placeholder(tf.int32, [None], name="decoder_lengths")
    memory, state = k07.encoder(enc_in, enc_len, vocab_size, embed_size, hidden_units, num_layers)
    parts = attention_parts(vocab_size, embed_size, hidden_units, num_layers)
    logits, train_al = attention_training_decoder(parts, memory, enc_len, dec_in, state)
    loss = k07.masked_loss(logits, dec_tgt, dec_len)
    gs = v1.train.get_or_create_global_step()
    lr = k07.decayed_learning_rate(learning_rate, gs, halve_every)
    train_op = v1.train.AdamOptimizer(lr).minimize(loss, global_step=gs)
    ids, _, al = attention_greedy_decoder(parts, memory, enc_len, state, max_decode_steps)
    return AttentionSeq2Seq(enc_in, enc_len, dec_in, dec_tgt, dec_len, logits, loss, train_op, ids,
                            train_al, al)


def train(steps=1000, learning_rate=3e-3, halve_every=300, copy_sequence=True, seed=1234, num_print=3,
          return_session=False, **kwargs):
    """Train the attention model on the copy task with ``k07.train`` (same loop, same dict).

    Pass :func:`build_attention_seq2seq` as ``model_fn``; every other argument goes through.
    """
    return k07.train(steps=steps, learning_rate=learning_rate, halve_every=halve_every,
                     copy_sequence=copy_sequence, seed=seed, num_print=num_print,
                     return_session=return_session, model_fn=build_attention_seq2seq, **kwargs)


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
    a = np.asarray(alignments)
    if a.ndim != 2 or a.shape != (len(output), len(source)):
        raise ValueError("alignments must be [len(output), len(source)], got %s" % (a.shape,))
    fig = Figure(figsize=(max(4, len(source) * 0.5), max(3, len(output) * 0.5)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(a, cmap="viridis", aspect="auto")
    fig.colorbar(im, ax=ax)
    ax.set_xticks(range(len(source)))
    ax.set_xticklabels([str(s) for s in source])
    ax.set_yticks(range(len(output)))
    ax.set_yticklabels([str(o) for o in output])
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
    beams = [((), 0.0, False)]
    for _ in range(max_steps):
        if all(f for _, _, f in beams):
            break
        live = [b for b in beams if not b[2]]
        lp = np.asarray(next_log_probs([b[0] for b in live]))
        cands = [b for b in beams if b[2]]
        for i, (toks, sc, _) in enumerate(live):
            for v in range(lp.shape[1]):
                cands.append((toks + (int(v),), sc + float(lp[i, v]), v == eos))
        cands.sort(key=lambda c: (-c[1], c[0]))
        beams = cands[:beam_width]
    return [(toks, sc) for toks, sc, _ in beams]


def model_next_log_probs(session, model, x, len_x):
    """A ``next_log_probs`` for :func:`beam_search` from a trained model, for ONE input sequence.

    ``x``: int ``[T_enc]`` (or ``[1, T_enc]``), ``len_x``: its length. For K prefixes of equal length
    L, feed the input K times and the decoder inputs ``[GO, *prefix]`` (``[K, L + 1]``, lengths L + 1)
    to the teacher-forced model; the log-softmax of the logits at the last step is the answer,
    ``[K, V]``. Works for any model with :class:`k07.Seq2Seq`'s fields.
    """
    x = np.asarray(x).reshape(-1)
    def fn(prefixes):
        K = len(prefixes)
        L = len(prefixes[0])
        dec = np.array([[GO] + list(p) for p in prefixes], dtype=np.int32).reshape(K, L + 1)
        feed = {model.encoder_inputs: np.tile(x[None, :], (K, 1)).astype(np.int32),
                model.encoder_lengths: np.full([K], int(len_x), np.int32),
                model.decoder_inputs: dec,
                model.decoder_lengths: np.full([K], L + 1, np.int32)}
        logits = session.run(model.logits, feed)
        last = logits[:, -1, :].astype(np.float64)
        m = last.max(axis=1, keepdims=True)
        return last - m - np.log(np.exp(last - m).sum(axis=1, keepdims=True))
    return fn
