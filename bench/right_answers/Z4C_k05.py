# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run k05        (or: pytest tests/test_k05_char_lm.py)
# Generated from solutions/k05_char_lm.py by `python -m tfkata.stubs k05`; `kata reset k05` restores it.
"""k05 · A character language model (RNN：字符语言模型).

The tutorial's RNN section, adapted from the Udacity ``6_lstm`` notebook: a model reads text one
character at a time and predicts the next one. You write every piece by hand, top-down as the slide
goes: the vocabulary (27 symbols), a batch generator that cuts the text into parallel segments and
remembers where each one stopped, an LSTM cell written from its gate equations, the model unrolled
for ``num_unrollings`` steps whose last output and state are saved in variables so the next batch
continues where this one stopped, gradient clipping and a decaying learning rate, perplexity, and
sampling new text from a one-step copy of the model.

Everything is ``tf.compat.v1`` graph mode, as in 2018: the tests build your graph inside a fresh
``tf.Graph`` and run it in a ``tf.compat.v1.Session``. The harness supplies the text
(``tfkata.data.text``: text8 when present, Python's help texts offline, and a synthetic corpus whose
lowest possible perplexity is known exactly).
"""
import random
import string
import warnings

import numpy as np
import tensorflow as tf

VOCABULARY_SIZE = len(string.ascii_lowercase) + 1  # [a-z] + ' ' = 27
FIRST_LETTER = ord(string.ascii_lowercase[0])
BATCH_SIZE = 64
NUM_UNROLLINGS = 10
NUM_NODES = 64
NUM_STEPS = 7001  # the tutorial's full schedule on text8
SUMMARY_FREQUENCY = 100
SAMPLE_FREQUENCY = 1000  # samples every 10 summaries, as the tutorial
GATES = ("i", "f", "c", "o")  # input gate, forget gate, cell update ("memory cell"), output gate


# --------------------------------------------------------------------------- vocabulary & batches
def char2id(char):
    """The id of one character: ``' '`` -> 0, ``'a'`` -> 1, ..., ``'z'`` -> 26.

    Any other character (``'ï'``, ``'A'``, a digit) is unexpected: warn with ``warnings.warn``
    (a ``UserWarning`` whose message contains the character) and return 0, as the slide does.
    Returns a Python ``int``.
    """
    if char in string.ascii_lowercase:
        return ord(char) - FIRST_LETTER + 1
    elif char == ' ':
        return 0
    else:
        warnings.warn('Unexpected character: %s' % char)
        return 0


def id2char(dictid):
    """The character of an id: 0 -> ``' '``, 1..26 -> ``'a'``..``'z'`` (inverse of :func:`char2id`)."""
    if dictid > 0:
        return chr(dictid + FIRST_LETTER - 1)
    else:
        return ' '


class BatchGenerator:
    """Cuts ``text`` into ``batch_size`` equal segments and walks through all of them in step.

    Row ``b`` of every batch reads segment ``b``: its cursor starts at ``b * (len(text) // batch_size)``
    and moves one character per batch, wrapping to the start of the text after its last character.
    """

    def __init__(self, text, batch_size, num_unrollings):
        """Keep the text and sizes, set the ``batch_size`` cursors, and read the first batch.

        Attributes the tests read: ``_cursor`` (``batch_size`` ints, a list or an array: the next position
        of each row) and ``_last_batch`` (the batch read here, which the first :meth:`next` returns
        first).
        """
        self._text = text
        self._text_size = len(text)
        self._batch_size = batch_size
        self._num_unrollings = num_unrollings
        segment = self._text_size // batch_size
        self._cursor = [offset * segment for offset in range(batch_size)]
        self._last_batch = self._next_batch()

    def _next_batch(self):
        """One batch from the cursors: a float32 one-hot array ``[batch_size, 27]``, then every cursor +1.

        Row ``b`` is the one-hot id of the character under cursor ``b``; a cursor past the end of
        the text wraps to 0.
        """
        batch = np.zeros(shape=(self._batch_size, VOCABULARY_SIZE), dtype=np.float32)
        for b in range(self._batch_size):
            batch[b, char2id(self._text[self._cursor[b]])] = 1.0
            self._cursor[b] = (self._cursor[b] + 1) % self._text_size
        return batch

    def next(self):
        """A list of ``num_unrollings + 1`` batches ``[batch_size, 27]``.

        The first is the last batch of the previous call (so inputs and labels overlap by one and no
        character pair is skipped between calls), followed by ``num_unrollings`` new batches.
        """
        batches = [self._last_batch]
        for step in range(self._num_unrollings):
            batches.append(self._next_batch())
        self._last_batch = batches[-1]
        return batches


