"""tfkata/feedback/diagnoses.py: every entry of the table, checked against the error TensorFlow really raises.

Each test builds the tiny graph that fails the way a learner's code would, catches the real
exception, and checks that ``diagnose`` picks the right entry and quotes the key facts.
"""
import importlib.util
import textwrap

import numpy as np
import pytest

from tfkata.feedback.diagnoses import TABLE, diagnose, other_kata_todo
from tfkata.tfsetup import import_tensorflow

tf = import_tensorflow()
v1 = tf.compat.v1


def raised(build) -> BaseException:
    """The exception ``build()`` raises inside a fresh graph."""
    with tf.Graph().as_default():
        try:
            build()
        except Exception as exc:  # noqa: BLE001 - we want whatever TF raises
            return exc
    pytest.fail(f"{build.__name__} raised nothing on TF {tf.__version__}")


def check(build, key: str, *facts: str) -> str:
    exc = raised(build)
    d = diagnose(exc)
    assert d is not None, f"no diagnosis for {type(exc).__name__}: {str(exc)[:300]}"
    assert d.key == key, f"expected {key}, got {d.key}: {d.line}"
    for fact in facts:
        assert fact in d.line, f"{fact!r} missing from: {d.line}"
    assert "\n" not in d.line and len(d.line) < 260, d.line
    print(d.line)
    return d.line


def test_every_entry_is_tested():
    tested = {
        "uninitialized-variable", "placeholder-not-fed", "feed-shape", "numpy-in-graph", "other-graph",
        "empty-session-graph", "iterator-not-initialized", "keras-cell", "variable-exists", "variable-missing", "incompatible-shapes",
        "dtype-mix", "fetch-none", "colon-in-name", "batch-size-none", "none-value", "dtype-not-allowed",
        "sparse-labels", "reshape-size", "no-gradients", "tensor-as-bool", "feed-a-tensor", "placeholder-in-eager",
        "graph-finalized", "variable-in-tf-function", "inaccessible-tensor", "autograph-dtype",
        "keras-state-in-call", "gradients-in-eager", "batch-sizes-differ", "unknown-rank", "reset-default-graph", "sequence-length-batch",
        "loop-shape-changes", "tensor-as-static-dim", "history-without-validation", "local-before-assignment",
        "input-signature", "unpack-count", "static-size-none", "tf1-name", "variable-shape-differs",
        "kata-function-returned-none", "summary-not-scalar", "none-gradient", "loss-arguments-swapped",
    }
    assert {e.key for e in TABLE} == tested


# --------------------------------------------------------------------------- variables & sessions
def test_uninitialized_variable():
    def build():
        w = v1.get_variable("weights", shape=[2], initializer=v1.zeros_initializer())
        with v1.Session() as s:
            s.run(w * 2)

    check(build, "uninitialized-variable", "'weights'", "global_variables_initializer()")


def test_uninitialized_resource_in_a_session_that_never_initialised_it():
    """An assign run while it is built, in a session nobody initialised: TF says only that the container does
    not exist; the learner is told the variable was never initialised there and not to run ops while building."""
    def build():
        v = tf.compat.v1.Variable(1.0, name="counter")
        with tf.compat.v1.Session() as s:
            s.run(tf.compat.v1.assign_add(v, 1.0))

    line = check(build, "uninitialized-variable", "'counter'", "global_variables_initializer()")
    assert "must return it, not run it" in line, line


def test_uninitialized_ref_variable():
    def build():
        w = v1.Variable(1.0, name="w", use_resource=False)
        with v1.Session() as s:
            s.run(w)

    check(build, "uninitialized-variable", "'w'", "global_variables_initializer()")


def test_placeholder_not_fed():
    def build():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        with v1.Session() as s:
            s.run(x * 2)

    check(build, "placeholder-not-fed", "placeholder 'x'", "[?,3]", "feed_dict={x: ...}")


def test_wrong_feed_shape():
    def build():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        with v1.Session() as s:
            s.run(x * 2, feed_dict={x: np.zeros((2, 4))})

    check(build, "feed-shape", "(2, 4)", "x:0", "(None, 3)")


def test_numpy_in_graph_mode():
    check(lambda: (tf.constant(1.0) * 2).numpy(), "numpy-in-graph", "sess.run(tensor)")


