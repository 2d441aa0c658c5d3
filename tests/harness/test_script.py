"""tfkata.script: a quiet TensorFlow import for katas run as scripts, and the progress line."""
import io
import os
import re
import subprocess
import sys

import pytest

from tfkata.script import Progress

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOISE = re.compile(r"E0000|cuInit|absl::InitializeLog|cuda drivers|oneDNN|cpu_feature_guard|WARNING:tensorflow")


class _Tty(io.StringIO):
    def isatty(self):
        return True


def _env():
    """The user's environment without the variables the test harness set, so the script must quiet itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP_", "TFKATA_"))}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    with Progress(100, every=5, stream=out) as progress:
        for step in range(1, 101):
            progress.update(step, loss=1.0 / step, examples=50)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10, lines  # a tenth of the run each
    assert "\r" not in out.getvalue() and "\033" not in out.getvalue()
    assert lines[0].startswith("step 10/100 · loss 0.1000 · ") and "examples/s" in lines[0] and "left" in lines[0]
    assert lines[-1].startswith("step 100/100 · loss 0.0100") and "done in" in lines[-1]


def test_one_refreshing_line_on_a_terminal():
    out = _Tty()
    progress = Progress(30, every=10, stream=out)
    for step in range(1, 31):
        progress.update(step, examples=10)
    progress.close()
    text = out.getvalue()
    assert text.count("\r\033[K") == 3 and text.endswith("\n") and text.count("\n") == 1, repr(text)
    assert "step 30/30" in text and "loss" not in text


def test_counting_dataset_reports_one_step_per_batch():
    class Data:
        num_examples = 7

        def next_batch(self, n):
            return list(range(n)), None

    out = io.StringIO()
    progress = Progress(4, every=1, stream=out, plain_every=1)
    data = progress.counting(Data())
    assert data.num_examples == 7
    for _ in range(4):
        assert data.next_batch(3)[0] == [0, 1, 2]
    assert progress.step == 4 and progress.examples == 12
    assert out.getvalue().count("\n") == 4


def test_quiet_tensorflow_session_prints_nothing():
    code = (
        "from tfkata.script import quiet_tensorflow\n"
        "tf = quiet_tensorflow()\n"
        "with tf.Graph().as_default():\n"
        "    x = tf.compat.v1.placeholder(tf.float32, [None])\n"
        "    y = tf.compat.v1.nn.dropout(x, keep_prob=1.0)\n"
        "    with tf.compat.v1.Session() as s:\n"
        "        print(s.run(y, {x: [2.0]}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[2.]"
    assert not NOISE.search(run.stderr), f"TensorFlow start-up noise on stderr:\n{run.stderr[:2000]}"


@pytest.mark.timeout(240)
def test_k04_solution_as_a_script_is_quiet_and_shows_progress(tmp_path):
    png = tmp_path / "report.png"
    run = subprocess.run(
        [sys.executable, os.path.join("solutions", "k04_cnn_mnist.py"), "--steps", "20", "--batch-size", "10",
         "--png", str(png)],
        capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=220,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert not NOISE.search(run.stderr), f"TensorFlow start-up noise on stderr:\n{run.stderr[:2000]}"
    assert "step 20/20" in run.stderr and "examples/s" in run.stderr, run.stderr
    assert "test accuracy" in run.stdout and png.is_file()