def characters(probabilities):
    """The most likely character of every row of a ``[N, 27]`` one-hot or probability array.

    Returns a list of ``N`` one-character strings (``argmax`` of each row, through :func:`id2char`).
    """
    return [id2char(c) for c in np.argmax(probabilities, 1)]


def batches2string(batches):
    """Turn a list of ``[B, 27]`` batches back into ``B`` strings, one per row, read across the batches.

    Row ``b`` of the result is ``characters(batches[0])[b] + characters(batches[1])[b] + ...``.
    """
    s = [''] * batches[0].shape[0]
    for b in batches:
        s = [''.join(x) for x in zip(s, characters(b))]
    return s


# --------------------------------------------------------------------------- the model
def create_parameters(vocabulary_size=VOCABULARY_SIZE, num_nodes=NUM_NODES):
    """The LSTM's and the classifier's trainable variables, as the slide declares them.

    Returns a dict of ``tf.Variable`` (float32). For each gate ``g`` in ``i`` (input), ``f`` (forget),
    ``c`` (memory cell update), ``o`` (output): ``gx`` ``[vocabulary_size, num_nodes]`` (from the
    input), ``gm`` ``[num_nodes, num_nodes]`` (from the previous output), ``gb`` ``[1, num_nodes]``
    (bias) — keys ``ix, im, ib, fx, fm, fb, cx, cm, cb, ox, om, ob``; plus the classifier ``w``
    ``[num_nodes, vocabulary_size]`` and ``b`` ``[vocabulary_size]``.

    Weights start as the tutorial's ``truncated_normal(shape, -0.1, 0.1)`` (positionally that is
    mean -0.1, stddev 0.1), biases as zeros.
    """
    p = {}
    for g in GATES:
        p[g + "x"] = tf.Variable(tf.random.truncated_normal([vocabulary_size, num_nodes], -0.1, 0.1))
        p[g + "m"] = tf.Variable(tf.random.truncated_normal([num_nodes, num_nodes], -0.1, 0.1))
        p[g + "b"] = tf.Variable(tf.zeros([1, num_nodes]))
    p["w"] = tf.Variable(tf.random.truncated_normal([num_nodes, vocabulary_size], -0.1, 0.1))
    p["b"] = tf.Variable(tf.zeros([vocabulary_size]))
    return p


def lstm_cell(i, o, state, params):
    """One LSTM step, exactly the slide's equations (no peephole connections from the state).

    ``i``: input ``[B, 27]``; ``o``: previous output ``[B, N]``; ``state``: previous cell state
    ``[B, N]``; ``params``: the dict from :func:`create_parameters` (tensors or variables).
    With ``g(W) = i @ Wx + o @ Wm + Wb`` for each gate:

        input_gate  = sigmoid(g(i…))      forget_gate = sigmoid(g(f…))
        update      = g(c…)                state = forget_gate * state + input_gate * tanh(update)
        output_gate = sigmoid(g(o…))      output = output_gate * tanh(state)

    Returns ``(output, state)``, both ``[B, N]``.
    """
    def g(k):
        return tf.matmul(i, params[k + "x"]) + tf.matmul(o, params[k + "m"]) + params[k + "b"]
    input_gate = tf.sigmoid(g("i"))
    forget_gate = tf.sigmoid(g("f"))
    update = g("c")
    state = forget_gate * state + input_gate * tf.tanh(update)
    output_gate = tf.sigmoid(g("o"))
    return output_gate * tf.tanh(state), state