@pytest.mark.parametrize("build, dotted", [
    (lambda: tf.Session, "Session"), (lambda: tf.placeholder, "placeholder"),
    (lambda: tf.train.AdamOptimizer, "train.AdamOptimizer"), (lambda: tf.nn.rnn_cell, "nn.rnn_cell"),
])
def test_a_tensorflow_1_name(build, dotted):
    check(build, "tf1-name", f"tf.{dotted} is TensorFlow 1's name", f"write tf.compat.v1.{dotted}")
    now = diagnose(raised(build), track="now")
    assert now.key == "tf1-name" and "the TF 2 way" in now.line and "write tf.compat" not in now.line, now.line


def test_tf_contrib_and_names_in_no_tensorflow():
    check(lambda: tf.contrib, "tf1-name", "tf.contrib was removed")
    for build in (lambda: tf.no_such_name, lambda: tf.compat.v1.no_such_name, lambda: tf.train.NoSuchOptimizer):
        d = diagnose(raised(build))
        assert d is None or d.key != "tf1-name", d


def _kata(tmp_path, source: str):
    """A kata module of ``source`` in tmp_path/katas (a frame of the learner's code on the traceback)."""
    (tmp_path / "katas").mkdir(exist_ok=True)
    (tmp_path / "katas" / "k99_demo.py").write_text(textwrap.dedent(source), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("k99_demo_katas", tmp_path / "katas" / "k99_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


OTHER_GRAPH = """\
    import tensorflow as tf


    def add(a):
        return a + tf.constant(2.0)


    def run(a):
        tf.constant(3.0)
        with tf.compat.v1.Session() as s:
            return s.run(a)


    def run_alone(a):
        with tf.compat.v1.Session() as s:  # the default graph has nothing in it
            return s.run(a)
    """


def _elsewhere():
    other = tf.Graph()
    with other.as_default():
        return tf.constant(1.0)


def test_tensor_from_another_graph(tmp_path):
    kata = _kata(tmp_path, OTHER_GRAPH)
    check(lambda: kata.add(_elsewhere()), "other-graph", "add: tensors from two tf.Graph objects", "earlier",
          "graph.as_default()")


def test_tensor_from_inside_a_while_loop_body():
    """A tensor kept from a tf.while_loop's body (its own FuncGraph) used outside: not "two tf.Graphs"."""
    def build():
        kept = []

        def body(i):
            kept.append(tf.identity(i) * 2)
            return i + 1

        out = v1.while_loop(lambda i: i < 3, body, [tf.constant(0)])
        return out + kept[0]

    line = check(build, "other-graph", "inside a loop or function body", "while_body", "outside it")
    assert "graph.as_default()" not in line, line


def test_session_on_another_graph(tmp_path):
    kata = _kata(tmp_path, OTHER_GRAPH)
    check(lambda: kata.run(_elsewhere()), "other-graph", "run: ", "Session(graph=graph)")


def test_session_graph_empty(tmp_path):
    kata = _kata(tmp_path, OTHER_GRAPH)
    check(lambda: kata.run_alone(_elsewhere()), "empty-session-graph", "run_alone: ", "Session(graph=g)",
          "tf.compat.v1.Session() for the default graph")


def test_a_test_running_tensors_a_kata_function_kept_from_another_graph():
    """The test opens the session on its own graph and runs what a kata function returned, built in an earlier
    graph (a module variable, an earlier call): not "open the session on theirs" (the learner opened none)."""
    def alone():
        a = _elsewhere()
        with v1.Session() as s:
            s.run(a)

    def beside():
        a = _elsewhere()
        tf.constant(3.0)
        with v1.Session() as s:
            s.run(a)

    check(alone, "empty-session-graph", "built in another graph than this test's", "earlier", "module variable")
    check(beside, "other-graph", "built in another graph than this test's", "each time the function is called")


def test_iterator_not_initialized():
    def build():
        it = v1.data.make_initializable_iterator(tf.data.Dataset.range(3))
        with v1.Session() as s:
            s.run(it.get_next())

    check(build, "iterator-not-initialized", "iterator.initializer", "make_one_shot_iterator")


def test_fetch_none():
    def build():
        def forgot_return():
            tf.constant(1.0)

        with v1.Session() as s:
            s.run([tf.constant(2.0), forgot_return()])

    check(build, "fetch-none", "return")


# --------------------------------------------------------------------------- scopes & names
def test_variable_already_exists():
    def build():
        v1.get_variable("w", [1])
        v1.get_variable("w", [1])

    check(build, "variable-exists", "'w'", "reuse=True", "AUTO_REUSE")


def test_variable_asked_for_again_with_another_shape():
    def build():
        with v1.variable_scope("layer1"):
            v1.get_variable("W", [5, 8])
        with v1.variable_scope("layer1", reuse=v1.AUTO_REUSE):
            v1.get_variable("W", [8, 8])

    check(build, "variable-shape-differs", "'layer1/W'", "(5, 8)", "(8, 8)", "each layer its own scope")


def test_variable_does_not_exist():
    def build():
        with v1.variable_scope("layer", reuse=True):
            v1.get_variable("w", [1])

    check(build, "variable-missing", "'layer/w'", "AUTO_REUSE")


@pytest.mark.parametrize("make", ["constant", "Variable", "get_variable_in_scope"])
def test_colon_in_name(make):
    def build():
        if make == "constant":
            tf.constant(2.0, name="variable_b:0")
        elif make == "Variable":
            v1.Variable(2.0, name="variable_b:0")
        else:
            with v1.variable_scope("scope"):
                v1.get_variable("variable_b:0", [1])

    check(build, "colon-in-name", "name='variable_b'", "':0' is the output index")


# --------------------------------------------------------------------------- shapes & dtypes
def test_matmul_shapes_at_build_time():
    check(lambda: tf.matmul(tf.zeros([2, 3]), tf.zeros([4, 5])), "incompatible-shapes", "[2,3]", "[4,5]",
          "the weight has 4 rows, the input 3 columns", "the previous layer's output", "input's size, 3")


def test_matmul_weight_stored_the_other_way_round():
    check(lambda: tf.matmul(tf.zeros([2, 3]), tf.zeros([5, 3])), "incompatible-shapes", "[2,3]", "[5,3]",
          "other way round", "transpose_b=True")


def test_reset_default_graph_inside_a_graph():
    def build():
        with tf.Graph().as_default():
            v1.reset_default_graph()

    check(build, "reset-default-graph", "reset_default_graph()", "default graph as it is")


@pytest.mark.parametrize("static", [True, False], ids=["build time", "run time"])
def test_sequence_lengths_for_another_batch(static):
    def build():
        cell = v1.nn.rnn_cell.GRUCell(5)
        x = v1.placeholder(tf.float32, [6, 4, 3] if static else [None, None, 3])
        lengths = v1.placeholder(tf.int32, [4] if static else [None])
        out, _ = v1.nn.dynamic_rnn(cell, x, sequence_length=lengths, dtype=tf.float32)
        with v1.Session() as s:
            s.run(v1.global_variables_initializer())
            s.run(out, {x: np.zeros((6, 4, 3)), lengths: [3, 2, 1, 4]})

    check(build, "sequence-length-batch", "4 sequence lengths for a batch of 6", "time_major=True")


def test_unknown_rank():
    def build():
        return v1.placeholder(tf.float32).shape.as_list()

    check(build, "unknown-rank", "without shape=", "shape=[None]", "tf.squeeze without axis=")


def test_batch_sizes_differ_in_a_concat():
    check(lambda: tf.concat([tf.zeros([64, 3]), tf.zeros([2, 5])], axis=1), "batch-sizes-differ", "64 and 2",
          "fixed batch size", "tf.shape(x)[0]", "x[:, t] is time step t")


def test_while_loop_variable_changes_its_static_shape():
    def build():
        x = v1.placeholder(tf.int32, [None])
        tok = tf.fill([1], 3)  # a known batch of 1 ...
        return tf.while_loop(lambda t, k: t < 3, lambda t, k: (t + 1, k + x), [tf.constant(0), tok])  # ... meets None

    check(build, "loop-shape-changes", "enters the loop with shape (1,)", "(None,)", "set_shape", "shape_invariants")


def test_loop_shape_changes_in_a_tf_function():
    @tf.function
    def grow(n):
        c = tf.zeros([1, 8])
        t = tf.constant(0)
        while t < n:
            c = tf.concat([c, c], 0)
            t += 1
        return c

    check(lambda: grow(tf.constant(3)), "loop-shape-changes", "'c', (1, 8) before it", "(2, 8)",
          "set_loop_options")


def test_matmul_rank():
    check(lambda: tf.matmul(tf.zeros([2, 3]), tf.zeros([3])), "incompatible-shapes", "[2,3]", "[3]", "rank")


def test_add_shapes_at_build_time():
    check(lambda: tf.zeros([2, 3]) + tf.zeros([4, 5]), "incompatible-shapes", "[2,3]", "[4,5]", "element-wise")


def test_matmul_shapes_at_run_time():
    def build():
        x = v1.placeholder(tf.float32, [None, None])
        y = v1.placeholder(tf.float32, [None, None])
        with v1.Session() as s:
            s.run(tf.matmul(x, y), {x: np.zeros((2, 3)), y: np.zeros((4, 5))})

    check(build, "incompatible-shapes", "[2,3]", "[4,5]", "the weight has 4 rows")


def test_add_shapes_at_run_time():
    def build():
        x = v1.placeholder(tf.float32, [None])
        y = v1.placeholder(tf.float32, [None])
        with v1.Session() as s:
            s.run(x + y, {x: np.zeros(2), y: np.zeros(3)})

    check(build, "incompatible-shapes", "[2]", "[3]", "element-wise")


def test_dtype_mix():
    line = check(lambda: tf.constant(1.0) + tf.constant(1), "dtype-mix", "AddV2", "int32", "float32", "tf.cast")
    assert "'y' is int32" in line


def test_dtype_mix_of_two_integer_types_is_not_told_to_cast_to_float():
    line = check(lambda: tf.equal(tf.argmax(tf.zeros([2, 3]), 1), tf.constant([1, 2], tf.int32)), "dtype-mix",
                 "int64", "int32", "one integer type", "output_type=tf.int32")
    assert "float32" not in line, line


def test_dtype_mix_in_a_list():
    line = check(lambda: tf.concat([tf.zeros([1, 2]), tf.zeros([1, 2], tf.float64)], axis=1), "dtype-mix", "ConcatV2",
                 "float32, float64", "zero_state(batch, tf.float32)")
    assert line.startswith("ConcatV2 got a list of tensors of mixed dtypes"), line


def test_dtype_conversion():
    check(lambda: tf.convert_to_tensor(tf.constant(1), dtype=tf.float32), "dtype-mix", "int32", "float32")


@pytest.mark.parametrize("how", ["zero_state", "tf.zeros"])
def test_batch_size_none(how):
    def build():
        x = v1.placeholder(tf.float32, [None, 5, 3])
        if how == "zero_state":
            v1.nn.rnn_cell.BasicLSTMCell(4).zero_state(x.shape[0], tf.float32)
        else:
            tf.zeros([x.shape[0], 4])

    check(build, "batch-size-none", "tf.shape(x)[0]")


def test_tensor_as_static_dim():
    def build():
        h = v1.placeholder(tf.float32, [None, 5])
        v1.get_variable("W", [tf.shape(h)[-1], 3])  # a weight's shape from the dynamic shape

    check(build, "tensor-as-static-dim", "x.shape[-1]")


def test_history_without_validation():
    import keras

    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    logs = model.fit(np.zeros((4, 2)), np.zeros((4, 2)), verbose=0).history  # no validation_data

    def build():
        return logs["val_accuracy"]

    check(build, "history-without-validation", "'val_accuracy'", "validation_data=")


def test_none_value():
    def build():
        def forgot_return():
            tf.zeros([2, 2])

        return tf.matmul(forgot_return(), tf.zeros([2, 2]))

    check(build, "none-value", "returned None")


def test_reshape_size_at_build_time():
    check(lambda: tf.reshape(tf.zeros([2, 3]), [4, 2]), "reshape-size", "6 values", "[4,2]", "-1")


def test_reshape_size_at_run_time():
    def build():
        x = v1.placeholder(tf.float32, [None])
        with v1.Session() as s:
            s.run(tf.reshape(x, [4, 2]), {x: np.zeros(6)})

    check(build, "reshape-size", "6 values", "(8 values)", "-1")


# --------------------------------------------------------------------------- losses & training
def test_sparse_loss_with_one_hot_labels():
    def build():
        logits = v1.placeholder(tf.float32, [None, 10])
        labels = v1.placeholder(tf.int32, [None, 10])
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)

    check(build, "sparse-labels", "(None, 10)", "tf.argmax(labels, 1)")


def test_sparse_loss_with_float_labels():
    def build():
        logits = v1.placeholder(tf.float32, [None, 10])
        labels = v1.placeholder(tf.float32, [None])
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)

    check(build, "dtype-not-allowed", "'labels'", "int32, int64", "float32", "tf.cast(t, tf.int32)")


