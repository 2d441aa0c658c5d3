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
    raise NotImplementedError("k08: luong_scores")


def masked_softmax(scores, memory_lengths):
    """Softmax over the valid encoder positions only (``memory_sequence_length``).

    ``scores`` float32 ``[B, T_enc]``, ``memory_lengths`` int32 ``[B]``. Positions at or past a
    row's length must get weight exactly 0.0 (not just small), whatever their scores (even huge
    ones), and each row sums to 1.
    Returns the alignments, float32 ``[B, T_enc]``.
    """
    raise NotImplementedError("k08: masked_softmax")


def context_vector(alignments, memory):
    """The context: the encoder outputs weighted by the alignments and summed over the time axis.

    ``alignments`` float32 ``[B, T_enc]``, ``memory`` float32 ``[B, T_enc, H]``.
    Returns ``c_t = sum_s a_t(s) h_s``, float32 ``[B, H]``.
    """
    raise NotImplementedError("k08: context_vector")


def attentional_state(context, query, attention_layer):
    """Luong's attentional hidden state ``h~_t = tanh(W_c [c_t ; h_t])``.

    ``context`` and ``query`` float32 ``[B, H]``; ``attention_layer`` is the bias-free dense layer
    W_c. Concatenate context first, then the decoder output. Returns float32 ``[B, H_att]``.
    """
    raise NotImplementedError("k08: attentional_state")


# --------------------------------------------------------------------------- the attention decoder
def attention_parts(vocab_size=VOCAB_SIZE, embed_size=EMBED_SIZE, hidden_units=HIDDEN_UNITS,
                    num_layers=NUM_LAYERS):
    """Create the :class:`AttentionParts` under ``tf.compat.v1.variable_scope("decoder")``.

    Embedding ``[vocab_size, embed_size]`` (truncated normal, stddev 0.1), ``k07.make_cell``,
    ``Dense(hidden_units, use_bias=False)`` for the memory layer and for the attention layer (no
    activation: :func:`attentional_state` applies the tanh), ``Dense(vocab_size)`` for the output.
    """
    raise NotImplementedError("k08: attention_parts")


def attention_step(parts, keys, memory, memory_lengths, token_ids, state, prev_attention):
    """One decoder step with input feeding (AttentionWrapper(output_attention=True)'s step).

    Embed ``token_ids`` (int32 ``[B]``) and concatenate the previous attentional state
    ``prev_attention`` (float32 ``[B, H_att]``, zeros at the first step): that is the cell's input.
    Run ``parts.cell`` once from ``state``; score its output against ``keys``, mask with
    ``memory_lengths``, build the context from ``memory`` and the new attentional state.

    Returns ``(attention, new_state, alignments)``: float32 ``[B, H_att]``, the cell's state, and
    float32 ``[B, T_enc]``. The logits of the step are ``parts.output_layer(attention)``.
    """
    raise NotImplementedError("k08: attention_step")


def attention_training_decoder(parts, memory, memory_lengths, decoder_inputs, initial_state):
    """Teacher forcing with attention: a ``tf.while_loop`` of :func:`attention_step` over time.

    ``memory``: the encoder outputs, float32 ``[B, T_enc, H]``; ``decoder_inputs``: int32
    ``[B, T_dec]`` (GO first); ``initial_state``: the encoder's final state. Compute the keys
    ``parts.memory_layer(memory)`` once; at step t feed ``decoder_inputs[:, t]``.

    Returns ``(logits, alignments)``: float32 ``[B, T_dec, V]`` and the alignment history float32
    ``[B, T_dec, T_enc]``.
    """
    raise NotImplementedError("k08: attention_training_decoder")


def attention_greedy_decoder(parts, memory, memory_lengths, initial_state, max_steps=MAX_DECODE_STEPS):
    """Greedy decoding with attention, stopping at EOS like ``k07.greedy_decoder``.

    Start from GO, zeros as the previous attentional state, and ``initial_state``; feed back the
    argmax; after EOS a sequence emits PAD; stop when all are finished or after ``max_steps``.

    Returns ``(ids, lengths, alignments)``: int32 ``[B, T_out]``, int32 ``[B]`` (EOS counted) and the
    alignment history float32 ``[B, T_out, T_enc]``.
    """
    raise NotImplementedError("k08: attention_greedy_decoder")


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
    raise NotImplementedError("k08: build_attention_seq2seq")


def train(steps=1000, learning_rate=3e-3, halve_every=300, copy_sequence=True, seed=1234, num_print=3,
          return_session=False, **kwargs):
    """Train the attention model on the copy task with ``k07.train`` (same loop, same dict).

    Pass :func:`build_attention_seq2seq` as ``model_fn``; every other argument goes through.
    """
    raise NotImplementedError("k08: train")


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
    raise NotImplementedError("k08: plot_attention")


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
    raise NotImplementedError("k08: beam_search")


def model_next_log_probs(session, model, x, len_x):
    """A ``next_log_probs`` for :func:`beam_search` from a trained model, for ONE input sequence.

    ``x``: int ``[T_enc]`` (or ``[1, T_enc]``), ``len_x``: its length. For K prefixes of equal length
    L, feed the input K times and the decoder inputs ``[GO, *prefix]`` (``[K, L + 1]``, lengths L + 1)
    to the teacher-forced model; the log-softmax of the logits at the last step is the answer,
    ``[K, V]``. Works for any model with :class:`k07.Seq2Seq`'s fields.
    """
    raise NotImplementedError("k08: model_next_log_probs")
