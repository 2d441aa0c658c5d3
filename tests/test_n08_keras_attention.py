"""Graded tests for n08 · Attention as a Keras layer, beam search in eager code (the TF 2 twin of k08).

Order: the score and the masked softmax, the LuongAttention layer against a numpy reference,
keras.layers.Attention against the same numbers, beam search on hand-made next-token tables (as in
k08), the heatmap file; then the tests that use other katas: the layer against YOUR k08's attention
functions with the same weights (``needs("k08")``, a wrong port rejected), beam search on n07's
model (``needs("n07")``: width 1 must be n07's greedy decoder), the attention decoder on small
random layers (it runs n07's encoder), and the graded training run last (k08's budget and task).

The harness runs every n08 test eagerly, seeded (1234).

PYTEST_DONT_REWRITE: every assert here carries its own message, so pytest's assertion rewriting (about 2 s of
every run over all test files) would add nothing a learner reads.
"""
import struct
import sys

import numpy as np
import pytest

from tfkata import fresh_graph, load_kata
from tfkata.tfsetup import import_tensorflow
from tfkata.testing import where_max as _where
from tfkata.testing import (BEAM_TRAP, UNIFORM_4, beam_eos_problem, beam_order_problem, beam_stop_problem,
                            greedy, must_raise,
                            plot_problem, printed_examples, pyplot_figures_left, PYPLOT_LEFT, recording_imshow,
                            table_model)

tf = import_tensorflow()
import keras  # noqa: E402  (after the quiet TensorFlow import; Keras 3 on TF >= 2.16, Keras 2 before)

n08 = load_kata("n08_keras_attention")
k08 = load_kata("k08_attention")
n07 = load_kata("n07_keras_seq2seq")

V = 11
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ATOL = 1e-5  # float32 sums of a few products of numbers below ~10


def _np_softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _inputs(b=3, t=6, h=4, hm=5, seed=0):
    """query [b, h], memory [b, t, hm], lengths, mask."""
    rng = np.random.RandomState(seed)
    query = rng.randn(b, h).astype(np.float32)
    memory = rng.randn(b, t, hm).astype(np.float32)
    lengths = np.array([t, 3, 4][:b], np.int32)
    mask = np.arange(t)[None, :] < lengths[:, None]
    return query, memory, lengths, mask


def _np_attention(query, memory, mask, w_mem, w_c, keys_for_context=False, query_first=False, tanh=True):
    keys = memory @ w_mem
    scores = np.where(mask, np.einsum("bh,bth->bt", query, keys), -np.inf)
    align = _np_softmax(scores)
    context = np.einsum("bt,bth->bh", align, keys if keys_for_context else memory)
    pair = [query, context] if query_first else [context, query]
    z = np.concatenate(pair, -1) @ w_c
    return (np.tanh(z) if tanh else z), align


def _check_rows(align, what):
    sums = align.sum(-1)
    if np.allclose(sums, 1.0, atol=1e-4):
        return
    if align.ndim == 2 and np.allclose(align.sum(0), 1.0, atol=1e-4):
        pytest.fail(f"{what}: the columns sum to 1, not the rows: the softmax ran over axis 0 (the batch); use "
                    "tf.nn.softmax(scores, axis=-1)", pytrace=False)
    pytest.fail(f"{what}: each row of alignments should sum to 1 (a softmax over the encoder positions), got sums "
                f"{np.round(sums, 3).tolist()}", pytrace=False)


def _layer(units=4, query=None, memory=None, mask=None, seed=1):
    """A LuongAttention(units) called once (so it is built), then given random weights; returns (layer, W, W_c)."""
    layer = n08.LuongAttention(units)
    layer(tf.constant(query), tf.constant(memory), tf.constant(mask))
    rng = np.random.RandomState(seed)
    w_mem = rng.randn(memory.shape[-1], units).astype(np.float32) * 0.7
    w_c = rng.randn(memory.shape[-1] + query.shape[-1], units).astype(np.float32) * 0.7
    layer.memory_layer.set_weights([w_mem])
    layer.attention_layer.set_weights([w_c])
    return layer, w_mem, w_c


# --------------------------------------------------------------------------- score and masked softmax
@pytest.mark.covers("general_scores")
def test_general_scores():
    query, memory, _, _ = _inputs(hm=4)
    got = np.asarray(n08.general_scores(tf.constant(query), tf.constant(memory)))
    assert got.shape == (3, 6), f"scores should be [B, T] = (3, 6), got {got.shape}"
    want = np.einsum("bh,bth->bt", query, memory)
    diff = np.abs(got - want)
    scale = float(np.sum(got * want) / np.sum(want * want))
    assert diff.max() < ATOL, (
        f"general_scores: scores[b, s] should be query[b] · keys[b, s] ({_where(diff)})"
        + ((f": yours is that times {scale:.4g} everywhere, 1/H: a mean over H (tf.reduce_mean) where the dot "
            "product sums (tf.reduce_sum, or tf.einsum)" if abs(scale * query.shape[-1] - 1) < 1e-3 else
            f": yours is that times {scale:.4g} everywhere (1/sqrt(H) = {1 / np.sqrt(query.shape[-1]):.4g}: a scaled "
            "dot product); Luong's general score is not scaled") if abs(scale - 1) > 1e-3
           and np.allclose(got, scale * want, atol=ATOL) else "")
    )


@pytest.mark.covers("masked_softmax")
def test_masked_softmax_exact_zeros_on_padding():
    rng = np.random.RandomState(2)
    scores = rng.randn(3, 5).astype(np.float32) * 3
    lengths = np.array([5, 2, 3])
    mask = np.arange(5)[None, :] < lengths[:, None]
    got = np.asarray(n08.masked_softmax(tf.constant(scores), tf.constant(mask)))
    assert got.shape == (3, 5), f"alignments should be [B, T] = (3, 5), got {got.shape}"
    zeroed_after = _np_softmax(scores) * mask
    if not np.allclose(got.sum(-1), 1.0, atol=1e-4) and np.allclose(got, zeroed_after, atol=1e-5):
        pytest.fail(f"masked_softmax: rows sum to {[round(float(v), 3) for v in got.sum(-1)]}, not 1: the softmax ran over every "
                    "position and the padding was zeroed after; mask the padded scores BEFORE the softmax "
                    "with tf.where(mask, scores, -inf): exp(-inf) is exactly 0, whatever the padding's score (a "
                    "-1e9 is not, next to a score of 1e9)", pytrace=False)
    _check_rows(got, "masked_softmax")
    for b, n in enumerate(lengths):
        assert np.all(got[b, n:] == 0.0), (
            f"masked_softmax: row {b}: weights past length {n} must be exactly 0.0, got {got[b, n:]}: set the padded scores to -inf "
            "before the softmax (tf.where(mask, scores, -inf))"
        )
        diff = np.abs(got[b, :n] - _np_softmax(scores[b, :n]))
        assert diff.max() < 1e-5, f"row {b}: the real weights should be the softmax over the real scores ({_where(diff)})"


@pytest.mark.covers("masked_softmax")
@pytest.mark.parametrize("huge", [1e4, 1e10])
def test_masked_softmax_ignores_huge_scores_on_padding(huge):
    scores = np.array([[0.0, 1.0, huge, huge]], np.float32)
    got = np.asarray(n08.masked_softmax(tf.constant(scores), tf.constant([[True, True, False, False]])))
    assert np.all(np.isfinite(got)), f"got non-finite weights {got}: mask the scores with -inf, then one softmax"
    want = [*_np_softmax(np.array([0.0, 1.0])), 0.0, 0.0]
    assert np.allclose(got[0], want, atol=1e-6), (
        f"masked_softmax: padded positions with score {huge:g} took weight: got {[round(float(v), 3) for v in got[0]]}, "
        f"expected {[round(float(v), 3) for v in want]}: subtracting a finite penalty (1e4, 1e9, ...) is not enough "
        "whatever the padding's score; replace the padded scores with -inf (tf.where)"
    )


# --------------------------------------------------------------------------- the Keras layer
@pytest.mark.covers("LuongAttention")
def test_luong_attention_owns_two_bias_free_kernels():
    query, memory, _, mask = _inputs(h=5)
    layer = n08.LuongAttention(5)
    made = {name: getattr(getattr(layer, name, None), "units", None) for name in ("memory_layer", "attention_layer")}
    assert all(units in (None, 5) for units in made.values()), (
        f"LuongAttention(5): its Dense layers should have units = 5, the argument, got {made}: make both with "
        "keras.layers.Dense(units, use_bias=False, ...) in __init__ (a layer of its own size does not fit the query)"
    )
    attention, align = layer(tf.constant(query), tf.constant(memory), tf.constant(mask))
    assert tuple(attention.shape) == (3, 5) and tuple(align.shape) == (3, 6), (
        f"LuongAttention(5) on query [3, 5], memory [3, 6, 5] should return attention [3, 5] and alignments [3, 6], "
        f"got {tuple(attention.shape)} and {tuple(align.shape)}"
    )
    shapes = sorted(tuple(w.shape) for w in layer.trainable_weights)
    assert shapes == [(5, 5), (10, 5)], (
        f"expected exactly two bias-free kernels, W [H_mem, units] = (5, 5) on the memory and W_c [H_mem + H, units] "
        f"= (10, 5) on [context ; query], got {shapes}: Dense(units, use_bias=False) twice, created in __init__"
    )


@pytest.mark.covers("LuongAttention", "general_scores", "masked_softmax")
def test_luong_attention_matches_numpy():
    query, memory, lengths, mask = _inputs(h=5)
    layer, w_mem, w_c = _layer(5, query, memory, mask)
    attention, align = (np.asarray(a) for a in layer(tf.constant(query), tf.constant(memory), tf.constant(mask)))
    _check_rows(align, "LuongAttention")
    assert np.all(align[~mask] == 0.0), "padded positions must get weight exactly 0.0: pass the mask to masked_softmax"
    want_att, want_align = _np_attention(query, memory, mask, w_mem, w_c)
    diff = np.abs(align - want_align)
    if diff.max() > ATOL:
        raw = _np_softmax(np.where(mask, np.einsum("bh,bth->bt", query, memory), -np.inf))
        hint = ("the query was scored against the memory: score it against the keys memory_layer(memory) "
                "(general score h_t · W h_s)" if np.abs(align - raw).max() < ATOL else "")
        pytest.fail(f"alignments differ from softmax(query · W memory) over the real positions ({_where(diff)}): "
                    f"{hint or 'keys = memory_layer(memory), then masked_softmax(general_scores(query, keys), mask)'}",
                    pytrace=False)
    diff = np.abs(attention - want_att)
    if diff.max() <= ATOL:
        return
    for kwargs, why in (({"query_first": True}, "the concatenation is [query ; context]: the context comes first"),
                        ({"tanh": False}, "there is no tanh: attention = tanh(W_c [context ; query])"),
                        ({"keys_for_context": True}, "the context averages the keys; it averages the MEMORY "
                                                     "(the encoder outputs), sum_s a(s) memory[s]")):
        if np.abs(attention - _np_attention(query, memory, mask, w_mem, w_c, **kwargs)[0]).max() < ATOL:
            pytest.fail(f"LuongAttention: {why}", pytrace=False)
    pytest.fail(f"attention differs from tanh(W_c [context ; query]) ({_where(diff)}), with the context the "
                "alignment-weighted sum of the memory", pytrace=False)