def test_no_gradients():
    def build():
        v1.Variable(1.0)
        loss = tf.constant(np.float32(3.0))  # computed outside the graph, e.g. with numpy
        v1.train.GradientDescentOptimizer(0.1).minimize(loss)

    check(build, "no-gradients", "trainable variable")


def test_tensor_as_python_bool():
    def build():
        x = v1.placeholder(tf.float32, [])
        if x > 0:
            pass

    check(build, "tensor-as-bool", "tf.cond")


def test_feeding_a_tensor():
    def build():
        x = v1.placeholder(tf.float32, [2])
        with v1.Session() as s:
            s.run(x * 2, {x: tf.zeros([2])})

    check(build, "feed-a-tensor", "numpy arrays")


def test_placeholder_in_eager_code():
    try:
        v1.placeholder(tf.float32, [None])  # harness tests run eagerly: no graph here
    except RuntimeError as exc:
        d = diagnose(exc)
    else:
        pytest.fail("no error")
    assert d.key == "placeholder-in-eager" and "tf.Graph().as_default()" in d.line


def test_graph_finalized():
    def build():
        tf.constant(1.0)
        tf.compat.v1.get_default_graph().finalize()
        tf.constant(2.0)

    check(build, "graph-finalized", "before the loop")


# --------------------------------------------------------------------------- Keras where compat.v1 is meant
def test_keras_cell_zero_state():
    line = check(lambda: tf.keras.layers.LSTMCell(4).zero_state(2, tf.float32), "keras-cell",
                 "LSTMCell", "Keras layer", "tf.compat.v1.nn.rnn_cell.LSTMCell")
    assert type(tf.keras.layers.LSTMCell(4)).__module__ in line