def build_training_model(params, batch_size=BATCH_SIZE, num_unrollings=NUM_UNROLLINGS):
    """The LSTM unrolled over ``num_unrollings`` steps, its state carried from one batch to the next.

    Build, in the default graph:

    * ``train_data``: ``num_unrollings + 1`` float32 placeholders ``[batch_size, 27]`` (what
      ``BatchGenerator.next()`` gives); inputs are the first ``num_unrollings``, labels the last
      ``num_unrollings`` (the inputs shifted by one step);
    * ``saved_output`` / ``saved_state``: non-trainable variables ``[batch_size, N]`` of zeros
      (N = ``num_nodes`` of ``params``) from which the unrolled loop starts;
    * the loop: :func:`lstm_cell` over the inputs, keeping each step's output;
    * ``logits`` ``[num_unrollings * batch_size, 27]``: the classifier ``xw_plus_b`` on all outputs
      concatenated along axis 0 (time-major: step 0's batch first), and ``loss``: the mean softmax
      cross-entropy against the labels concatenated the same way. Both are built under
      ``tf.control_dependencies`` on assigning the last output and state to ``saved_output`` /
      ``saved_state``, so every run of ``loss``, ``logits`` or ``train_prediction`` also carries the state
      forward (slide: State saving across unrollings);
    * ``train_prediction``: ``softmax(logits)``.

    Returns a dict with the keys ``train_data, saved_output, saved_state, logits, loss,
    train_prediction``.
    """
    num_nodes = int(params["im"].shape[0])
    train_data = [tf.compat.v1.placeholder(tf.float32, shape=[batch_size, VOCABULARY_SIZE])
                  for _ in range(num_unrollings + 1)]
    train_inputs = train_data[:num_unrollings]
    train_labels = train_data[1:]
    saved_output = tf.Variable(tf.zeros([batch_size, num_nodes]), trainable=False)
    saved_state = tf.Variable(tf.zeros([batch_size, num_nodes]), trainable=False)
    outputs = []
    output = saved_output
    state = saved_state
    for i in train_inputs:
        output, state = lstm_cell(i, output, state, params)
        outputs.append(output)
    with tf.control_dependencies([saved_output.assign(output), saved_state.assign(state)]):
        logits = tf.compat.v1.nn.xw_plus_b(tf.concat(outputs, 0), params["w"], params["b"])
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
            labels=tf.concat(train_labels, 0), logits=logits))
        train_prediction = tf.nn.softmax(logits)
    return dict(train_data=train_data, saved_output=saved_output, saved_state=saved_state,
                logits=logits, loss=loss, train_prediction=train_prediction)


def build_optimizer(loss, clip_norm=1.25):
    """Gradient descent with the slide's decaying learning rate and global-norm clipping.

    * ``global_step``: an integer variable starting at 0 (the slides: ``tf.Variable(0, trainable=False)``;
      ``tf.compat.v1.train.get_or_create_global_step()`` is as good), incremented by every training step;
    * ``learning_rate``: ``exponential_decay(10.0, global_step, 5000, 0.1, staircase=True)``
      (10.0 for steps 0..4999, 1.0 from 5000, 0.1 from 10000);
    * the gradients of ``loss`` for every trainable variable, clipped together with
      ``clip_by_global_norm(…, clip_norm)`` so their global norm is at most ``clip_norm``;
    * ``train_op``: applies the clipped gradients with ``GradientDescentOptimizer(learning_rate)``
      and increments ``global_step``.

    Returns a dict with the keys ``global_step, learning_rate, gradients`` (the clipped list),
    ``global_norm`` (their norm *before* clipping) and ``train_op``.
    """
    global_step = tf.Variable(0, trainable=False)
    learning_rate = tf.compat.v1.train.exponential_decay(10.0, global_step, 5000, 0.1, staircase=True)
    optimizer = tf.compat.v1.train.GradientDescentOptimizer(learning_rate)
    gradients, v = zip(*optimizer.compute_gradients(loss))
    clipped, global_norm = tf.clip_by_global_norm(gradients, clip_norm)
    train_op = optimizer.apply_gradients(zip(clipped, v), global_step=global_step)
    return dict(global_step=global_step, learning_rate=learning_rate, gradients=list(clipped),
                global_norm=global_norm, train_op=train_op)