# --------------------------------------------------------------------------- keras.layers.Attention
@pytest.mark.covers("keras_attention")
def test_keras_attention_is_a_dot_score_over_keys_averaging_values():
    query, memory, _, mask = _inputs(hm=4)
    keys = np.random.RandomState(3).randn(*memory.shape).astype(np.float32)
    context, align = (np.asarray(a) for a in n08.keras_attention(tf.constant(query), tf.constant(memory),
                                                                 tf.constant(keys), tf.constant(mask)))
    assert context.shape == (3, 4) and align.shape == (3, 6), (
        f"expected context [B, H_mem] = (3, 4) and alignments [B, T] = (3, 6) (the length-1 query axis squeezed), "
        f"got {context.shape} and {align.shape}"
    )
    assert np.all(align[~mask] == 0.0), (
        f"keras_attention: padded positions got weight (up to {align[~mask].max():.3g}): pass mask=[None, mask] (the value mask)"
    )
    want_align = _np_softmax(np.where(mask, np.einsum("bh,bth->bt", query, keys), -np.inf))
    diff = np.abs(align - want_align)
    if diff.max() > ATOL:
        swapped = _np_softmax(np.where(mask, np.einsum("bh,bth->bt", query, memory), -np.inf))
        why = ("the scores come from the memory: keras.layers.Attention takes [query, value, key]; the keys go LAST"
               if np.allclose(align, swapped, atol=ATOL) else "scores are query · key over the real positions")
        pytest.fail(f"keras_attention alignments wrong ({_where(diff)}): {why}", pytrace=False)
    diff = np.abs(context - np.einsum("bt,bth->bh", want_align, memory))
    assert diff.max() < ATOL, (
        f"the context should average the values (the memory) with the alignments ({_where(diff)}): [query, value, key] "
        "= [query[:, None], memory, keys]"
    )


@pytest.mark.covers("keras_attention", "LuongAttention", "general_scores", "masked_softmax")
def test_keras_attention_equals_luong_where_it_should():
    query, memory, _, mask = _inputs(h=5)
    layer, w_mem, _ = _layer(5, query, memory, mask)
    q, m, k = tf.constant(query), tf.constant(memory), tf.constant(mask)
    _, luong = layer(q, m, k)
    luong = np.asarray(luong)
    _, general = n08.keras_attention(q, m, layer.memory_layer(m), k)
    _, dot = n08.keras_attention(q, m, m, k)
    general_diff = float(np.abs(np.asarray(general) - luong).max())
    dot_diff = float(np.abs(np.asarray(dot) - luong).max())
    print(f"keras.layers.Attention vs LuongAttention alignments: keys = W memory max |diff| {general_diff:.3g}; "
          f"keys = memory (plain dot score) {dot_diff:.3g}")
    assert general_diff < ATOL, (
        f"with keys = layer.memory_layer(memory) keras.layers.Attention should give LuongAttention's alignments "
        f"(max |diff| {general_diff:.3g}): the general score IS a dot score against W h_s"
    )
    assert dot_diff > 1e-2, (
        f"a plain dot score (keys = memory) should differ from the general score with a random W, max |diff| only "
        f"{dot_diff:.3g}: does LuongAttention apply memory_layer to the memory before scoring?"
    )
    # With W = identity the two scores are the same function: the dot score is the general score's special case.
    layer.memory_layer.set_weights([np.eye(5, dtype=np.float32)])
    _, identity = layer(q, m, k)
    diff = np.abs(np.asarray(identity) - np.asarray(dot))
    assert diff.max() < ATOL, f"with W = I LuongAttention should equal keras.layers.Attention's dot score ({_where(diff)})"


def _show(results):
    return [(tuple(int(t) for t in tokens), round(float(np.exp(score)), 3)) for tokens, score in results]


def _check_stops_at_eos(results):
    for tokens, _ in results:
        tokens = tuple(int(t) for t in tokens)
        assert 0 not in tokens[:-1], (
            f"beam_search: {tokens} runs on after its first EOS: a hypothesis is finished at its first EOS; keep it as it is, "
            f"never extend it (results: {_show(results)})"
        )


@pytest.mark.covers("beam_search")
def test_beam_search_finds_what_greedy_misses():
    model = table_model(BEAM_TRAP, UNIFORM_4)
    got = n08.beam_search(model, beam_width=3, max_steps=10)
    _check_stops_at_eos(got)
    assert [tuple(int(t) for t in tokens) for tokens, _ in got] == [(3, 0), (1, 0), (2, 0)], (
        f"beam_search: width 3 should return (3, 0) p=0.25, (1, 0) p=0.136, (2, 0) p=0.119 (best first), got {_show(got)}: a "
        "hypothesis' score is its summed log-probabilities, and top_k keeps the best"
    )
    scores = np.array([float(s) for _, s in got])
    assert np.allclose(scores, np.log([0.25, 0.136, 0.119]), rtol=1e-6), (
        f"beam_search: scores should be the summed log-probabilities log(0.25), log(0.136), log(0.119) = -1.386, -1.995, -2.129, "
        f"got {[round(float(v), 3) for v in scores]}: add each token's log-probability to its hypothesis' score"
    )
    narrow = n08.beam_search(model, beam_width=2, max_steps=10)
    assert len(narrow) == 2 and tuple(narrow[0][0]) == (1, 0), (
        f"width 2 keeps the 2 best first tokens (1, 2) and cannot find (3, 0); got {_show(narrow)}: keep at most "
        "beam_width hypotheses (tf.math.top_k(scores, k=beam_width))"
    )


@pytest.mark.covers("beam_search")
def test_beam_width_one_is_greedy():
    for seed in range(4):
        bigram = _np_softmax(np.random.RandomState(seed).randn(4, 4) * 2)

        def model(prefixes):
            return np.log(np.array([bigram[p[-1] if p else 0] for p in prefixes]))

        want = greedy(model, 8)
        got = n08.beam_search(model, beam_width=1, max_steps=8)
        assert len(got) == 1 and tuple(got[0][0]) == want, f"seed {seed}: width 1 should be greedy {want}, got {_show(got)}"


@pytest.mark.covers("beam_search")
def test_beam_search_stops_at_first_eos():
    table = {(): {2: 0.6, 1: 0.4}, (2,): {0: 0.9, 3: 0.1}, (2, 0): {3: 0.99, 0: 0.01}, (1,): {0: 0.5, 1: 0.5}}
    calls = []
    got = n08.beam_search(table_model(table, UNIFORM_4, calls), beam_width=3, max_steps=6)
    _check_stops_at_eos(got)
    asked = [p for p in calls if 0 in p]
    assert not asked, f"next_log_probs was asked to extend finished hypotheses {asked[:3]}: pass only unfinished ones"
    assert tuple(got[0][0]) == (2, 0), (
        f"beam_search: the best is (2, EOS) with p=0.54, got {_show(got)}: a finished hypothesis stays a candidate as it is, "
        "competing with the expansions of the unfinished ones"
    )


@pytest.mark.covers("beam_search")
def test_beam_search_scores_sorted_and_bounded():
    bigram = _np_softmax(np.random.RandomState(7).randn(4, 4))

    def model(prefixes):
        return np.log(np.array([bigram[p[-1] if p else 0] for p in prefixes]))

    got = n08.beam_search(model, beam_width=4, max_steps=5)
    assert 1 <= len(got) <= 4, f"at most beam_width = 4 results, got {len(got)}"
    problem = beam_order_problem(got)
    if problem:
        pytest.fail(problem, pytrace=False)
    for tokens, score in got:
        prev, total = 0, 0.0
        for tok in tokens:
            total += np.log(bigram[prev, tok])
            prev = int(tok)
        assert float(score) == pytest.approx(total, rel=1e-6), (
            f"{tuple(tokens)}: score {float(score):.6f} is not its summed log-probability {total:.6f}"
        )
        assert len(tokens) <= 5, f"{tuple(tokens)} is longer than max_steps = 5"
    never_eos = n08.beam_search(table_model({(): {1: 0.5, 2: 0.5}}, {1: 0.5, 2: 0.5}), beam_width=2, max_steps=4)
    assert len(never_eos) == 2 and all(len(t) == 4 for t, _ in never_eos), (
        f"without EOS the search stops after max_steps = 4 tokens with 2 hypotheses, got {_show(never_eos)}"
    )


@pytest.mark.covers("beam_search")
def test_beam_search_breaks_ties_by_candidate_order():
    # 40 tokens on 3 probability levels: many exact ties. An unstable sort (np.argsort's default quicksort)
    # reorders them; tf.math.top_k (and a stable sort) keeps the earlier candidate first.
    probs = np.array([1.0, 2.0, 4.0])[np.random.RandomState(0).randint(3, size=40)]
    log_probs = np.log(probs / probs.sum())

    def model(prefixes):
        return np.tile(log_probs, (len(prefixes), 1))

    got = [tuple(int(t) for t in tokens) for tokens, _ in n08.beam_search(model, beam_width=12, max_steps=1)]
    want = [(int(t),) for t in np.argsort(-log_probs, kind="stable")[:12]]
    same_scores = len(got) == len(want) and all(len(g) == 1 and 0 <= g[0] < 40 for g in got) and np.array_equal(
        log_probs[[g[0] for g in got]], log_probs[[w[0] for w in want]])
    if got == want or not same_scores:
        assert got == want, f"beam_search: width 12, one step over 40 tokens should keep {want}, got {got}"
        return
    pytest.fail(f"beam_search: ties must go to the earlier candidate (tf.math.top_k / a stable sort): width 12 over 40 "
                f"tokens on 3 probability levels should keep {want} (equal scores in token order), got {got} "
                "(np.argsort's default quicksort is not stable)", pytrace=False)


@pytest.mark.covers("beam_search")
def test_beam_search_lists_finished_hypotheses_first():
    # Powers of 2: the scores tie exactly. Width 2 keeps (1,) p=0.5 and the finished (0,) p=0.25 after one step; at
    # the second, (0,) as it is ties with (1, 0) = 0.5 * 0.5: the finished hypothesis is the earlier candidate.
    table = {(): {0: 0.25, 1: 0.5, 2: 0.125, 3: 0.125}, (1,): {0: 0.5, 1: 0.125, 2: 0.125, 3: 0.25}}
    found = n08.beam_search(table_model(table, UNIFORM_4), beam_width=2, max_steps=3)
    got = [tuple(int(t) for t in tokens) for tokens, _ in found]
    want = [(0,), (1, 0)]
    if got == want:
        return
    if sorted(got) == sorted(want):
        pytest.fail(f"beam_search: on ties the earlier candidate wins, and the candidates are the finished hypotheses first, "
                    f"then the extensions row by row: width 2 on a table where the finished (0,) p=0.25 ties with "
                    f"(1, 0) p=0.5*0.5 should return {want}, got {got}: concatenate the finished hypotheses' scores "
                    "BEFORE the extended ones", pytrace=False)
    pytest.fail(f"beam_search: width 2, max_steps 3 on a table of exact ties should return {want} (p 0.25 each, the "
                f"finished (0,) first), got {_show(found)}", pytrace=False)