def test_keras_cell_in_multi_rnn_cell():
    import keras

    def build():
        v1.nn.rnn_cell.MultiRNNCell([keras.layers.GRUCell(4)]).zero_state(2, tf.float32)

    check(build, "keras-cell", "GRUCell", type(keras.layers.GRUCell(4)).__module__, "rnn_cell.GRUCell")


def test_keras3_cell_in_dynamic_rnn():
    import keras

    if int(keras.__version__.split(".")[0]) < 3:
        pytest.skip(f"Keras {keras.__version__}: a Keras 2 cell works in dynamic_rnn")

    def build():
        x = v1.placeholder(tf.float32, [None, 5, 3])
        v1.nn.dynamic_rnn(keras.layers.LSTMCell(4), x, dtype=tf.float32)

    check(build, "keras-cell", "LSTMCell", "Keras 3", "dynamic_rnn")


def test_compat_v1_cell_error_is_not_blamed_on_keras():
    exc = AttributeError("'BasicLSTMCell' object has no attribute 'zero_state'")
    assert diagnose(exc) is None


# --------------------------------------------------------------------------- the walk
def test_assertion_messages_are_left_alone():
    try:
        try:
            tf.constant(1.0).numpy()
        except AttributeError:
            raise AssertionError("expected a tensor")
    except AssertionError as exc:
        assert diagnose(exc) is None


