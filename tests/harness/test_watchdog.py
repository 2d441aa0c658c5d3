"""Nothing hangs (tfkata/watchdog.py): a Python loop, a tf.while_loop inside Session.run, a tf.while_loop
inside a tf.function and runaway memory each give their verdict within the test's limit, naming the
function; a function that did not return is not called again in that run (the other tests wait), and
the rest of the run gets its verdicts. Run on a mini checkout in a subprocess (pytester)."""
from __future__ import annotations

import time

import pytest

from tfkata.results import Run

pytestmark = pytest.mark.timeout(300)

KATA = '''
import tensorflow as tf


def py_spin():
    """Returns at once."""
    i = 0
    while i < 10:
        i = i * 1


def uses_py_spin():
    """Calls py_spin."""
    py_spin()
    return 1


def graph_spin():
    """An int32 scalar tensor."""
    return tf.while_loop(lambda i: i >= 0, lambda i: i + 0 * i, [tf.constant(0)])


def inner_loop():
    """An int32 scalar tensor (a loop built two calls deep)."""
    return tf.while_loop(lambda i: i >= 0, lambda i: i + 0 * i, [tf.constant(0)])


def build_model():
    """A dict holding inner_loop's tensor."""
    return {"out": inner_loop()}


@tf.function
def _loop(n):
    i = tf.constant(0)
    while i >= 0:
        i = i + 0 * n
    return i


def eager_spin():
    """Returns 0."""
    return int(_loop(tf.constant(1)))


def make_spinner():
    """A tf.function returning 0 (the test calls it: no frame of this file runs while its graph spins)."""

    @tf.function
    def spinner(n):
        i = tf.constant(0)
        while i >= 0:
            i = i + 0 * n
        return i

    return spinner


def grow():
    """Returns a short list."""
    out = []
    while True:
        out.append(bytearray(10_000_000))


def fine():
    """Returns 2."""
    return 2


def helper():
    """Returns 1 (after a little work: most of the loop's time is spent here)."""
    return 1 + 0 * sum(range(20_000))


def loops_over_helper():
    """Returns 3."""
    n = 0
    while n < 3:
        n = n * helper()
    return n
'''

TESTS = '''
import pytest
import tensorflow as tf
from tfkata import load_kata

k = load_kata("k01")


@pytest.mark.covers("py_spin")
def test_py_spin():
    k.py_spin()


@pytest.mark.covers("py_spin")
def test_py_spin_again():
    k.py_spin()


@pytest.mark.covers("py_spin")
def test_py_spin_checked_for_its_errors():
    try:
        k.py_spin()
    except Exception as exc:  # a test checking what the function raises must not take the wait for its error
        pytest.fail(f"py_spin raised {type(exc).__name__}")


@pytest.mark.covers("uses_py_spin")
def test_calls_it_inside():
    assert k.uses_py_spin() == 1


@pytest.mark.covers("graph_spin")
def test_graph_spin():
    with tf.compat.v1.Session() as sess:
        sess.run(k.graph_spin())


@pytest.mark.covers("build_model", "inner_loop")
def test_graph_spin_built_inside():
    model = k.build_model()
    with tf.compat.v1.Session() as sess:
        sess.run(model["out"])


@pytest.mark.eager
@pytest.mark.covers("eager_spin")
def test_eager_spin():
    assert k.eager_spin() == 0


@pytest.mark.eager
@pytest.mark.covers("make_spinner")
def test_returned_tf_function_spins():
    assert int(k.make_spinner()(tf.constant(1))) == 0


@pytest.mark.eager
@pytest.mark.covers("grow")
def test_grow():
    k.grow()


@pytest.mark.covers("fine")
def test_fine_after_all_that():
    assert k.fine() == 2


@pytest.mark.covers("loops_over_helper", "helper")
def test_loop_over_a_helper():
    assert k.loops_over_helper() == 3
'''


@pytest.fixture
def mini(pytester):
    pytester.makeconftest('pytest_plugins = ["tfkata.plugin"]\n')
    pytester.makeini("[pytest]\ntimeout = 3\ntimeout_method = signal\ntestpaths = tests\n"
                     "tfkata_memory_limit_mb = 400\n")
    for target in ("katas", "solutions"):
        (pytester.mkpydir(target) / "k01_graph_session.py").write_text(KATA)
    (pytester.mkdir("tests") / "test_k01_graph_session.py").write_text(TESTS)
    return pytester