@pytest.mark.covers("beam_search")
def test_beam_search_keeps_scores_in_float64():
    """Scores 1e-10 apart, and sums float32 would round: the log-probabilities stay float64 all the way."""
    eos = n08.EOS

    def close_call(prefixes):  # token 2 is better than token 1 by 1e-10: float32 sees a tie (the earlier wins)
        row = np.full(4, -50.0)
        row[[1, 2]] = [-1.0 - 1e-10, -1.0]
        row[eos] = -60.0
        return np.array([row] * len(prefixes))

    got = n08.beam_search(close_call, beam_width=1, max_steps=1)
    tokens = [tuple(int(t) for t in hyp) for hyp, _ in got]
    assert tokens == [(2,)], (
        f"beam_search: token 2 (log-prob -1.0) beats token 1 (-1.0000000001) by 1e-10, got {tokens}: keep the "
        "log-probabilities float64 (np.asarray(..., dtype=np.float64), tf.float64 scores): float32 rounds both to -1.0, "
        "and the tie goes to the earlier token"
    )

    def tenth(prefixes):
        row = np.full(4, -30.0)
        row[1] = -0.1
        return np.array([row] * len(prefixes))

    score = n08.beam_search(tenth, beam_width=1, max_steps=2)[0][1]
    assert isinstance(score, float) and score == (-0.1) + (-0.1), (
        f"beam_search: two tokens of log-prob -0.1 score -0.1 + -0.1 = {(-0.1) + (-0.1)!r} in float64, got {score!r}: "
        "keep the log-probabilities and the sums float64 and return each score as a Python float"
    )


@pytest.mark.covers("beam_search")
def test_beam_wider_than_the_candidates():
    # Width 6 over 4 tokens: the first step has only 4 candidates, so at most 4 can be kept.
    model = table_model(BEAM_TRAP, UNIFORM_4)
    want = [(1,), (2,), (3,), (0,)]  # p 0.40, 0.35, 0.25 and EOS (~1e-12), best first
    try:
        found = n08.beam_search(model, beam_width=6, max_steps=1)
    except (tf.errors.InvalidArgumentError, ValueError, IndexError) as exc:
        first = (str(exc).split("}}")[-1].strip().splitlines() or [""])[0][:100]  # no {{function_node ...}} prefix
        pytest.fail(f"beam_search: width 6 over 4 tokens raised {type(exc).__name__} ({first}): the first step has only 4 "
                    "candidates; keep tf.math.top_k(scores, k=min(beam_width, n)), n the number of candidates",
                    pytrace=False)
    got = [tuple(int(t) for t in tokens) for tokens, _ in found]
    assert got == want, (
        f"beam_search: width 6 and max_steps 1 over 4 tokens should keep all 4 one-token hypotheses {want}, best first, "
        f"got {_show(found)}: keep min(beam_width, n) candidates"
    )


@pytest.mark.covers("beam_search")
def test_beam_search_ends_at_the_eos_it_is_given():
    problem = beam_eos_problem(n08.beam_search)
    assert problem is None, problem


@pytest.mark.covers("beam_search")
def test_beam_search_runs_until_every_kept_hypothesis_is_finished():
    problem = beam_stop_problem(n08.beam_search)
    assert problem is None, problem


# --------------------------------------------------------------------------- heatmap file
def _png_size(path):
    data = open(path, "rb").read()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG: it starts with {data[:8]!r}"
    return struct.unpack(">II", data[16:24])


@pytest.mark.covers("plot_attention")
def test_plot_attention_writes_into_the_output_dir():
    from tfkata.paths import output_dir

    align = np.full([4, 6], 0.02)
    align[np.arange(4), [1, 3, 1, 3]] = 0.9
    name = "test-heatmap.png"
    want = output_dir("n08") / name
    if want.exists():
        want.unlink()
    with recording_imshow() as images:  # every image drawn, to read its shape, axes and colour limits afterwards
        path, left = pyplot_figures_left(lambda: n08.plot_attention([3, 2, 5, 4, 7, 9], [2, 4, 2, 4], align, name))
    assert not left, f"plot_attention left {left} {PYPLOT_LEFT}"
    try:
        assert str(path) == str(want), f"plot_attention should write output_dir('n08') / filename = {want} and return it, got {path!r}"
        width, height = _png_size(want)
        assert width > 50 and height > 50, f"the PNG is {width}x{height}: did the figure get drawn?"
        problem = plot_problem(images, [3, 2, 5, 4, 7, 9], [2, 4, 2, 4])
        assert problem is None, f"plot_attention: {problem}"
        limits = [tuple(round(float(v), 3) for v in image.get_clim()) for image in images]
        assert limits == [(0.0, 1.0)], (
            f"plot_attention: draw the weights with ONE ax.imshow(..., vmin=0, vmax=1), so that every heatmap shares "
            f"one colour scale (a weight of 0.9 looks the same in every picture), got colour limits {limits}"
            + (": without vmin/vmax imshow stretches the colours to this matrix's own min and max" if images else "")
        )
    finally:
        if want.exists():
            want.unlink()
    must_raise(lambda: n08.plot_attention([3, 2, 5, 4, 7, 9], [2, 4, 2, 4], align.T, "transposed.png"), ValueError,
               "plot_attention: alignments of shape [6, 4] (transposed) for 6 source and 4 output tokens must raise "
               "ValueError: check the shape is exactly [len(output_tokens), len(source_tokens)] = [4, 6], rows and columns")
    wrong_columns = output_dir("n08") / "wrong-columns.png"
    try:
        n08.plot_attention([1, 2, 3], [4, 5], np.full((2, 5), 0.2), wrong_columns.name)
    except ValueError:
        pass
    else:
        pytest.fail("plot_attention: alignments of shape [2, 5] for 3 source and 2 output tokens must raise ValueError, it "
                    "drew them: check both axes, the shape must be [len(output), len(source)] (rows AND columns)",
                    pytrace=False)
    finally:
        if wrong_columns.exists():
            wrong_columns.unlink()


# --------------------------------------------------------------------------- against YOUR k08
def _k08_attention(query, memory, lengths, w_mem, w_c):
    """k08's hand-written attention (the learner's functions) in its own graph: (attention, alignments)."""
    with fresh_graph():
        keys = tf.einsum("bth,hu->btu", tf.constant(memory), tf.constant(w_mem))  # k08's memory_layer: memory @ W
        align = k08.masked_softmax(k08.luong_scores(tf.constant(query), keys), tf.constant(lengths))
        context = k08.context_vector(align, tf.constant(memory))
        attention = k08.attentional_state(context, tf.constant(query), lambda z: tf.matmul(z, tf.constant(w_c)))
        with tf.compat.v1.Session() as sess:
            return sess.run([attention, align])


def _port_problem(layer, query, memory, mask, k08_attention, k08_align):
    got_att, got_align = (np.asarray(a) for a in layer(tf.constant(query), tf.constant(memory), tf.constant(mask)))
    diff = np.abs(got_align - k08_align)
    if diff.max() > ATOL:
        return (f"alignments differ from k08's ({_where(diff)}): k08's memory_layer kernel [H_mem, units] goes into "
                "memory_layer unchanged (Dense computes memory @ kernel, as tf.compat.v1.layers.Dense did)")
    diff = np.abs(got_att - k08_attention)
    if diff.max() > ATOL:
        return (f"attentional states differ from k08's ({_where(diff)}): k08's attention_layer kernel [H_mem + H, "
                "units] goes into attention_layer unchanged, its first H_mem rows acting on the context")
    return None


@pytest.mark.needs("k08")
@pytest.mark.covers("LuongAttention", "general_scores", "masked_softmax")
def test_same_numbers_as_k08():
    query, memory, lengths, mask = _inputs(b=3, t=6, h=5, hm=5, seed=8)
    layer, w_mem, w_c = _layer(5, query, memory, mask, seed=9)
    want_att, want_align = _k08_attention(query, memory, lengths, w_mem, w_c)
    problem = _port_problem(layer, query, memory, mask, want_att, want_align)
    assert problem is None, problem
    got_att, got_align = (np.asarray(a) for a in layer(tf.constant(query), tf.constant(memory), tf.constant(mask)))
    print(f"n08 LuongAttention vs k08 with the same weights: max |diff| alignments "
          f"{np.abs(got_align - want_align).max():.3g}, attention {np.abs(got_att - want_att).max():.3g}")


@pytest.mark.needs("k08")
@pytest.mark.covers("LuongAttention", "general_scores", "masked_softmax")
def test_wrong_ports_are_rejected():
    query, memory, lengths, mask = _inputs(b=3, t=6, h=5, hm=5, seed=8)
    layer, w_mem, w_c = _layer(5, query, memory, mask, seed=9)
    want = _k08_attention(query, memory, lengths, w_mem, w_c)
    for name, weights, words in (
        ("transposed W", (w_mem.T, w_c), "memory_layer"),
        ("W_c halves swapped", (w_mem, np.concatenate([w_c[5:], w_c[:5]])), "attention_layer"),
    ):
        layer.memory_layer.set_weights([weights[0]])
        layer.attention_layer.set_weights([weights[1]])
        problem = _port_problem(layer, query, memory, mask, *want)
        assert problem is not None and words in problem, (
            f"a wrong port ({name}) should be rejected with a message naming {words}, got {problem!r}: are the "
            "LuongAttention's alignments and attention computed from its weights?"
        )


# --------------------------------------------------------------------------- beam search on n07's model
def _n07_layers():
    layers = n07.build_layers(vocab_size=V, embed_size=6, hidden_units=8, num_layers=2)
    rng = np.random.RandomState(5)
    for item in layers:
        for layer in (item if isinstance(item, (list, tuple)) else [item]):
            layer.set_weights([rng.uniform(-1.0, 1.0, w.shape).astype(np.float32) for w in layer.get_weights()])
    kernel, bias = layers.output_layer.get_weights()
    bias[0] += 0.7  # EOS a little likelier: greedy then stops after 3 and 2 tokens on two of the inputs below, not on one
    layers.output_layer.set_weights([kernel, bias])
    return layers


@pytest.mark.needs("n07")
@pytest.mark.covers("model_next_log_probs")
def test_model_next_log_probs_is_the_last_step_log_softmax():
    layers = _n07_layers()
    x, len_x = np.array([3, 2, 5, 4, 0, 0], np.int32), 4
    next_log_probs = n08.model_next_log_probs(layers, x, len_x)
    raw = next_log_probs([()])
    assert isinstance(raw, np.ndarray), (
        f"model_next_log_probs: next_log_probs should return numpy [K, V], got {type(raw).__name__}: .numpy() the "
        "log-softmax (beam_search works on numpy log-probabilities, in float64)"
    )
    first = np.asarray(raw)
    assert first.shape == (1, V), f"next_log_probs([()]) should be [1, {V}] (the first token after GO), got {first.shape}"
    prefixes = [(2, 4), (4, 4), (2, 0)]
    got = np.asarray(next_log_probs(prefixes), np.float64)
    assert got.shape == (3, V), f"3 prefixes should give [3, {V}], got {got.shape}"
    _, states = n07.encode(layers, tf.constant(np.tile(x[:len_x], (3, 1))), tf.constant([len_x] * 3))
    logits = np.asarray(n07.teacher_forced_logits(layers, tf.constant([[0, *p] for p in prefixes]), states),
                        np.float64)

    def log_softmax(z):
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    want = log_softmax(logits[:, -1])
    diff = np.abs(got - want)
    if diff.max() <= 1e-4:
        return
    if not np.allclose(np.exp(got).sum(-1), 1.0, atol=1e-3):
        why = "these are not log-probabilities: return tf.nn.log_softmax of the last step's logits"
    elif np.allclose(got, log_softmax(logits[:, 0]), atol=1e-4):
        why = "these are the FIRST step's: take the logits of the LAST decoder step, [:, -1]"
    elif any(np.allclose(got, _padded_variant(layers, x, lengths, prefixes), atol=1e-4)
             for lengths in (len_x, len(x))):
        why = (f"x was encoded with its padding (x has {len(x)} ids, len_x is {len_x}): cut it to x[:len_x] "
               "before encoding, the padding is not part of the input")
    else:
        why = "encode x[:len_x] once, repeat its states K times and run the decoder on [GO, *prefix]"
    pytest.fail(f"model_next_log_probs: {why} ({_where(diff)})", pytrace=False)


