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

Reuses n07 (:func:`model_next_log_probs` runs its encoder and teacher-forced decoder). No graded
training run here: k08's budget (1000 steps of an attention decoder with input feeding) does not
fit this kata's time on the shared 2-core box, so n08 is graded on unit tests, the equivalence
with k08's attention and keras.layers.Attention, and beam search against n07's greedy decoder.

Keras 2 and Keras 3 (measured on TF 2.12 and 2.21): ``keras.layers.Attention`` masks the value
positions by subtracting 1e9 from their scores on both, so padded weights come out exactly 0.0
in float32 (exp underflows), as with -inf; both take ``mask=[query_mask, value_mask]`` and
``return_attention_scores=True``.
"""
import keras
import numpy as np
import tensorflow as tf

from tfkata.paths import output_dir

from . import n07_keras_seq2seq as n07

PAD = EOS = GO = n07.EOS


# --------------------------------------------------------------------------- Luong attention
def general_scores(query, keys):
    """Luong's "general" score ``score(h_t, h_s) = h_t · W h_s`` for every encoder position.

    ``keys``: the memory already multiplied by W, float32 ``[B, T, H]``; ``query`` float32 ``[B, H]``.
    Returns float32 ``[B, T]``: ``scores[b, s] = query[b] · keys[b, s]``.
    """
    raise NotImplementedError("n08: general_scores")


def masked_softmax(scores, mask):
    """Softmax over the real positions only.

    ``scores`` float32 ``[B, T]``, ``mask`` bool ``[B, T]`` (True = real). A padded position gets
    weight exactly 0.0 whatever its score, and each row sums to 1. Returns float32 ``[B, T]``.
    """
    raise NotImplementedError("n08: masked_softmax")


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
        raise NotImplementedError("n08: LuongAttention.__init__")

    def call(self, query, memory, mask):
        raise NotImplementedError("n08: LuongAttention.call")


def keras_attention(query, memory, keys, mask):
    """The same alignments and context from ``keras.layers.Attention`` (a dot score).

    ``keras.layers.Attention()`` scores ``query · key`` and averages the VALUES. Call it on
    ``[query[:, None, :], memory, keys]`` (query ``[B, 1, H]``, value = memory, key = keys) with
    ``mask=[None, mask]`` and ``return_attention_scores=True``. With ``keys = W memory`` that is
    Luong's general score; with ``keys = memory``, the dot score. Returns ``(context [B, H_mem],
    alignments [B, T])`` (the length-1 query axis squeezed away).
    """
    raise NotImplementedError("n08: keras_attention")


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
    raise NotImplementedError("n08: beam_search")


def model_next_log_probs(layers, x, len_x):
    """A ``next_log_probs`` for :func:`beam_search` from n07's model (its :class:`n07.Seq2SeqLayers`).

    For ONE input ``x`` (int ``[T]``) of length ``len_x``: encode ``x[:len_x]`` once with
    ``n07.encode`` (batch of 1); for K prefixes of equal length L, repeat each state K times
    (``tf.repeat(s, K, axis=0)``), run ``n07.teacher_forced_logits`` on ``[GO, *prefix]`` (``[K, L + 1]``)
    and return ``tf.nn.log_softmax`` of the LAST step's logits, numpy ``[K, V]``.
    """
    raise NotImplementedError("n08: model_next_log_probs")


# --------------------------------------------------------------------------- the heatmap
def plot_attention(source, output, alignments, filename="attention.png"):
    """Write one alignment matrix as a PNG heatmap into ``output_dir("n08")``; return the path.

    ``source``: T_src tokens (x axis), ``output``: T_out tokens (y axis), ``alignments``: float
    ``[T_out, T_src]`` (row t = where output step t looked). ``ValueError`` when the shape is not
    ``[len(output), len(source)]``. Use ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot),
    ``imshow`` with vmin 0, vmax 1, the tokens as tick labels and a colour bar.
    """
    raise NotImplementedError("n08: plot_attention")