def test_diagnosis_found_through_cause():
    inner = raised(lambda: tf.constant(1.0, name="b:0"))
    try:
        raise RuntimeError("wrapper") from inner
    except RuntimeError as exc:
        assert diagnose(exc).key == "colon-in-name"


def test_unknown_errors_get_none():
    assert diagnose(ValueError("something else entirely")) is None


# --------------------------------------------------------------------------- another kata's TODO
def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_todo_in_another_kata(tmp_path):
    katas = tmp_path / "katas"
    katas.mkdir()
    (katas / "k07_seq2seq.py").write_text(textwrap.dedent('''
        def encoder(x):
            """Encode."""
            raise NotImplementedError("k07: encoder")
    '''))
    (katas / "k08_attention.py").write_text(textwrap.dedent('''
        def attention_step(k07, x):
            return k07.encoder(x)

        def luong_scores():
            raise NotImplementedError("k08: luong_scores")
    '''))
    k07 = _load(katas / "k07_seq2seq.py", "tfkata_test_k07")
    k08 = _load(katas / "k08_attention.py", "tfkata_test_k08")
    with pytest.raises(NotImplementedError) as info:
        k08.attention_step(k07, 1)
    line = other_kata_todo(info.value, "k08", katas)
    assert line == ("k08 uses your k07: k07's encoder is not written yet (katas/k07_seq2seq.py:4): "
                    "finish k07 first (kata run k07)")
    assert diagnose(info.value, target_dir=katas, under_test="attention").line == line
    assert other_kata_todo(info.value, "k07", katas) is None  # its own TODO: the plugin's TODO line
    with pytest.raises(NotImplementedError) as own:
        k08.luong_scores()
    assert other_kata_todo(own.value, "k08", katas) is None