def build_sampling_model(params):
    """A one-step copy of the model (batch 1, no unrolling) that shares the trained ``params``.

    * ``sample_input``: a float32 placeholder ``[1, 27]``;
    * ``saved_sample_output`` / ``saved_sample_state``: non-trainable variables ``[1, N]`` of zeros, and
      ``reset_sample_state``: one op (``tf.group``) that sets both back to zeros;
    * one :func:`lstm_cell` step from the saved output and state;
    * ``sample_prediction``: ``softmax`` of the classifier on that step's output ``[1, 27]``, built
      under ``tf.control_dependencies`` on saving the new output and state, so each run moves the
      model one character forward.

    Returns a dict with the keys ``sample_input, saved_sample_output, saved_sample_state,
    reset_sample_state, sample_prediction``.
    """
    num_nodes = int(params["im"].shape[0])
    sample_input = tf.compat.v1.placeholder(tf.float32, shape=[1, VOCABULARY_SIZE])
    saved_sample_output = tf.Variable(tf.zeros([1, num_nodes]), trainable=False)
    saved_sample_state = tf.Variable(tf.zeros([1, num_nodes]), trainable=False)
    reset_sample_state = tf.group(
        saved_sample_output.assign(tf.zeros([1, num_nodes])),
        saved_sample_state.assign(tf.zeros([1, num_nodes])))
    sample_output, sample_state = lstm_cell(sample_input, saved_sample_output, saved_sample_state, params)
    with tf.control_dependencies([saved_sample_output.assign(sample_output),
                                  saved_sample_state.assign(sample_state)]):
        sample_prediction = tf.nn.softmax(tf.compat.v1.nn.xw_plus_b(sample_output, params["w"], params["b"]))
    return dict(sample_input=sample_input, saved_sample_output=saved_sample_output,
                saved_sample_state=saved_sample_state, reset_sample_state=reset_sample_state,
                sample_prediction=sample_prediction)


# --------------------------------------------------------------------------- perplexity & sampling
def logprob(predictions, labels):
    """Mean negative log-probability (nats) of the true labels under the predictions.

    ``predictions``, ``labels``: ``[N, 27]`` arrays (probabilities, one-hot). Probabilities below
    1e-10 count as 1e-10 (no ``log(0)``); do not change the caller's array. Returns a float: the sum
    of ``-labels * log(predictions)`` divided by N. ``exp`` of it is the perplexity.
    """
    predictions = np.maximum(predictions, 1e-10)
    return float(np.sum(np.multiply(labels, -np.log(predictions))) / labels.shape[0])


def sample_distribution(distribution):
    """Draw one index from a 1-D array of probabilities that sum to 1.

    Use Python's ``random`` module (the tests seed it): walk the cumulative sum until it passes a
    uniform draw in [0, 1). Returns an int in ``range(len(distribution))``: float32 rounding can leave
    the sum a little below 1, and a draw past it gives the last index.
    """
    r = random.uniform(0, 1)
    s = 0
    for i in range(len(distribution)):
        s += distribution[i]
        if s >= r:
            return i
    return len(distribution) - 1


def sample(prediction):
    """Turn a ``[1, 27]`` prediction into a ``[1, 27]`` float32 one-hot sample drawn from it."""
    p = np.zeros(shape=[1, VOCABULARY_SIZE], dtype=np.float32)
    p[0, sample_distribution(prediction[0])] = 1.0
    return p


def random_distribution():
    """A random ``[1, 27]`` row of probabilities (uniform draws from ``np.random``, normalised to sum 1)."""
    b = np.random.uniform(0.0, 1.0, size=[1, VOCABULARY_SIZE])
    return b / np.sum(b, 1)[:, None]


def generate(session, sampler, num_samples=5, length=80):
    """``num_samples`` strings of ``length`` characters sampled from the model (the slide's samples).

    For each: start from a character sampled from :func:`random_distribution`, reset the sampling
    state, then ``length - 1`` times feed the last character to ``sampler["sample_prediction"]``
    and :func:`sample` the next one from it. ``sampler`` is the dict of
    :func:`build_sampling_model`. Returns the list of strings.
    """
    out = []
    for _ in range(num_samples):
        feed = sample(random_distribution())
        sentence = characters(feed)[0]
        session.run(sampler["reset_sample_state"])
        for _ in range(length - 1):
            prediction = session.run(sampler["sample_prediction"], {sampler["sample_input"]: feed})
            feed = sample(prediction)
            sentence += characters(feed)[0]
        out.append(sentence)
    return out


