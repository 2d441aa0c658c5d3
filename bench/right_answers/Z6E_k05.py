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


def char2id(char):
    if char in string.ascii_lowercase:
        return ord(char) - FIRST_LETTER + 1
    elif char == " ":
        return 0
    else:
        warnings.warn(f"Unexpected character: {char}")
        return 0


def id2char(dictid):
    if dictid > 0:
        return chr(dictid + FIRST_LETTER - 1)
    else:
        return " "


class BatchGenerator:
    def __init__(self, text, batch_size, num_unrollings):
        self._text = text
        self._text_size = len(text)
        self._batch_size = batch_size
        self._num_unrollings = num_unrollings
        segment = self._text_size // batch_size
        self._cursor = [offset * segment for offset in range(batch_size)]
        self._last_batch = self._next_batch()

    def _next_batch(self):
        batch = np.zeros(shape=(self._batch_size, VOCABULARY_SIZE), dtype=np.float32)
        for b in range(self._batch_size):
            batch[b, char2id(self._text[self._cursor[b]])] = 1.0
            self._cursor[b] = (self._cursor[b] + 1) % self._text_size
        return batch

    def next(self):
        batches = [self._last_batch]
        for step in range(self._num_unrollings):
            batches.append(self._next_batch())
        self._last_batch = batches[-1]
        return batches


def characters(probabilities):
    return [id2char(c) for c in np.argmax(probabilities, 1)]


def batches2string(batches):
    s = [""] * batches[0].shape[0]
    for b in batches:
        s = ["".join(x) for x in zip(s, characters(b))]
    return s


def create_parameters(vocabulary_size=VOCABULARY_SIZE, num_nodes=NUM_NODES):
    p = {}
    for g in GATES:
        p[g + "x"] = tf.Variable(tf.random.truncated_normal([vocabulary_size, num_nodes], -0.1, 0.1))
        p[g + "m"] = tf.Variable(tf.random.truncated_normal([num_nodes, num_nodes], -0.1, 0.1))
        p[g + "b"] = tf.Variable(tf.zeros([1, num_nodes]))
    p["w"] = tf.Variable(tf.random.truncated_normal([num_nodes, vocabulary_size], -0.1, 0.1))
    p["b"] = tf.Variable(tf.zeros([vocabulary_size]))
    return p


def lstm_cell(i, o, state, params):
    def g(k):
        return tf.matmul(i, params[k + "x"]) + tf.matmul(o, params[k + "m"]) + params[k + "b"]
    input_gate = tf.sigmoid(g("i"))
    forget_gate = tf.sigmoid(g("f"))
    update = g("c")
    state = forget_gate * state + input_gate * tf.tanh(update)
    output_gate = tf.sigmoid(g("o"))
    return output_gate * tf.tanh(state), state


def build_training_model(params, batch_size=BATCH_SIZE, num_unrollings=NUM_UNROLLINGS):
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
    global_step = tf.Variable(0, trainable=False)
    learning_rate = tf.compat.v1.train.exponential_decay(10.0, global_step, 5000, 0.1, staircase=True)
    optimizer = tf.compat.v1.train.GradientDescentOptimizer(learning_rate)
    gradients, v = zip(*optimizer.compute_gradients(loss))
    clipped, global_norm = tf.clip_by_global_norm(gradients, clip_norm)
    train_op = optimizer.apply_gradients(zip(clipped, v), global_step=global_step)
    return dict(global_step=global_step, learning_rate=learning_rate, gradients=list(clipped),
                global_norm=global_norm, train_op=train_op)