def _padded_variant(layers, x, lengths, prefixes):
    """The log-probabilities of a model_next_log_probs that encodes the whole padded x (not x[:len_x])."""
    _, states = n07.encode(layers, tf.constant(np.tile(x, (len(prefixes), 1))), tf.constant([lengths] * len(prefixes)))
    z = np.asarray(n07.teacher_forced_logits(layers, tf.constant([[0, *p] for p in prefixes]), states),
                   np.float64)[:, -1]
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.mark.needs("n07")
@pytest.mark.covers("beam_search", "model_next_log_probs")
def test_beam_width_one_is_n07s_greedy_decoder():
    layers = _n07_layers()
    x = np.array([[3, 2, 5, 4, 8, 0], [6, 1, 2, 0, 0, 0], [4, 4, 9, 7, 2, 6]], np.int32)
    lx = np.array([5, 3, 6], np.int32)
    _, states = n07.encode(layers, tf.constant(x), tf.constant(lx))
    ids, lengths = n07.greedy_decode(lambda t, s: n07.decoder_step(layers, t, s), states, 3, max_steps=8)
    ids, lengths = np.asarray(ids), np.asarray(lengths)
    print(f"n07 random model, greedy lengths {lengths.tolist()} (max 8; EOS counted)")
    for i in range(3):
        want = tuple(int(t) for t in ids[i, : lengths[i]])
        got = n08.beam_search(n08.model_next_log_probs(layers, x[i], lx[i]), beam_width=1, max_steps=8)
        assert tuple(int(t) for t in got[0][0]) == want, (
            f"sequence {i}: beam width 1 on n07's model should be n07's greedy ids {want}, got {tuple(got[0][0])}"
        )
    wide = n08.beam_search(n08.model_next_log_probs(layers, x[0], lx[0]), beam_width=3, max_steps=8)
    print(f"n07 random model, input {x[0, :lx[0]].tolist()}: greedy {ids[0, :lengths[0]].tolist()}, "
          f"beam 3 best {list(wide[0][0])} (log p {wide[0][1]:.3f})")


# --------------------------------------------------------------------------- the attention model (small layers)
E, H, L = 6, 8, 2


def _attention_layers(eos_bias=0.0, seed=6):
    layers = n08.build_attention_layers(vocab_size=V, embed_size=E, hidden_units=H, num_layers=L)
    rng = np.random.RandomState(seed)
    for item in layers:
        for layer in (item if isinstance(item, (list, tuple)) else [item]):
            layer.set_weights([rng.uniform(-1.0, 1.0, w.shape).astype(np.float32) for w in layer.get_weights()])
    kernel, bias = layers.output_layer.get_weights()
    bias[0] += eos_bias
    layers.output_layer.set_weights([kernel, bias])
    return layers


def _encoded(layers, seed=7):
    x = np.array([[3, 2, 5, 4, 8, 0], [6, 1, 2, 0, 0, 0], [4, 4, 9, 7, 2, 6]], np.int32)
    lx = np.array([5, 3, 6], np.int32)
    memory, states = n07.encode(layers, tf.constant(x), tf.constant(lx))
    return x, lx, memory, states, tf.sequence_mask(lx, x.shape[1])


@pytest.mark.needs("n07")
@pytest.mark.covers("build_attention_layers", "LuongAttention")
def test_build_attention_layers(monkeypatch):
    made = []  # what every n07.build_layers call made (the learner's n07 module, as n08 imports it)
    n07_module = sys.modules[n07.build_layers.__module__]
    real_build = n07_module.build_layers
    monkeypatch.setattr(n07_module, "build_layers", lambda *a, **k: made.append(real_build(*a, **k)) or made[-1])
    layers = n08.build_attention_layers(vocab_size=V, embed_size=E, hidden_units=H, num_layers=L)
    monkeypatch.undo()
    sizes = f"build_attention_layers(vocab_size={V}, embed_size={E}, hidden_units={H}, num_layers={L})"
    assert len(layers.decoder_cells) == L, f"{sizes}: expected {L} decoder cells, got {len(layers.decoder_cells)}"
    first = sorted(tuple(w.shape) for w in layers.decoder_cells[0].get_weights())
    assert first == sorted([(E + H, 4 * H), (H, 4 * H), (4 * H,)]), (
        f"{sizes}: the first decoder cell should be built for [embedding ; previous attention] = {E} + {H} inputs: "
        f"kernel ({E + H}, {4 * H}), recurrent ({H}, {4 * H}), bias ({4 * H},); got {first} (input feeding; "
        "LSTMCell(hidden_units) built for embed_size + hidden_units inputs, with the arguments)"
    )
    second = sorted(tuple(w.shape) for w in layers.decoder_cells[1].get_weights())
    assert second == sorted([(H, 4 * H), (H, 4 * H), (4 * H,)]), (
        f"{sizes}: the second cell reads the first's output [{H}], got {second}"
    )
    att = sorted(tuple(w.shape) for w in layers.attention.get_weights())
    assert att == [(H, H), (2 * H, H)], (
        f"LuongAttention({H}) should be built with W ({H}, {H}) and W_c ({2 * H}, {H}) before the first call, got {att}"
    )
    out = [tuple(w.shape) for w in layers.output_layer.get_weights()]
    assert out == [(H, V), (V,)], f"the output layer maps the attentional state [{H}] to {V} logits, got {out}"
    assert made, ("build_attention_layers: build the encoder, the decoder embedding and the output layer with "
                  "n07.build_layers(vocab_size, embed_size, hidden_units, num_layers) (it was not called)")
    assert any(layers.output_layer is plain.output_layer for plain in made), (
        f"build_attention_layers: the output layer should be n07's (n07.build_layers(...).output_layer), got another "
        f"layer ({getattr(layers.output_layer, 'name', type(layers.output_layer).__name__)!r}): reuse it rather than "
        "making a new Dense"
    )
    # one layer, other sizes (n07's default depth is 2): the encoder must follow every argument too
    one = n08.build_attention_layers(vocab_size=5, embed_size=2, hidden_units=3, num_layers=1)
    depths = (len(one.encoder_lstms), len(one.decoder_cells))
    encoder = ([tuple(w.shape) for w in one.encoder_embedding.get_weights()],
               [sorted(tuple(w.shape) for w in lstm.get_weights()) for lstm in one.encoder_lstms])
    want = ([(5, 2)], [sorted([(2, 12), (3, 12), (12,)])])
    assert depths == (1, 1) and encoder == want, (
        f"build_attention_layers(5, 2, 3, num_layers=1): the encoder and the decoder should have one layer each, with an "
        f"encoder embedding (5, 2) and an LSTM(3) on 2 inputs {want[1][0]}; got {depths[0]} encoder LSTMs and "
        f"{depths[1]} decoder cells, encoder weights {encoder}: pass ALL the arguments to n07.build_layers(vocab_size, "
        "embed_size, hidden_units, num_layers)"
    )


@pytest.mark.needs("n07")
@pytest.mark.covers("attention_decoder_step", "build_attention_layers", "LuongAttention")
def test_attention_decoder_step_uses_input_feeding():
    layers = _attention_layers()
    _, lx, memory, states, mask = _encoded(layers)
    tokens = tf.constant([0, 2, 4])
    rng = np.random.RandomState(8)
    prev = tf.constant(rng.uniform(-1, 1, [3, H]).astype(np.float32))
    logits, attention, new_states, align = n08.attention_decoder_step(layers, memory, mask, tokens, states, prev)
    assert tuple(logits.shape) == (3, V) and tuple(attention.shape) == (3, H) and tuple(align.shape) == (3, 6), (
        f"expected logits (3, {V}), attention (3, {H}), alignments (3, 6), got {tuple(logits.shape)}, "
        f"{tuple(attention.shape)}, {tuple(align.shape)}"
    )
    align = np.asarray(align)
    _check_rows(align, "attention_decoder_step")
    assert np.all(align[np.arange(6)[None, :] >= lx[:, None]] == 0.0), "padded encoder steps must get weight exactly 0"
    # The reference: the cells by hand on [embedding ; prev], the top output is the query.
    x = tf.concat([layers.decoder_embedding(tokens), prev], axis=-1)
    want_states = []
    for cell, (h, c) in zip(layers.decoder_cells, states):
        x, (h, c) = cell(x, [h, c])
        want_states.append((h, c))
    want_att, want_align = layers.attention(x, memory, mask)
    diff = np.abs(np.asarray(attention) - np.asarray(want_att))
    if diff.max() > ATOL:
        zero = n08.attention_decoder_step(layers, memory, mask, tokens, states, tf.zeros([3, H]))[1]
        x = tf.concat([layers.decoder_embedding(tokens), prev], axis=-1)
        for cell, (h, c) in zip(layers.decoder_cells, states):
            x, _ = cell(x, [c, h])  # the states the other way round, (c, h) as TF 1's LSTMStateTuple
        swapped = np.abs(np.asarray(attention) - np.asarray(layers.attention(x, memory, mask)[0])).max() < ATOL
        why = ("the previous attention changes nothing: concatenate it to the embedding as the first cell's input"
               if np.allclose(np.asarray(zero), np.asarray(attention), atol=1e-6) else
               "each cell got its state as [c, h]: a Keras LSTMCell's state is [h, c], h first (k08's LSTMStateTuple "
               "was (c, h)): cell(x, [h, c])" if swapped else
               "run every cell once on [embedding ; prev_attention], feeding each output to the next, and give the "
               "TOP output to layers.attention(query, memory, mask)")
        pytest.fail(f"attention_decoder_step: {why} ({_where(diff)})", pytrace=False)
    diff = np.abs(np.asarray(logits) - np.asarray(layers.output_layer(attention)))
    assert diff.max() < ATOL, f"the logits are output_layer(attention) (the attentional state), {_where(diff)}"
    for i, ((h, c), (wh, wc)) in enumerate(zip(new_states, want_states)):
        diff = np.abs(np.asarray(h) - np.asarray(wh)) + np.abs(np.asarray(c) - np.asarray(wc))
        assert diff.max() < ATOL, f"new state of layer {i} should be its cell's (h, c) after this step ({_where(diff)})"