# --------------------------------------------------------------------------- TF 2 (the now track)
def raised_eagerly(call) -> BaseException:
    try:
        call()
    except Exception as exc:  # noqa: BLE001
        return exc
    pytest.fail(f"{call.__name__} raised nothing on TF {tf.__version__}")


def check_now(call, key: str, *facts: str) -> str:
    exc = raised_eagerly(call)
    d = diagnose(exc, track="now")
    assert d is not None, f"no diagnosis for {type(exc).__name__}: {str(exc)[:300]}"
    assert d.key == key, f"expected {key}, got {d.key}: {d.line}"
    for fact in facts:
        assert fact in d.line, f"{fact!r} missing from: {d.line}"
    assert "sess.run" not in d.line and "\n" not in d.line and len(d.line) < 260, d.line
    return d.line


def test_variable_created_in_a_tf_function_after_the_first_call():
    @tf.function
    def scale(x):
        return x * tf.Variable(2.0)

    def call():
        scale(tf.constant(1.0))
        scale(tf.constant([1.0, 2.0]))  # a new trace: a new tf.Variable

    check_now(call, "variable-in-tf-function", "outside the function")


def test_optimizer_made_inside_a_tf_function():
    import keras

    w = tf.Variable([1.0, 2.0])

    @tf.function
    def step(x):
        opt = keras.optimizers.SGD(0.1)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(w * x)
        opt.apply_gradients([(tape.gradient(loss, w), w)])
        return loss

    check_now(lambda: (step(tf.constant([1.0, 1.0])), step(tf.constant([1.0, 1.0]))),
              "variable-in-tf-function", "optimizer")


def test_python_list_in_a_tf_function_loop():
    @tf.function
    def doubled(n):
        out = []
        for i in tf.range(n):
            out.append(i * 2)
        return tf.stack(out)

    check_now(lambda: doubled(tf.constant(3)), "inaccessible-tensor", "tf.TensorArray")


@pytest.mark.parametrize("kind", ["loop", "branch"])
def test_autograph_dtype_changes_with_true_division(kind):
    @tf.function
    def halve_loop(n):
        while n > 1:
            n = n / 2
        return n

    @tf.function
    def halve_branch(n):
        if n > 1:
            n = n / 2
        return n

    fn = halve_loop if kind == "loop" else halve_branch
    check_now(lambda: fn(tf.constant(8)), "autograph-dtype", "'n'", "`//`")


def test_keras_weight_made_in_call():
    import keras

    class Scale(keras.layers.Layer):
        def call(self, x):
            self.w = self.add_weight(shape=(x.shape[-1],), initializer="ones")
            return x * self.w

    layer = Scale()
    # Keras 3 refuses it eagerly; Keras 2 only inside a tf.function (as a singleton-variable error)
    exc = raised_eagerly(lambda: tf.function(lambda x: layer(x) + layer(x * 2))(tf.ones([2, 3])))
    d = diagnose(exc, track="now")
    assert d is not None and d.key in ("keras-state-in-call", "variable-in-tf-function"), (d, str(exc)[-300:])
    assert "build" in d.line or "outside the function" in d.line, d.line


