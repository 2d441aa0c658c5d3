"""How long a learner waits for a verdict when a function never returns (issue: "nothing hangs").

    python bench/hang_times.py            # the three kinds below, each through `kata run`

Each case copies the checkout with every kata file holding the reference, then breaks one function so
it never returns: a Python loop (k03 train_linear_regression), a tf.while_loop inside Session.run
(k07 greedy_decoder's condition ignores max_steps), an AutoGraph loop inside a tf.function (n07
greedy_decode loops over tf.range(2**31 - 1)). Prints the wall seconds of `kata run K`, the first line
and the peak memory of the run (ru_maxrss of the children).
"""
from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tfkata import registry
from tfkata.paths import repo_root

ROOT = repo_root()
CASES = {
    "python loop (k03 train_linear_regression)": (
        "k03", "        for _ in range(steps):", "        while True:\n            pass\n        for _ in range(steps):"),
    "tf.while_loop in Session.run (k07 greedy_decoder)": (
        "k07", "return tf.logical_and(t < max_steps, tf.logical_not(tf.reduce_all(finished)))",
        "return tf.logical_not(tf.reduce_all(finished))"),
    "AutoGraph loop in a tf.function (n07 greedy_decode)": (
        "n07", "for t in tf.range(max_steps):", "for t in tf.range(2**31 - 1):"),
}


def main() -> None:
    for label, (kata_id, old, new) in CASES.items():
        kata = registry.get(kata_id)
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "repo"
            copy.mkdir()
            for name in ("katas", "solutions", "tests", "conftest.py", "pyproject.toml"):
                src = ROOT / name
                (shutil.copytree if src.is_dir() else shutil.copy2)(src, copy / name)
            for k in registry.katas():
                shutil.copy2(copy / k.path("solutions"), copy / k.path("katas"))
            target = copy / kata.path("katas")
            text = target.read_text(encoding="utf-8")
            assert text.count(old) == 1, (label, "the reference changed: update bench/hang_times.py")
            target.write_text(text.replace(old, new), encoding="utf-8")
            env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "COLUMNS": "200"}
            started = time.monotonic()
            out = subprocess.run([sys.executable, "-m", "tfkata", "run", kata.id], cwd=copy, env=env,
                                 capture_output=True, text=True)
            seconds = time.monotonic() - started
            lines = (out.stdout + out.stderr).splitlines()
            first = next((lines[i + 1] for i, l in enumerate(lines) if l.startswith("First failure")), "(none)")
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"{label}: kata run {kata.id} -> {seconds:.0f} s (peak child RSS so far {peak:.0f} MB)\n  {first[:200]}")


if __name__ == "__main__":
    main()