def test_every_kind_of_hang_gets_its_verdict_in_time(mini):
    out = mini.path / "results.json"
    started = time.monotonic()
    result = mini.runpytest_subprocess("-p", "no:cacheprovider", "--results-json", str(out))
    seconds = time.monotonic() - started
    text = result.stdout.str()
    tests = {t.name: t for t in Run.load(out).tests}
    status = {name: t.status for name, t in tests.items()}
    assert status == {
        "test_py_spin": "fail", "test_py_spin_again": "waiting", "test_py_spin_checked_for_its_errors": "waiting",
        "test_calls_it_inside": "waiting",
        "test_graph_spin": "fail", "test_graph_spin_built_inside": "fail", "test_eager_spin": "fail", "test_returned_tf_function_spins": "fail",
        "test_grow": "fail",
        "test_fine_after_all_that": "pass", "test_loop_over_a_helper": "fail",
    }, text
    # a loop that hangs in Session.run is named by the function that BUILT it (the op's creation stack)
    for name, function in (("test_py_spin", "py_spin"), ("test_graph_spin", "graph_spin"),
                           ("test_graph_spin_built_inside", "inner_loop"), ("test_eager_spin", "eager_spin"),
                           # the loop's owner, not the helper it calls anew each time (where the time goes)
                           ("test_loop_over_a_helper", "loops_over_helper")):
        message = tests[name].message
        assert message.startswith(f"k01: {function}") and "did not finish within 3 s" in message, message
        assert message.index("may never return") < message.index("raise the limit"), message
    # a Python loop is pointed at by the header of the while loop it was stopped in, wherever in its body
    assert "k01_graph_session.py:8: `while i < 10:`)" in tests["test_py_spin"].message, tests["test_py_spin"].message
    assert "`while n < 3:`)" in tests["test_loop_over_a_helper"].message, tests["test_loop_over_a_helper"].message
    assert "`" not in tests["test_graph_spin"].message.split(" did not")[0], "no while loop around: the line itself"
    # a tf.function the kata function returned: no line of the learner's runs, so the one loop in it is named
    spinner = tests["test_returned_tf_function_spins"].message
    assert spinner.startswith("k01: make_spinner (its loop katas/k01_graph_session.py:") and "`while i >= 0:`)" in spinner, spinner
    grow = tests["test_grow"].message
    assert grow.startswith("k01: grow (katas/k01_graph_session.py:") and "(limit 400 MB)" in grow, grow
    for name in ("test_py_spin_again", "test_py_spin_checked_for_its_errors", "test_calls_it_inside"):
        assert tests[name].message.startswith("k01: py_spin did not return in test_py_spin"), tests[name].message
    assert "Stack of" not in text and "+++ Timeout" not in text, "no thread dumps for the learner"
    # 6 hangs x (3 s + 1 s grace) + memory + start-up; before the watchdog the C++ loops never returned
    print(f"whole run: {seconds:.1f} s")
    assert seconds < 60, f"{seconds:.0f} s"


@pytest.fixture
def fake_timeout(monkeypatch):
    """A stand-in for pytest-timeout's SIGALRM handler (it records its calls) and a watchdog job for one test."""
    import signal

    from tfkata import watchdog

    calls = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: calls.append("pytest-timeout"))
    job = watchdog._Job(item=object(), limit=3.0, started=0.0, rss0=0.0, learner_dir=".")
    monkeypatch.setattr(watchdog, "_job", [job])
    try:
        yield calls, job
    finally:
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("first", ["watchdog", "pytest-timeout"])
def test_both_signals_stop_a_fired_test_once_in_either_order(first, fake_timeout):
    """TensorFlow may hand the main thread back after pytest-timeout's SIGALRM and before the watchdog's own
    signal (CI, 1 run in many): whichever handler runs first raises Stopped, the other does nothing, and
    pytest-timeout's handler (its stack dump) never runs for a test the watchdog fired on."""
    import signal

    from tfkata import watchdog

    calls, job = fake_timeout
    with watchdog.phase():
        alarm = signal.getsignal(signal.SIGALRM)
        job.hang = watchdog.Hang("time", 3.0)
        handlers = [watchdog._on_signal, alarm]
        if first == "pytest-timeout":
            handlers.reverse()
        with pytest.raises(watchdog.Stopped):
            handlers[0](signal.SIGALRM, None)
        handlers[1](signal.SIGALRM, None)  # does nothing
        signal.getsignal(signal.SIGALRM)(signal.SIGALRM, None)  # nor does a SIGALRM still pending
    assert calls == [] and job.stopped