def build_sampling_model(params):
    num_nodes = int(params["im"].shape[0])
    sample_input = tf.compat.v1.placeholder(tf.float32, shape=[1, VOCABULARY_SIZE])
    saved_sample_output = tf.Variable(tf.zeros([1, num_nodes]), trainable=False)
    saved_sample_state = tf.Variable(tf.zeros([1, num_nodes]), trainable=False)
    reset_sample_state = tf.group(saved_sample_output.assign(tf.zeros([1, num_nodes])),
                                  saved_sample_state.assign(tf.zeros([1, num_nodes])))
    sample_output, sample_state = lstm_cell(sample_input, saved_sample_output, saved_sample_state, params)
    with tf.control_dependencies([saved_sample_output.assign(sample_output),
                                  saved_sample_state.assign(sample_state)]):
        sample_prediction = tf.nn.softmax(tf.compat.v1.nn.xw_plus_b(sample_output, params["w"], params["b"]))
    return dict(sample_input=sample_input, saved_sample_output=saved_sample_output,
                saved_sample_state=saved_sample_state, reset_sample_state=reset_sample_state,
                sample_prediction=sample_prediction)


def logprob(predictions, labels):
    predictions = np.maximum(predictions, 1e-10)
    return float(np.sum(np.multiply(labels, -np.log(predictions))) / labels.shape[0])


def sample_distribution(distribution):
    r = random.uniform(0, 1)
    s = 0
    for i in range(len(distribution)):
        s += distribution[i]
        if s >= r:
            return i
    return len(distribution) - 1


def sample(prediction):
    p = np.zeros(shape=[1, VOCABULARY_SIZE], dtype=np.float32)
    p[0, sample_distribution(prediction[0])] = 1.0
    return p


def random_distribution():
    b = np.random.uniform(0.0, 1.0, size=[1, VOCABULARY_SIZE])
    return b / np.sum(b, 1)[:, None]


def generate(session, sampler, num_samples=5, length=80):
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
    session.run(sampler["reset_sample_state"])
    gen = BatchGenerator(valid_text, 1, 1)
    total = 0.0
    n = len(valid_text)
    for _ in range(n):
        b = gen.next()
        predictions = session.run(sampler["sample_prediction"], {sampler["sample_input"]: b[0]})
        total += logprob(predictions, b[1])
    return float(np.exp(total / n))


def train(
    train_text,
    valid_text,
    num_steps=NUM_STEPS,
    summary_frequency=SUMMARY_FREQUENCY,
    sample_frequency=SAMPLE_FREQUENCY,
    train_batches=None,
    log=print,
):
    params = create_parameters()
    model = build_training_model(params, BATCH_SIZE, NUM_UNROLLINGS)
    opt = build_optimizer(model["loss"])
    sampler = build_sampling_model(params)
    if train_batches is None:
        train_batches = BatchGenerator(train_text, BATCH_SIZE, NUM_UNROLLINGS)
    history = dict(step=[], mean_loss=[], learning_rate=[], minibatch_perplexity=[],
                   valid_perplexity=[], samples={})
    with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        mean_loss = 0.0
        count = 0
        for step in range(num_steps):
            batches = train_batches.next()
            feed_dict = {model["train_data"][i]: batches[i] for i in range(NUM_UNROLLINGS + 1)}
            _, l, predictions, lr = session.run(
                [opt["train_op"], model["loss"], model["train_prediction"], opt["learning_rate"]],
                feed_dict=feed_dict)
            mean_loss += l
            count += 1
            if step % summary_frequency == 0:
                mean_loss = mean_loss / count
                labels = np.concatenate(list(batches)[1:])
                mbp = float(np.exp(logprob(predictions, labels)))
                vp = validation_perplexity(session, sampler, valid_text)
                log(f"Average loss at step {step}: {mean_loss:f} learning rate: {lr:f}")
                log(f"Minibatch perplexity: {mbp:.2f}  Validation perplexity: {vp:.2f}")
                history["step"].append(step)
                history["mean_loss"].append(float(mean_loss))
                history["learning_rate"].append(float(lr))
                history["minibatch_perplexity"].append(mbp)
                history["valid_perplexity"].append(vp)
                if step % sample_frequency == 0:
                    samples = generate(session, sampler, 5, 80)
                    for s in samples:
                        log(s)
                    history["samples"][step] = samples
                mean_loss = 0.0
                count = 0
    return history