def test_tf_gradients_under_eager_execution():
    check_now(lambda: tf.gradients(tf.constant(1.0) * 2, [tf.constant(1.0)]), "gradients-in-eager", "GradientTape")


def test_now_track_never_gets_sess_run_advice():
    """Every entry that would say sess.run / feed_dict has a TF 2 line for an nNN kata."""
    from tfkata.feedback.diagnoses import NOW_LINES

    def bool_on_tensor():
        with tf.Graph().as_default():
            if v1.placeholder(tf.bool):
                pass

    exc = raised_eagerly(bool_on_tensor)
    then, now = diagnose(exc), diagnose(exc, track="now")
    assert "sess.run" in then.line and "sess.run" not in now.line and "tf.function" in now.line, (then, now)
    talks_tf1 = [e.key for e in TABLE if e.key not in NOW_LINES and "sess.run" in _source_of(e)]
    assert not talks_tf1, f"entries whose advice says sess.run with no TF 2 line: {talks_tf1}"


def _source_of(entry) -> str:
    import inspect

    try:
        return inspect.getsource(entry.explain)
    except (OSError, TypeError):
        return ""


def test_variable_created_after_the_initializer_names_where():
    """A new variable made after global_variables_initializer() (a new layer in greedy_decoder) is not
    'run the initializer' — it says which variable was made where, and to build it before (or reuse)."""
    def build():
        v1.get_variable("w", [2], initializer=v1.zeros_initializer())
        init = v1.global_variables_initializer()
        late = v1.get_variable("late_kernel", [2], initializer=v1.ones_initializer())
        with v1.Session() as s:
            s.run(init)
            s.run(late * 2)

    line = check(build, "uninitialized-variable", "'late_kernel'", "created in build (",
                 "after global_variables_initializer() was built")
    assert "test_diagnoses.py:" in line, line


def test_stacked_cells_sharing_one_object():
    if importlib.util.find_spec("tf_keras") is None and int(tf.__version__.split(".")[1]) >= 16:
        pytest.skip("tf.compat.v1.nn.rnn_cell needs tf_keras from TF 2.16 on")

    def build():
        cell = v1.nn.rnn_cell.LSTMCell(4)
        multi = v1.nn.rnn_cell.MultiRNNCell([cell] * 2)
        v1.nn.dynamic_rnn(multi, tf.ones([2, 5, 3]), dtype=tf.float32)

    check(build, "incompatible-shapes", "share ONE cell object", "a new cell for each layer")


def test_local_name_assigned_after_it_is_read():
    def make_traced_double(log):
        @tf.function
        def double(x):
            log = log + [x]  # noqa: F823 - the learner's slip under test
            return 2 * x

        return double

    line = check_now(lambda: make_traced_double([])(tf.constant(1.0)), "local-before-assignment", "`log`",
                     "log.append(...)", "nonlocal")
    print(line)


def _last_of(values):
    for value in values:
        last_seen = value
    return last_seen  # noqa: F821 - unassigned when values is empty: the slip under test


def test_local_name_never_assigned_because_the_loop_did_not_run():
    """k03's train_linear_regression over range(steps - 1) with steps=1 (review S): no outer name to change, so
    not 'declare it nonlocal' but 'the line that assigns it did not run'."""
    line = check_now(lambda: _last_of([]), "local-before-assignment", "`last_seen`", "did not run", "before the loop")
    assert "nonlocal" not in line, line


def test_input_signature_with_a_fixed_batch():
    @tf.function(input_signature=[tf.TensorSpec([1, None, 4], tf.float32)])
    def forward(x):
        return x * 2

    line = check_now(lambda: forward(tf.zeros([3, 2, 4])), "input-signature", "input_signature", "None")
    print(line)


def test_unpacking_an_lstm_with_return_state_into_two():
    import keras

    lstm = keras.layers.LSTM(3, return_sequences=True, return_state=True)

    def encode():
        x, state = lstm(tf.zeros([2, 4, 5]))
        return x, state

    check_now(encode, "unpack-count", "unpacked into 2 names", "outputs, h, c")