def test_pytest_timeout_fails_a_python_loop_itself_before_the_watchdog_fires(fake_timeout):
    import signal

    from tfkata import watchdog

    calls, job = fake_timeout
    with watchdog.phase():
        signal.getsignal(signal.SIGALRM)(signal.SIGALRM, None)  # before the watchdog fired: its own
        job.hang = watchdog.Hang("time", 3.0)  # the watchdog fires while pytest-timeout fails the test
        watchdog._on_signal(signal.SIGUSR1, None)  # must not cut that failure short
    assert calls == ["pytest-timeout"] and job.timing_out and not job.stopped


def test_of_several_loops_the_last_one_built_in_the_tests_own_kata_is_named(tmp_path):
    """k08's greedy decoder spins: the graph also holds k07's encoder loop (dynamic_rnn), which ends. The hang
    is named after the last loop built in the test's own kata file, not the first loop of the graph."""
    from types import SimpleNamespace

    from tfkata import watchdog

    katas = tmp_path / "katas"

    def loop(module, line, function):
        return SimpleNamespace(type="LoopCond", traceback=[(str(tmp_path / "tests" / "test_x.py"), 5, "test_x", ""),
                                                           (str(katas / f"{module}.py"), line, function, ""),
                                                           ("/site-packages/tensorflow/ops.py", 9, "while_loop", "")])

    ops = [SimpleNamespace(type="Const", traceback=[]), loop("k07_seq2seq", 176, "encoder"),
           loop("k08_attention", 210, "attention_greedy_decoder"), loop("k07_seq2seq", 176, "encoder")]
    sess = SimpleNamespace(graph=SimpleNamespace(get_operations=lambda: ops))
    assert watchdog._loop_builder(katas, [sess], own="k08_attention") == (
        "attention_greedy_decoder", "katas/k08_attention.py:210")
    assert watchdog._loop_builder(katas, [sess], own="k07_seq2seq") == ("encoder", "katas/k07_seq2seq.py:176")
    assert watchdog._loop_builder(katas, [], own="k08_attention") is None


def test_a_time_out_names_a_for_loop_over_something_that_may_not_end(tmp_path):
    """Review V: train's ``for step, window in enumerate(chain([first], windows)):`` over an endless generator was
    named by the body line the time-out interrupted (a sample_text call, pointing at sampling)."""
    from tfkata.feedback.facts import loop_around

    (tmp_path / "katas").mkdir()
    (tmp_path / "katas" / "k.py").write_text(
        "def train(windows, n):\n"
        "    for step, window in enumerate(windows):\n"
        "        for k in range(n):\n"
        "            print(step, k)\n"
        "\n"
        "def spin():\n"
        "    for item in [1, 2]:\n"
        "        while True:\n"
        "            pass\n", encoding="utf-8")
    assert loop_around("katas/k.py:4", tmp_path) == "katas/k.py:2: `for step, window in enumerate(windows):`"
    assert loop_around("katas/k.py:9", tmp_path) == "katas/k.py:8: `while True:`"  # a while loop first
    (tmp_path / "katas" / "k.py").write_text("def f(n):\n    for k in range(n):\n        print(k)\n", encoding="utf-8")
    assert loop_around("katas/k.py:3", tmp_path) is None  # a range ends