@pytest.mark.needs("n07")
@pytest.mark.covers("attention_teacher_forced", "attention_decoder_step", "build_attention_layers", "LuongAttention")
def test_attention_teacher_forced_chains_the_steps():
    layers = _attention_layers()
    _, _, memory, states, mask = _encoded(layers)
    dec_in = np.array([[0, 2, 4, 6], [0, 8, 8, 0], [0, 4, 0, 0]], np.int32)

    def chained(carry_states=True, carry_attention=True):
        logits, aligns, s, prev = [], [], states, tf.zeros([3, H])
        for t in range(dec_in.shape[1]):
            lg, att, new_s, al = n08.attention_decoder_step(layers, memory, mask, tf.constant(dec_in[:, t]), s, prev)
            s, prev = (new_s if carry_states else states), (att if carry_attention else tf.zeros([3, H]))
            logits.append(np.asarray(lg))
            aligns.append(np.asarray(al))
        return np.stack(logits, 1), np.stack(aligns, 1)

    want_logits, want_align = chained()
    slips = {("the states", "the encoder's states"): chained(carry_states=False)[0],
             ("the attention", "zeros as the previous attention"): chained(carry_attention=False)[0]}
    for mode, fn in (("eagerly", n08.attention_teacher_forced), ("in a tf.function", tf.function(n08.attention_teacher_forced))):
        logits, align = fn(layers, memory, mask, tf.constant(dec_in), states)
        assert tuple(logits.shape) == (3, 4, V) and tuple(align.shape) == (3, 4, 6), (
            f"attention_teacher_forced, {mode}: expected logits [B, T_dec, V] = (3, 4, {V}) and alignments [B, T_dec, T_enc] = (3, 4, 6), got "
            f"{tuple(logits.shape)} and {tuple(align.shape)}"
        )
        diff = np.abs(np.asarray(logits) - want_logits)
        dropped = [what for what, slip in slips.items() if np.abs(np.asarray(logits) - slip).max() < 1e-4]
        if diff.max() >= 1e-4 and dropped:
            what, start = dropped[0]
            pytest.fail(f"attention_teacher_forced, {mode}: step 0 is right, but every later step starts again from "
                        f"{start}: carry {what} that attention_decoder_step returns to the next step", pytrace=False)
        wrong_steps = [t for t in range(diff.shape[1]) if diff[:, t].max() >= 1e-4]
        assert diff.max() < 1e-4, (
            f"attention_teacher_forced, {mode}: "
            + (f"only the last step ({wrong_steps[0]}) differs from attention_decoder_step's: the loop stops one step "
               f"short; run every one of the {diff.shape[1]} steps (tf.range(steps), steps = tf.shape(dec_in)[1]): "
               if wrong_steps == [diff.shape[1] - 1] else "")
            + "teacher forcing should be attention_decoder_step at every step, from zeros as the first previous "
            f"attention, carrying the states and the attention ({_where(diff)})"
        )
        diff = np.abs(np.asarray(align) - want_align)
        assert diff.max() < 1e-4, (
            f"attention_teacher_forced, {mode}: alignment history differs from the steps' ({_where(diff)})")


@pytest.mark.needs("n07")
@pytest.mark.covers("model_next_log_probs")
def test_model_next_log_probs_of_the_attention_model_ignores_the_padding():
    layers = _attention_layers()
    x, len_x = np.array([6, 1, 2], np.int32), 3
    padded = np.array([6, 1, 2, 7, 7, 7, 7, 7], np.int32)  # 5 padding steps, padded with 7s (not EOS)
    prefixes = [(4,), (7,)]
    want = np.asarray(n08.model_next_log_probs(layers, x, len_x)(prefixes), np.float64)
    got = np.asarray(n08.model_next_log_probs(layers, padded, len_x)(prefixes), np.float64)
    diff = np.abs(got - want)
    assert diff.max() <= 1e-5, (
        f"model_next_log_probs: with the attention layers, x = {padded.tolist()} with len_x {len_x} should give the "
        f"log-probabilities of x = {x.tolist()} ({_where(diff)}): the padding after len_x must not matter; encode "
        "x[:len_x] only, so the memory the attention layers look at (and its all-True mask) holds no padding"
    )


_GREEDY = {}


def _greedy_decoded():
    """(layers, decode, _encoded(layers), (ids, lengths)): one random attention model and its greedy decoder
    (max_steps 10), traced once and shared by the two greedy tests."""
    if "run" not in _GREEDY:
        layers = _attention_layers(eos_bias=1.0)  # greedy then ends after 4, 4 tokens and runs to the bound on one
        encoded = _encoded(layers)
        decode = n08.make_attention_decoder(layers, max_steps=10)
        ids, lengths = decode(tf.constant(encoded[0]), tf.constant(encoded[1]))
        _GREEDY["run"] = (layers, decode, encoded, (np.asarray(ids), np.asarray(lengths)))
    return _GREEDY["run"]


@pytest.mark.needs("n07")
@pytest.mark.covers("make_attention_decoder", "attention_decoder_step", "build_attention_layers", "LuongAttention")
def test_greedy_decoder_ignores_the_padding():
    layers, decode, (x, lx, _, _, _), (ids, lengths) = _greedy_decoded()
    wide = np.concatenate([x, np.zeros([3, 3], np.int32)], axis=1)  # 3 more padding columns,
    wide[np.arange(9)[None, :] >= lx[:, None]] = 7  # and other padding values
    try:
        wide_ids, wide_lengths = (np.asarray(t) for t in decode(tf.constant(wide), tf.constant(lx)))
    except (tf.errors.InvalidArgumentError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:100]
        pytest.fail(f"make_attention_decoder: on x padded wider than its longest sequence (lengths {lx.tolist()}, 9 "
                    f"columns) it raised {type(exc).__name__}: {first}: the mask must be as wide as the inputs: "
                    "tf.sequence_mask(lengths, maxlen=T) with T = tf.shape(inputs)[1]", pytrace=False)
    for i in range(3):
        same = (int(lengths[i]) == int(wide_lengths[i])
                and ids[i, :lengths[i]].tolist() == wide_ids[i, :wide_lengths[i]].tolist())
        assert same, (
            f"make_attention_decoder: sequence {i} (length {lx[i]}) decodes to {ids[i, :lengths[i]].tolist()}, but to "
            f"{wide_ids[i, :wide_lengths[i]].tolist()} when its padding changes (3 columns wider, padded with 7s): the "
            "attention must not see the padding: the memory mask comes from the encoder lengths, "
            "tf.sequence_mask(lengths, maxlen=T)"
        )


@pytest.mark.needs("n07")
@pytest.mark.covers("make_attention_decoder", "attention_teacher_forced", "attention_decoder_step",
                    "build_attention_layers", "LuongAttention")
def test_greedy_decoder_agrees_with_teacher_forcing():
    layers, _, (x, lx, memory, states, mask), (ids, lengths) = _greedy_decoded()
    print(f"random attention model: greedy lengths {lengths.tolist()} (max 10)")
    assert ids.shape[0] == 3 and 1 <= ids.shape[1] <= 10, (
        f"make_attention_decoder(layers, max_steps=10): ids should be [3, T_out <= 10], got {ids.shape}"
        + (f": the decoder ran {ids.shape[1]} = MAX_DECODE_STEPS steps; pass max_steps on to n07.greedy_decode"
           if ids.shape[1] == n08.MAX_DECODE_STEPS else "")
    )
    dec_in = np.concatenate([np.zeros([3, 1], np.int32), ids[:, :-1]], axis=1)
    logits, _ = n08.attention_teacher_forced(layers, memory, mask, tf.constant(dec_in), states)
    forced = np.argmax(np.asarray(logits), -1)
    for i in range(3):
        n = int(lengths[i])
        assert ids[i, :n].tolist() == forced[i, :n].tolist(), (
            f"make_attention_decoder: sequence {i}: greedy ids {ids[i, :n].tolist()} are not the argmax of teacher forcing on them "
            f"{forced[i, :n].tolist()}: each step must feed back its own argmax and carry (states, previous attention)"
        )


@pytest.mark.needs("n07")
@pytest.mark.covers("make_attention_decoder")
def test_greedy_decoder_traces_once_for_any_batch_and_length():
    _, decode, (x, lx, _, _, _), _ = _greedy_decoded()
    count = getattr(decode, "experimental_get_tracing_count", None)
    assert count is not None, (
        f"make_attention_decoder should return a tf.function, got {type(decode).__name__}: "
        "@tf.function(input_signature=n07.BATCH_SIGNATURE[:2])"
    )
    decode(tf.constant(x[:1, :4]), tf.constant(np.minimum(lx[:1], 4)))  # batch 1, another length
    decode(tf.constant(np.concatenate([x, x], axis=0)), tf.constant(np.concatenate([lx, lx])))  # batch 6
    traces = count()
    assert traces == 1, (
        f"make_attention_decoder: decode was traced {traces} times for 3 batch shapes ([3, {x.shape[1]}], [1, 4], "
        f"[6, {x.shape[1]}]): give the tf.function input_signature=n07.BATCH_SIGNATURE[:2], so one trace serves "
        "every batch size and length (each new trace builds the whole decoding loop again)"
    )


@pytest.mark.covers("HalvingSchedule")
def test_halving_schedule_is_k07s_decay():
    schedule = n08.HalvingSchedule(3e-3, 300)
    steps = [0, 150, 300, 600, 900, 1000, 3000]
    got = np.array([float(schedule(tf.constant(s))) for s in steps])
    def rate(at):
        return np.maximum(3e-3 * 0.5 ** (np.asarray(at, np.float64) / 300.0), 3e-4)

    want = rate(steps)
    why = next((text for close, text in (
        (rate(np.array(steps) + 1), ": yours is each step's next rate (step + 1); the optimizer's iterations count from 0 "
                                    "at the first update, so use step as given"),
        (rate(np.floor(np.array(steps) / 300.0) * 300), ": yours halves in stairs (floor(step / halve_every)); k07's "
                                                          "exponential_decay is smooth, 0.5 ** (step / halve_every)"),
        (3e-3 * 0.5 ** (np.array(steps, np.float64) / 300.0), ": yours goes below lr / 10 = 3e-4: keep the floor, "
                                                               "tf.maximum(rate, learning_rate / 10)"),
    ) if np.allclose(got, close, rtol=1e-5)), "")
    assert np.allclose(got, want, rtol=1e-5), (
        f"HalvingSchedule{why or ':'} (at steps {steps} expected {[f'{v:.3g}' for v in want]}: 3e-3 halved smoothly every "
        f"300 steps, never below 3e-4 = lr / 10; got {[f'{v:.3g}' for v in got]})"
    )


@pytest.mark.timeout(120)  # tracing the step on Keras 2 (TF 2.12-2.15) took 29.7 s on this box at load 3.5
@pytest.mark.needs("n07")
@pytest.mark.covers("make_attention_train_step", "attention_teacher_forced", "attention_decoder_step",
                    "build_attention_layers", "LuongAttention")