def validation_perplexity(session, sampler, valid_text):
    """The model's perplexity on ``valid_text``, one character at a time from a reset state.

    Reset the sampling state, walk a ``BatchGenerator(valid_text, 1, 1)`` for ``len(valid_text)``
    calls, feed each call's first batch to the sampler and score its prediction against the second
    batch with :func:`logprob`. Returns ``exp`` of the mean, a float.
    """
    session.run(sampler["reset_sample_state"])
    valid_batches = BatchGenerator(valid_text, 1, 1)
    valid_logprob = 0.0
    n = len(valid_text)
    for _ in range(n):
        b = valid_batches.next()
        predictions = session.run(sampler["sample_prediction"], {sampler["sample_input"]: b[0]})
        valid_logprob += logprob(predictions, b[1])
    return float(np.exp(valid_logprob / n))


# --------------------------------------------------------------------------- training
def train(
    train_text,
    valid_text,
    num_steps=NUM_STEPS,
    summary_frequency=SUMMARY_FREQUENCY,
    sample_frequency=SAMPLE_FREQUENCY,
    train_batches=None,
    log=print,
):
    """Build the whole graph in the default graph, train it, and report as the tutorial does.

    Build :func:`create_parameters`, :func:`build_training_model`, :func:`build_optimizer` and
    :func:`build_sampling_model` (batch 64, 10 unrollings, 64 nodes), initialise, then for each
    of ``num_steps`` steps feed ``train_batches.next()`` (default: a ``BatchGenerator`` over
    ``train_text``) to ``train_data`` and run the train op, the loss, the predictions and the
    learning rate (one ``session.run``).

    Every ``summary_frequency`` steps (step 0 included): ``log`` the mean loss since the last
    summary, the learning rate, the minibatch perplexity (``exp`` of :func:`logprob` of this
    step's predictions against its labels) and the validation perplexity
    (:func:`validation_perplexity` on ``valid_text``, after that step's run); at a summary whose step is a multiple of
    ``sample_frequency`` (step 0 included) also :func:`generate` 5 samples of 80 characters and ``log`` them.

    Returns a dict of lists, one entry per summary: ``step``, ``mean_loss`` (mean training loss
    over the steps since the previous summary; at step 0 that step's loss), ``learning_rate``,
    ``minibatch_perplexity``, ``valid_perplexity``; and ``samples``: a dict step -> list of 5 strings.
    """
    params = create_parameters()
    model = build_training_model(params, BATCH_SIZE, NUM_UNROLLINGS)
    opt = build_optimizer(model["loss"])
    sampler = build_sampling_model(params)
    if train_batches is None:
        train_batches = BatchGenerator(train_text, BATCH_SIZE, NUM_UNROLLINGS)
    result = dict(step=[], mean_loss=[], learning_rate=[], minibatch_perplexity=[],
                  valid_perplexity=[], samples={})
    with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        mean_loss = 0.0
        n = 0
        for step in range(num_steps):
            batches = train_batches.next()
            feed_dict = {model["train_data"][i]: batches[i] for i in range(NUM_UNROLLINGS + 1)}
            _, l, predictions, lr = session.run(
                [opt["train_op"], model["loss"], model["train_prediction"], opt["learning_rate"]],
                feed_dict=feed_dict)
            mean_loss += l
            n += 1
            if step % summary_frequency == 0:
                mean_loss = mean_loss / n
                labels = np.concatenate(list(batches)[1:])
                mb = float(np.exp(logprob(predictions, labels)))
                vp = validation_perplexity(session, sampler, valid_text)
                log('Average loss at step %d: %f learning rate: %f' % (step, mean_loss, lr))
                log('Minibatch perplexity: %.2f' % mb)
                log('Validation set perplexity: %.2f' % vp)
                result["step"].append(step)
                result["mean_loss"].append(float(mean_loss))
                result["learning_rate"].append(float(lr))
                result["minibatch_perplexity"].append(mb)
                result["valid_perplexity"].append(vp)
                if step % sample_frequency == 0:
                    samples = generate(session, sampler, 5, 80)
                    for s in samples:
                        log(s)
                    result["samples"][step] = samples
                mean_loss = 0.0
                n = 0
    return result