def test_a_time_out_in_a_returned_tf_function_names_the_one_loop_of_the_kata_function(tmp_path):
    """Review Y: n01's collatz_steps, a tf.function make_collatz_steps returned, spun in `while n != 0:`; the
    test called it, so no line of the learner's was on the stack and the line named no loop."""
    from tfkata.feedback.facts import only_loop_in

    (tmp_path / "katas").mkdir()
    kata = tmp_path / "katas" / "k.py"
    kata.write_text(
        "def make(n):\n"
        "    @tf.function\n"
        "    def inner(n):\n"
        "        while n != 0:\n"
        "            n = n - 2\n"
        "        return n\n"
        "    return inner\n"
        "\n"
        "def graph():\n"
        "    return tf.while_loop(c, b, [x])\n"
        "\n"
        "def two():\n"
        "    while a:\n"
        "        pass\n"
        "    while b:\n"
        "        pass\n", encoding="utf-8")
    assert only_loop_in(kata, "make", tmp_path) == "katas/k.py:4: `while n != 0:`"
    assert only_loop_in(kata, "graph", tmp_path) == "katas/k.py:10: `return tf.while_loop(c, b, [x])`"
    assert only_loop_in(kata, "two", tmp_path) is None  # several: no guess
    assert only_loop_in(kata, "absent", tmp_path) is None


def test_a_time_out_in_a_function_with_no_endless_loop_says_it_is_slow(tmp_path):
    """Review Z2: n09's train_with_checkpoints, unchanged and right, ran past 30 s on a machine four reviewers
    shared; the line led with "it may never return — a loop whose condition never turns false" for a function
    whose only loops are over a range. A function (and the kata functions it calls) with no while, no
    tf.while_loop and no for over a generator is told it is slow; one that calls a function with a loop is not."""
    from tfkata.feedback.classify import hang_line
    from tfkata.feedback.facts import has_no_endless_loop
    from tfkata.watchdog import Hang

    katas = tmp_path / "katas"
    katas.mkdir()
    kata = katas / "k01_graph_session.py"
    kata.write_text(
        "def steps(n):\n"
        "    for step in range(n):\n"
        "        for layer in model.layers:\n"
        "            work(step)\n"
        "\n"
        "def calls_spin():\n"
        "    return spin(3)\n"
        "\n"
        "def spin(n):\n"
        "    while n:\n"
        "        pass\n"
        "\n"
        "def reads(dataset):\n"
        "    for batch in dataset:\n"
        "        work(batch)\n", encoding="utf-8")
    assert has_no_endless_loop(kata, "steps")
    assert not has_no_endless_loop(kata, "calls_spin")  # the loop is in the function it calls
    assert not has_no_endless_loop(kata, "reads")  # a dataset may repeat forever
    assert not has_no_endless_loop(kata, "absent")
    slow = hang_line(Hang("time", 30.0, "steps", "katas/k01_graph_session.py:4"), "k01", ["steps"], katas)
    assert slow.startswith("k01: steps (katas/k01_graph_session.py:4) did not finish within 30 s and holds no loop "
                           "that could run forever: it is most likely slow here") and "--timeout=120" in slow, slow
    assert "may never return" not in slow, slow
    spun = hang_line(Hang("time", 30.0, "calls_spin", None), "k01", ["calls_spin"], katas)
    assert "may never return" in spun, spun



def test_a_time_out_in_a_graph_that_kept_growing_says_so(tmp_path):
    """Review Z9: k03's train_linear_regression calling sgd_minimize inside its loop ran past 30 s on a busy machine
    and was told it was "most likely slow here": its graph held a new copy of the train op for every step."""
    from tfkata.feedback.classify import REPEATED_SCOPES, hang_line
    from tfkata.tfsetup import import_tensorflow
    from tfkata.watchdog import Hang

    tf = import_tensorflow()
    katas = tmp_path / "katas"
    katas.mkdir()
    (katas / "k01_graph_session.py").write_text("def steps(n):\n    for step in range(n):\n        work(step)\n",
                                                 encoding="utf-8")
    hang = Hang("time", 30.0, "steps", "katas/k01_graph_session.py:3")
    with tf.Graph().as_default():
        v = tf.compat.v1.get_variable("k", initializer=1.0)
        for _ in range(REPEATED_SCOPES - 1):
            tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(tf.square(v))
        small = hang_line(hang, "k01", ["steps"], katas)
        tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(tf.square(v))
        grown = hang_line(hang, "k01", ["steps"], katas)
    assert "most likely slow here" in small and "graph grows" not in small, small
    assert grown.startswith("k01: steps (katas/k01_graph_session.py:3) did not finish within 30 s, and its graph holds "
                            f"{REPEATED_SCOPES} copies of ") and "built inside the loop" in grown, grown