def test_make_attention_train_step():
    layers = _attention_layers()
    x, lx, memory, states, mask = _encoded(layers)
    y = np.array([[2, 4, 8, 2, 4, 8, 0], [6, 2, 6, 2, 0, 0, 0], [4, 4, 2, 6, 4, 4, 0]], np.int32)
    ly = np.array([7, 5, 7], np.int32)
    y_in = np.concatenate([np.zeros([3, 1], np.int32), y[:, :-1]], 1)
    logits, _ = n08.attention_teacher_forced(layers, memory, mask, tf.constant(y_in), states)
    want = float(n07.masked_loss(logits, tf.constant(y), tf.constant(ly)))
    before = {id(v): v.numpy().copy() for item in layers for layer in (item if isinstance(item, (list, tuple)) else [item])
              for v in layer.trainable_variables}
    step = n08.make_attention_train_step(layers, keras.optimizers.Adam(1e-2))
    got = float(step(x, lx, y_in, y, ly))
    assert abs(got - want) < 1e-4 * max(1.0, abs(want)), (
        f"the step should return the masked loss of teacher forcing before the update, {want:.5f}, got {got:.5f}"
    )
    frozen = [layer.name for item in layers for layer in (item if isinstance(item, (list, tuple)) else [item])
              if any(np.array_equal(v.numpy(), before[id(v)]) for v in layer.trainable_variables)]
    assert not frozen, f"make_attention_train_step: these layers' weights did not move after one step: {frozen}: take the gradients of EVERY layer"
    assert hasattr(step, "experimental_get_tracing_count"), (
        f"make_attention_train_step: returned a {type(step).__name__}, not a tf.function: every step would run eagerly, "
        "op by op; wrap it in tf.function(input_signature=n07.BATCH_SIGNATURE) as the docstring says"
    )
    count = step.experimental_get_tracing_count()
    x2 = np.array([[5, 2, 7, 4], [3, 3, 0, 0]], np.int32)
    y2 = np.array([[2, 4, 2, 0, 0], [6, 0, 0, 0, 0]], np.int32)
    step(x2, np.array([4, 2], np.int32), np.concatenate([np.zeros([2, 1], np.int32), y2[:, :-1]], 1), y2,
         np.array([3, 1], np.int32))
    assert step.experimental_get_tracing_count() == count, (
        f"make_attention_train_step: a batch of another shape ([2, 4] source, [2, 5] target) traced the step again: use "
        "tf.function(input_signature=n07.BATCH_SIGNATURE) so bucketed batches of every length share one graph"
    )


@pytest.mark.needs("n07", "k07")
@pytest.mark.covers("train")
def test_train_passes_its_arguments_on(monkeypatch, capsys):
    """train's helpers replaced by quick stand-ins (the real step traces for seconds): one call whose every argument
    differs from its default, read back from the schedule it makes, the batches it feeds and what it evaluates."""
    import sys

    from tfkata.differential import reference

    module = sys.modules[n08.train.__module__]
    schedules, batches = [], []
    real_schedule = module.HalvingSchedule

    def schedule(learning_rate, halve_every):
        schedules.append((learning_rate, halve_every))
        return real_schedule(learning_rate, halve_every)

    def make_step(layers, optimizer):
        def step(x, len_x, decoder_inputs, decoder_targets, len_y):
            batches.append(np.array(x))
            return tf.constant(float(len(batches)), tf.float32)
        return step

    def make_decoder(layers, max_steps=None):
        return lambda x, lx: (tf.zeros([len(x), 1], tf.int32), tf.ones([len(x)], tf.int32))

    monkeypatch.setattr(module, "HalvingSchedule", schedule)
    monkeypatch.setattr(module, "build_attention_layers", lambda *args, **kwargs: "the layers")
    monkeypatch.setattr(module, "make_attention_train_step", make_step)
    monkeypatch.setattr(module, "make_attention_decoder", make_decoder)
    capsys.readouterr()
    result = n08.train(steps=3, learning_rate=0.02, halve_every=7, batch_size=5, eval_samples=4, seed=4, num_print=2)
    printed = capsys.readouterr().out
    assert schedules == [(0.02, 7)], (
        f"train(learning_rate=0.02, halve_every=7): HalvingSchedule was made with {schedules}: Adam "
        "n07.make_optimizer(HalvingSchedule(learning_rate, halve_every)), with the arguments"
    )
    k07_ref = reference("k07")
    rng = np.random.RandomState(4)
    queue = k07_ref.bucketed_batches(*k07_ref.generate_data(32 * 5, True, rng), batch_size=5, rng=rng)
    want = [queue[-1][0], queue[-2][0], queue[-3][0]]
    same = len(batches) == 3 and all(b.shape == w.shape and np.array_equal(b, w) for b, w in zip(batches, want))
    assert same, (
        f"train(steps=3, batch_size=5, seed=4): expected 3 steps on the batches popped from the end of "
        f"k07.bucketed_batches(*k07.generate_data(32 * 5, True, rng), batch_size=5, rng=rng), rng = "
        f"np.random.RandomState(4), of shapes {[w.shape for w in want]}, got {len(batches)} steps of "
        f"{[b.shape for b in batches[:4]]}: use the steps and batch_size arguments"
    )
    want_x = k07_ref.generate_data(4, True, np.random.RandomState(5))[0]
    got_x = np.asarray(result["eval"][0]) if isinstance(result, dict) and "eval" in result else None
    assert got_x is not None and got_x.shape == want_x.shape and np.array_equal(got_x, want_x), (
        "train(eval_samples=4, seed=4): evaluate on k07.generate_data(eval_samples, True, np.random.RandomState(seed "
        f"+ 1)), got x of shape {None if got_x is None else got_x.shape}, expected {want_x.shape}"
    )
    shown = printed_examples(printed, want_x, k07_ref.generate_data(4, True, np.random.RandomState(5))[2])
    assert shown == 2, (
        f"train(num_print=2): print 2 of the evaluation sequences as k07 does, it printed {shown} of them: use the "
        "num_print argument"
    )


# --------------------------------------------------------------------------- differential checks (reference)
# The learner's functions against solutions/ on generated cases, smallest first (tfkata.differential).
# Functions that take layers get the REFERENCE's layers with fixed weights (E 4, H 3: every matrix
# non-square), so each check compares one function; LuongAttention gets the reference's weights copied
# in by order once the shapes agree. The tf.functions run with tf.config.run_functions_eagerly(True):
# the same numbers without tracing twice more (their tracing is the concept tests' business above).
# Checks of functions whose code calls your n07 wait for n07, as the tests above do.
import contextlib  # noqa: E402
import functools  # noqa: E402

from tfkata.differential import Case, compare, eager_outputs, reference  # noqa: E402

DE, DH = 4, 3  # embedding and hidden sizes of the differential cases


def _ref():
    return reference("n08")


def _ref07():
    return reference("n07")


def _layers_of(layers):
    for item in layers:
        yield from (item if isinstance(item, (list, tuple)) else [item])


def _fixed_weights(layers, seed, scale=1.0, eos_bias=0.0):
    rng = np.random.RandomState(seed)
    for layer in _layers_of(layers):
        layer.set_weights([rng.uniform(-scale, scale, np.shape(w)).astype(np.float32) for w in layer.get_weights()])
    kernel, bias = layers.output_layer.get_weights()
    bias[0] += eos_bias
    layers.output_layer.set_weights([kernel, bias])
    return layers


@functools.lru_cache(maxsize=None)
def _shared_attention_layers(num_layers=2, seed=6, scale=1.0, eos_bias=0.0):
    """The reference's attention layers with fixed weights, shared by the cases that only read them."""
    return _fresh_attention_layers(num_layers, seed, scale, eos_bias)


def _fresh_attention_layers(num_layers=2, seed=6, scale=1.0, eos_bias=0.0):
    layers = _ref().build_attention_layers(vocab_size=V, embed_size=DE, hidden_units=DH, num_layers=num_layers)
    return _fixed_weights(layers, seed, scale=scale, eos_bias=eos_bias)


@functools.lru_cache(maxsize=None)
def _shared_seq2seq_layers(seed=5):
    layers = _ref07().build_layers(vocab_size=V, embed_size=DE, hidden_units=DH, num_layers=2)
    return _fixed_weights(layers, seed, eos_bias=0.7)


@contextlib.contextmanager
def _eagerly():
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(False)


def _rand(shape, seed, scale=1.0):
    return (np.random.RandomState(seed).standard_normal(shape) * scale).astype(np.float32)


def _mask(lengths, width):
    return np.arange(width)[None, :] < np.asarray(lengths)[:, None]