def test_no_gradients_eagerly_says_compute_the_loss_on_the_tape():
    import keras

    w = tf.Variable([1.0, 2.0])

    def step():
        loss = tf.reduce_sum(w * w)  # computed before the tape: the tape records nothing
        with tf.GradientTape() as tape:
            pass
        keras.optimizers.SGD(0.1).apply_gradients(zip([tape.gradient(loss, w)], [w]))

    check_now(step, "no-gradients", "INSIDE `with tf.GradientTape() as tape:`")


def test_unknown_rank_on_the_tf2_track_names_no_placeholder():
    check_now(lambda: tf.TensorShape(None).as_list(), "unknown-rank", "shape.rank is None")


def test_a_static_size_that_is_none():
    def tensor_array():
        x = v1.placeholder(tf.int32, [None, None])
        return tf.TensorArray(tf.float32, size=x.shape[1])

    check(tensor_array, "static-size-none", "tf.shape(x)[i]")

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def steps(x):
        total = tf.constant(0)
        for t in range(x.shape[1]):
            total += x[0, t]
        return total

    check_now(lambda: steps(tf.zeros([2, 3], tf.int32)), "static-size-none", "tf.range")



# --------------------------------------------------------------------------- a kata function's None, used by kata code
def test_a_kata_function_that_returned_none_to_another_is_named(tmp_path):
    """k09's train_with_summaries doing ``x, y = batch_for_step(...)`` on a batch_for_step without its return:
    the line names batch_for_step (its reference always returns a value), not the TypeError's NoneType."""
    import importlib.util

    (tmp_path / "katas").mkdir()
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "k99_demo.py").write_text("def batch(step):\n    return step, step\n", encoding="utf-8")
    (tmp_path / "katas" / "k99_demo.py").write_text(
        "def batch(step):\n    step * 2\n\n\ndef train():\n    x, y = batch(3)\n    return x\n", encoding="utf-8")
    spec = importlib.util.spec_from_file_location("k99_demo_katas", tmp_path / "katas" / "k99_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    line = check(module.train, "kata-function-returned-none", "batch returned None", "train used it", "x, y = batch(3)")
    assert "return" in line
    # a None that comes from no kata function on the line is left to the other entries (or to none)
    assert diagnose(raised(lambda: len(None))) is None


def test_summary_not_scalar():
    def build():
        with v1.Session() as s:
            s.run(v1.summary.scalar("mean", tf.reduce_mean(tf.ones([2, 3]), axis=0)))

    check(build, "summary-not-scalar", "scalar summary 'mean", "[3]", "tf.reduce_mean(var)")


def test_a_none_gradient_in_kata_code_is_named(tmp_path):
    """k03's sgd_minimize written by hand with tf.gradients over every trainable variable of a graph that holds
    another model's too: the Nones meet `learning_rate * g` (a bare TypeError before)."""
    module = _kata(tmp_path, """\
        import tensorflow as tf


        def sgd_minimize(loss, learning_rate):
            var_list = tf.compat.v1.trainable_variables()
            grads = tf.gradients(loss, var_list)
            return tf.group(*[v.assign_sub(learning_rate * g) for v, g in zip(var_list, grads)])
        """)

    def build():
        v1.get_variable("other", initializer=1.0)
        k = v1.get_variable("k", initializer=2.0)
        module.sgd_minimize(tf.square(k), 0.1)

    line = check(build, "none-gradient", "sgd_minimize: a gradient is None", "does not depend on")

    def plain():  # no gradient asked for on a kata line: not this entry
        return 0.1 * None

    assert diagnose(raised(plain)) is None, line


def test_a_keras_loss_given_logits_then_labels():
    """n04's make_train_step with loss_fn(logits, labels), PyTorch's order: Keras 3 and Keras 2 each say it in their
    own words about ranks and shapes."""
    import keras

    logits = tf.constant(np.random.RandomState(0).randn(32, 3).astype(np.float32))
    labels = tf.constant(np.arange(32) % 3)
    for call in (lambda: keras.losses.sparse_categorical_crossentropy(logits, labels, from_logits=True),
                 lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True)(logits, labels)):
        check_now(call, "loss-arguments-swapped", "other way round", "(y_true, y_pred)")