def _padded(lengths, width, seed):
    rng = np.random.RandomState(seed)
    x = np.zeros([len(lengths), width], np.int32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.randint(1, V, n)
    return x, np.asarray(lengths, np.int32)


GENERAL_SCORES_CASES = [
    Case("query [1, 1] and keys [1, 1, 1]", (_rand([1, 1], 1), _rand([1, 1, 1], 2))),
    Case("query [2, 4] and keys [2, 3, 4] with negative values", (_rand([2, 4], 3), _rand([2, 3, 4], 4))),
    Case("query [3, 2] and keys [3, 5, 2], rows that differ", (_rand([3, 2], 5), _rand([3, 5, 2], 6))),
]


@pytest.mark.differential
@pytest.mark.covers("general_scores")
def test_general_scores_matches_reference():
    def run(mod, case):
        query, keys = case.args
        return eager_outputs(lambda: mod.general_scores(tf.constant(query), tf.constant(keys)))

    compare("general_scores", n08, _ref(), GENERAL_SCORES_CASES, run,
            hint="scores[b, s] = query[b] · keys[b, s] (tf.einsum('bh,bth->bt', query, keys))")


MASKED_SOFTMAX_CASES = [
    Case("scores [1, 1] with mask [[True]]", (_rand([1, 1], 11), [[True]])),
    Case("scores [2, 4] with lengths [4, 1] (a row with one real position)", (_rand([2, 4], 12, 3.0), _mask([4, 1], 4))),
    Case("equal scores [2, 5] (ties) with lengths [3, 5]", (np.zeros([2, 5], np.float32), _mask([3, 5], 5))),
    Case("scores [3, 6] padded wider than the longest row, lengths [4, 2, 5], large padded scores",
         (np.where(_mask([4, 2, 5], 6), _rand([3, 6], 13, 2.0), 50.0).astype(np.float32), _mask([4, 2, 5], 6))),
]


@pytest.mark.differential
@pytest.mark.covers("masked_softmax")
def test_masked_softmax_matches_reference():
    def run(mod, case):
        scores, mask = case.args
        return eager_outputs(lambda: mod.masked_softmax(tf.constant(scores), tf.constant(mask)))

    compare("masked_softmax", n08, _ref(), MASKED_SOFTMAX_CASES, run,
            hint="tf.where(mask, scores, -inf), then tf.nn.softmax over the last axis (the encoder positions)")


_KEPT_WEIGHTS = {}


def _give_reference_weights(mod, case, what, variables):
    """The reference's run draws seeded weights and keeps them; the learner's run gets the same values, by the
    order of trainable_weights, once the shapes agree."""
    shapes = [[int(d) for d in v.shape] for v in variables]
    if mod is _ref():
        rng = np.random.RandomState(71)
        _KEPT_WEIGHTS[case.label] = [(rng.standard_normal(s) * 0.7).astype(np.float32) for s in shapes]
    values = _KEPT_WEIGHTS[case.label]
    want = [list(v.shape) for v in values]
    if shapes != want:
        raise AssertionError(f"{what}: your trainable weights have shapes {shapes}, the reference's {want} (in the "
                             "order of trainable_weights), so they cannot get the same weights")
    for v, value in zip(variables, values):
        v.assign(value)


def _run_luong(mod, case):
    units, lengths, width, h_mem, seed = case.args
    query, memory = _rand([len(lengths), units], seed), _rand([len(lengths), width, h_mem], seed + 1)
    mask = tf.constant(_mask(lengths, width))

    def call():
        layer = mod.LuongAttention(units)
        layer(tf.constant(query), tf.constant(memory), mask)
        _give_reference_weights(mod, case, f"LuongAttention({units})", layer.trainable_weights)
        return list(layer(tf.constant(query), tf.constant(memory), mask))

    return eager_outputs(call)


LUONG_CASES = [
    Case("LuongAttention(1): query [1, 1], memory [1, 1, 1], mask [[True]]", (1, [1], 1, 1, 21)),
    Case("LuongAttention(3): query [2, 3], memory [2, 4, 5] (H_mem 5), lengths [4, 2]", (3, [4, 2], 4, 5, 22)),
    Case("LuongAttention(2): query [3, 2], memory [3, 6, 2] padded wider than lengths [3, 1, 5]",
         (2, [3, 1, 5], 6, 2, 23)),
]


@pytest.mark.differential
@pytest.mark.covers("LuongAttention")
def test_luong_attention_matches_reference():
    compare("LuongAttention", n08, _ref(), LUONG_CASES, _run_luong,
            hint="keys = memory_layer(memory); alignments = masked_softmax(general_scores(query, keys), mask); "
                 "context of the MEMORY; attention = tanh(attention_layer([context ; query]))")


KERAS_ATTENTION_CASES = [
    Case("query [1, 2], memory [1, 2, 3], keys [1, 2, 2], mask [[True, False]]",
         (_rand([1, 2], 31), _rand([1, 2, 3], 32), _rand([1, 2, 2], 33), [[True, False]])),
    Case("query [2, 3], memory [2, 4, 5], keys [2, 4, 3], lengths [4, 2]",
         (_rand([2, 3], 34), _rand([2, 4, 5], 35), _rand([2, 4, 3], 36), _mask([4, 2], 4))),
    Case("query [3, 2], memory = keys [3, 5, 2] (a dot score), lengths [1, 5, 3]",
         (_rand([3, 2], 37), _rand([3, 5, 2], 38), _rand([3, 5, 2], 38), _mask([1, 5, 3], 5))),
]


@pytest.mark.differential
@pytest.mark.covers("keras_attention")
def test_keras_attention_matches_reference():
    def run(mod, case):
        query, memory, keys, mask = (tf.constant(a) for a in case.args)
        return eager_outputs(lambda: list(mod.keras_attention(query, memory, keys, mask)))

    compare("keras_attention", n08, _ref(), KERAS_ATTENTION_CASES, run,
            hint="keras.layers.Attention()([query[:, None, :], memory, keys], mask=[None, mask], "
                 "return_attention_scores=True), the length-1 query axis squeezed away")


def _run_build_attention_layers(mod, case):
    layers = mod.build_attention_layers(*case.args)
    out = {}
    for field, item in zip(type(layers)._fields, layers):
        group = item if isinstance(item, (list, tuple)) else [item]
        out[field] = [{"type": type(layer).__name__, "weights": sorted(list(np.shape(w)) for w in layer.get_weights())}
                      for layer in group]
    return out


BUILD_ATTENTION_CASES = [
    Case("build_attention_layers(5, 2, 3, 1): V 5, E 2, H 3, one layer", (5, 2, 3, 1)),
    Case("build_attention_layers(7, 4, 3, 3): V 7, E 4, H 3, three layers", (7, 4, 3, 3)),
]


@pytest.mark.differential
@pytest.mark.needs("n07")
@pytest.mark.covers("build_attention_layers")
def test_build_attention_layers_matches_reference():
    compare("build_attention_layers", n08, _ref(), BUILD_ATTENTION_CASES, _run_build_attention_layers,
            hint="n07.build_layers with ALL the arguments; num_layers LSTMCells (the first built for E + H inputs); "
                 "LuongAttention(H) built for (None, None, H) and (None, 2H); n07's output layer")


def _decoder_inputs(lengths, width, batch_seed):
    """memory [B, T, H], mask, the states of 2 layers and a previous attention, all random (the layers' own)."""
    batch = len(lengths)
    states = [(tf.constant(_rand([batch, DH], batch_seed + 2 * i, 0.5)), tf.constant(_rand([batch, DH], batch_seed + 2 * i + 1, 0.5)))
              for i in range(2)]
    return (tf.constant(_rand([batch, width, DH], batch_seed + 9)), tf.constant(_mask(lengths, width)), states,
            tf.constant(_rand([batch, DH], batch_seed + 10, 0.5)))


ATTENTION_STEP_CASES = [
    Case("tokens [0] (GO), memory [1, 1, 3], mask [[True]]", ([0], [1], 1, 41)),
    Case("tokens [4, 4, 9] (a repeated id), memory [3, 5, 3] padded wider than lengths [4, 1, 3]", ([4, 4, 9], [4, 1, 3], 5, 42)),
]


@pytest.mark.differential
@pytest.mark.covers("attention_decoder_step")
def test_attention_decoder_step_matches_reference():
    def run(mod, case):
        tokens, lengths, width, seed = case.args
        memory, mask, states, prev = _decoder_inputs(lengths, width, seed)
        return eager_outputs(lambda: mod.attention_decoder_step(_shared_attention_layers(), memory, mask,
                                                                tf.constant(tokens, tf.int32), states, prev))

    compare("attention_decoder_step", n08, _ref(), ATTENTION_STEP_CASES, run,
            hint="the first cell reads [decoder_embedding(tokens) ; prev_attention]; each cell once, feeding the next; "
                 "the top output queries layers.attention; logits = output_layer(attention)")


TEACHER_FORCED_CASES = [
    Case("decoder inputs [[0]] (one step), memory [1, 1, 3]", ([[0]], [1], 1, 51)),
    Case("decoder inputs [3, 4] with repeated ids, memory [3, 5, 3] padded wider than lengths [4, 1, 3]",
         ([[0, 2, 2, 6], [0, 8, 8, 0], [0, 4, 0, 0]], [4, 1, 3], 5, 52)),
]


@pytest.mark.differential
@pytest.mark.covers("attention_teacher_forced")
def test_attention_teacher_forced_matches_reference():
    def run(mod, case):
        tokens, lengths, width, seed = case.args
        memory, mask, states, _ = _decoder_inputs(lengths, width, seed)
        return eager_outputs(lambda: list(mod.attention_teacher_forced(_shared_attention_layers(), memory, mask,
                                                                       tf.constant(tokens, tf.int32), states)))

    compare("attention_teacher_forced", n08, _ref(), TEACHER_FORCED_CASES, run, atol=1e-5,
            hint="attention_decoder_step at every step of tf.range(T_dec), from zeros as the previous attention, "
                 "carrying the states and the attention; logits [B, T_dec, V], alignments [B, T_dec, T_enc]")


def _run_attention_decoder(mod, case):
    lengths, width, seed = case.args
    x, lx = _padded(lengths, width, seed)
    # Sharp weights and a nudge towards EOS: the rows decode differently and stop at different steps (measured:
    # ids [[9, 0, 0, 0, 0, 0], [9, 0, 0, 0, 0, 0], [4, 4, 4, 4, 4, 4]], lengths [2, 2, 6] on the second case).
    with _eagerly():
        decode = mod.make_attention_decoder(_shared_attention_layers(seed=4, scale=2.0, eos_bias=1.5), max_steps=6)
        return eager_outputs(lambda: list(decode(tf.constant(x), tf.constant(lx))))


ATTENTION_DECODER_CASES = [
    Case("x of shape [1, 1] with lengths [1], max_steps 6", ([1], 1, 61)),
    Case("x of shape [3, 6] padded wider than its longest sequence, lengths [5, 1, 3], max_steps 6", ([5, 1, 3], 6, 62)),
]


@pytest.mark.differential
@pytest.mark.needs("n07")
@pytest.mark.covers("make_attention_decoder")
def test_make_attention_decoder_matches_reference():
    compare("make_attention_decoder", n08, _ref(), ATTENTION_DECODER_CASES, _run_attention_decoder,
            hint="n07.encode, the mask tf.sequence_mask(lengths, maxlen=T) with T the padded width, then "
                 "n07.greedy_decode with the state (states, previous attention), zeros to start")


HALVING_CASES = [
    Case("HalvingSchedule(1.0, 2) at Python int steps 0..8", ((1.0, 2), list(range(9)), None)),
    Case("HalvingSchedule(3e-3, 300) at int64 steps 0, 1, 299, 300, 450, 997, 998, 5000 (the optimizer's iterations)",
         ((3e-3, 300), [0, 1, 299, 300, 450, 997, 998, 5000], tf.int64)),
]


@pytest.mark.differential
@pytest.mark.covers("HalvingSchedule")
def test_halving_schedule_matches_reference():
    def run(mod, case):
        (lr, halve_every), steps, dtype = case.args
        schedule = mod.HalvingSchedule(lr, halve_every)
        rates = [float(schedule(s if dtype is None else tf.constant(s, dtype))) for s in steps]
        return {"rates": rates, "config": schedule.get_config()}

    compare("HalvingSchedule", n08, _ref(), HALVING_CASES, run,
            hint="max(lr * 0.5 ** (step / halve_every), lr / 10), smooth, step cast to float; get_config gives "
                 "learning_rate and halve_every")


def _run_attention_train_step(mod, case):
    steps = case.args
    layers = _fresh_attention_layers(seed=81)  # the step changes them
    x, lx = _padded([3, 1], 4, 82)
    y = np.array([[2, 4, 0], [6, 0, 0]], np.int32)
    ly = np.array([3, 2], np.int32)
    y_in = np.concatenate([np.zeros([2, 1], np.int32), y[:, :-1]], 1)
    with _eagerly():
        step = mod.make_attention_train_step(layers, keras.optimizers.Adam(learning_rate=0.05, epsilon=1e-8))
        losses = [step(x, lx, y_in, y, ly) for _ in range(steps)]
        return eager_outputs(lambda: {"losses": losses, "weights after": [l.get_weights() for l in _layers_of(layers)]})


ATTENTION_TRAIN_CASES = [
    Case("two steps on x [2, 4] padded wider than lengths [3, 1], targets [2, 3] with lengths [3, 2]", 2),
]


@pytest.mark.differential
@pytest.mark.needs("n07")
@pytest.mark.covers("make_attention_train_step")
def test_make_attention_train_step_matches_reference():
    compare("make_attention_train_step", n08, _ref(), ATTENTION_TRAIN_CASES, _run_attention_train_step,
            atol=1e-5, rtol=1e-4,
            hint="under a tape: n07.encode, the mask, attention_teacher_forced, n07.masked_loss; the dense gradients "
                 "of every layer (attention included) applied; the loss before the update")


def _tie_table():
    """Tokens 0 (EOS)..3, every probability a power of 2 (exact ties in float64): width 2 keeps (1,) 0.5 and
    (0,) 0.25 (EOS ties with 2 at 0.25, the earlier wins); then the finished (0,) ties with (1, 0) at 0.25."""
    return ({(): {0: 0.25, 1: 0.5, 2: 0.125, 3: 0.125}, (1,): {0: 0.5, 1: 0.125, 2: 0.125, 3: 0.25}}, UNIFORM_4)


BEAM_CASES = [
    Case("width 1, max_steps 1 on the trap table", ("trap", 1, 1)),
    Case("width 2, max_steps 4 on the trap table", ("trap", 2, 4)),
    Case("width 6 (more than the 4 tokens), max_steps 3 on the trap table", ("trap", 6, 3)),
    Case("width 2, max_steps 3 on a table with exact ties (a finished hypothesis ties with an extension)", ("ties", 2, 3)),
    Case("width 3, max_steps 5 on uniform probabilities (every candidate ties)", ("uniform", 3, 5)),
]


@pytest.mark.differential
@pytest.mark.covers("beam_search")
def test_beam_search_matches_reference():
    def run(mod, case):
        kind, width, max_steps = case.args
        table, default = {"trap": (BEAM_TRAP, UNIFORM_4), "ties": _tie_table(), "uniform": ({}, UNIFORM_4)}[kind]
        found = mod.beam_search(table_model(table, default), beam_width=width, max_steps=max_steps)
        return [(tuple(int(t) for t in tokens), float(score)) for tokens, score in found]

    compare("beam_search", n08, _ref(), BEAM_CASES, run, atol=1e-9, rtol=1e-9,
            hint="candidates = the finished hypotheses first, then the unfinished ones extended row by row; "
                 "tf.math.top_k(scores, k=min(beam_width, n)) (ties: the earlier candidate)")


def _run_next_log_probs(mod, case):
    kind, x, len_x, prefixes = case.args
    layers = _shared_attention_layers() if kind == "attention" else _shared_seq2seq_layers()
    if kind == "attention" and hasattr(mod, "AttentionLayers"):
        layers = mod.AttentionLayers(*layers)  # the module's own tuple class: isinstance must hold in katas/ too
    next_log_probs = mod.model_next_log_probs(layers, np.asarray(x, np.int32), len_x)
    return [np.asarray(next_log_probs(p)) for p in prefixes]


NEXT_LOG_PROBS_CASES = [
    Case("n07's layers, x [4] with len_x 1 (padded), prefixes [()]", ("n07", [5, 0, 0, 0], 1, [[()]])),
    Case("n07's layers, x [6] with len_x 4, prefixes [()], then [(2,), (2,)] (repeated), then [(1, 2), (2, 1), (3, 3)]",
         ("n07", [3, 2, 5, 4, 0, 0], 4, [[()], [(2,), (2,)], [(1, 2), (2, 1), (3, 3)]])),
    Case("the attention layers, x [6] with len_x 3 (padded), prefixes [()], then [(4,), (7,)]",
         ("attention", [6, 1, 2, 0, 0, 0], 3, [[()], [(4,), (7,)]])),
]


@pytest.mark.differential
@pytest.mark.needs("n07")
@pytest.mark.covers("model_next_log_probs")
def test_model_next_log_probs_matches_reference():
    compare("model_next_log_probs", n08, _ref(), NEXT_LOG_PROBS_CASES, _run_next_log_probs, atol=1e-5,
            hint="encode x[:len_x] once; per call repeat the states (and the memory) K times, run the decoder on "
                 "[GO, *prefix] and return the log-softmax of the LAST step, numpy [K, V]")


# --------------------------------------------------------------------------- training (k08's budget)
# Graded training, k08's budget: 1000 steps of bucketed batches of 64 on the copy task, Adam 3e-3 halved every 300
# steps (floor 3e-4), seed 1234, exact match on 500 fresh sequences. Measured (shared 2-core box, load 3-4), n08 then
# k08's reference on the same budget and box: TF 2.21 / Keras 3.15: n08 91.8 % in 53-60 s (seeds 1, 2: 89.8 %,
# 93.0 %), k08 87.6 % in 40 s; TF 2.12 / Keras 2.12: n08 92.8 % in 44-55 s, k08 90.0 % in 41 s. Each repeats per line.
# Re-measured with today's reference: n08 91.6 % (TF 2.21), 93.2 % (2.12); 57-63 s CPU (about 100-150 s wall, load 6-9).
TRAIN_STEPS = 1000
MIN_ACCURACY = 0.75  # as k08
MIN_ALIGNED = 0.80  # as k08


@pytest.fixture(scope="module")
def trained():
    return n08.train(steps=TRAIN_STEPS, num_print=0)


def _alignments(layers, x, lx, predictions):
    """The greedy run's alignments: teacher forcing on its own predictions gives the same steps."""
    memory, states = n07.encode(layers, tf.constant(x), tf.constant(lx))
    dec_in = np.concatenate([np.zeros([len(x), 1], np.int32), predictions[:, :-1]], axis=1)
    _, align = n08.attention_teacher_forced(layers, memory, tf.sequence_mask(lx, x.shape[1]), tf.constant(dec_in), states)
    return np.asarray(align)


TRAIN_COVERS = ("train", "make_attention_train_step", "make_attention_decoder", "HalvingSchedule",
                "attention_teacher_forced", "attention_decoder_step", "build_attention_layers", "LuongAttention",
                "general_scores", "masked_softmax")


@pytest.mark.training
@pytest.mark.needs("n07", "k07")
@pytest.mark.covers(*TRAIN_COVERS)
@pytest.mark.timeout(300)
def test_train_seeds_itself_and_evaluates_fresh_sequences():
    """Two one-step runs with seed=5, the global seed set differently before each: the same first loss (train
    seeds itself) and the evaluation sequences k07.generate_data(eval_samples, True, RandomState(seed + 1))."""
    from tfkata.differential import reference

    runs = []
    for outside in (1, 2):
        keras.utils.set_random_seed(outside)
        runs.append(n08.train(steps=1, batch_size=4, eval_samples=3, seed=5, num_print=0))
    want_x = reference("k07").generate_data(3, True, np.random.RandomState(6))[0]
    got_x = np.asarray(runs[0]["eval"][0])
    assert got_x.shape == want_x.shape and np.array_equal(got_x, want_x), (
        f"train(seed=5, eval_samples=3): evaluate on k07.generate_data(eval_samples, True, "
        f"np.random.RandomState(seed + 1)), fresh sequences of their own, got x {got_x.tolist()}, expected "
        f"{want_x.tolist()}"
    )
    first = [float(r["losses"][0]) for r in runs]
    assert first[0] == first[1], (
        f"train(seed=5): the first step's loss depends on the global seed set before it ({first[0]:.6f} after "
        f"set_random_seed(1), {first[1]:.6f} after 2): call keras.utils.set_random_seed(seed) first, so the run is "
        "the same every time"
    )


@pytest.mark.training
@pytest.mark.needs("n07", "k07")
@pytest.mark.covers(*TRAIN_COVERS)
@pytest.mark.timeout(600)
def test_attention_learns_the_copy_task(trained):
    for key in ("accuracy", "steps", "seconds", "layers", "eval", "losses"):
        assert key in trained, f"train() should return a dict with {key!r}, got {sorted(trained)}"
    acc = trained["accuracy"]
    print(f"n08 attention, copy task: {acc:.1%} exact match after {trained['steps']} steps ({trained['seconds']:.1f} s)")
    assert trained["steps"] == TRAIN_STEPS, f"train should report steps={TRAIN_STEPS}, got {trained['steps']}"
    chunks = [round(float(np.mean(trained["losses"][k : k + 100])), 3) for k in range(0, len(trained["losses"]), 100)]
    assert acc >= MIN_ACCURACY, (
        f"expected >= {MIN_ACCURACY:.0%} exact match on the copy task after {TRAIN_STEPS} steps (the reference reaches "
        f"about 92 % on TF 2.12 and 2.21), got {acc:.1%}; the pieces pass their unit tests, so compare train() with its "
        f"docstring (copy_sequence=True, HalvingSchedule). Loss per 100 steps: {chunks}"
    )


@pytest.mark.training
@pytest.mark.needs("n07", "k07")
@pytest.mark.covers(*TRAIN_COVERS, "plot_attention")
@pytest.mark.timeout(600)
def test_trained_attention_heatmap(trained):
    layers = trained["layers"]
    x, y, lx, ly, preds = trained["eval"]
    x, y, lx, ly, preds = x[:100], y[:100], lx[:100], ly[:100], preds[:100]
    align = _alignments(layers, x, lx, preds)
    hits = total = 0
    for i in range(len(x)):
        if preds[i, : ly[i]].tolist() != y[i, : ly[i]].tolist():
            continue
        evens_at = np.flatnonzero(x[i, : lx[i]] % 2 == 0)
        for t in range(ly[i] - 1):
            hits += int(align[i, t].argmax() == evens_at[t % len(evens_at)])
            total += 1
    share = hits / max(total, 1)
    print(f"strongest weight on the copied source position: {share:.1%} of {total} output steps")
    assert total > 0, "no sequence of the first 100 was decoded right: nothing to look at"
    assert share >= MIN_ALIGNED, (
        f"expected the copied source position to get the largest weight on >= {MIN_ALIGNED:.0%} of output steps, got "
        f"{share:.1%}: the alignments should be [B, T_dec, T_enc] in decoding order"
    )
    i = int(np.argmax(ly[:20]))
    n = int(ly[i])
    path = n08.plot_attention(x[i, : lx[i]], preds[i, :n], align[i, :n, : lx[i]], "trained_attention.png")
    width, height = _png_size(path)
    print(f"heatmap {path} ({width}x{height} px) for {x[i, : lx[i]].tolist()} -> {preds[i, :n].tolist()}")


@pytest.mark.training
@pytest.mark.needs("n07", "k07")
@pytest.mark.covers("beam_search", "model_next_log_probs", *TRAIN_COVERS)
@pytest.mark.timeout(600)
def test_beam_search_on_the_trained_model(trained):
    layers = trained["layers"]
    x, y, lx, ly, greedy = trained["eval"]
    # 10 sequences: the eager decoder re-runs every prefix, 0.1-2.8 s CPU a sequence (up to 8 s wall on a loaded
    # 2-core box); the first 20 took 24 s CPU, the first 10 15 s. Measured: beam 8/10, greedy 8/10 on TF 2.21
    # (first 20: 18/20, 17/20), 10/10 and 9/10 on 2.12. model_next_log_probs' own unit and differential tests check it exactly.
    n = 10
    right_beam = right_greedy = 0
    for i in range(n):
        best = n08.beam_search(n08.model_next_log_probs(layers, x[i], lx[i]), beam_width=3, max_steps=2 * 24)
        right_beam += [int(t) for t in best[0][0]] == y[i, : ly[i]].tolist()
        right_greedy += greedy[i, : ly[i]].tolist() == y[i, : ly[i]].tolist()
    print(f"beam width 3: {right_beam}/{n} exact, greedy {right_greedy}/{n}")
    assert right_beam >= right_greedy - 1, (
        f"beam search (width 3) got {right_beam}/{n} right where greedy got {right_greedy}/{n}: model_next_log_probs "
        "should return the log-softmax of the LAST decoder step of the attention decoder for each prefix"
    )
