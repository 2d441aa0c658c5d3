"""Measure k07's training: exact match on 500 fresh sequences after N steps.

    python bench/k07_measure.py STEPS [--no-buckets] [--lr 3e-3] [--copy] [--seed 1234]
"""
import argparse
import sys
import time

from tfkata.tfsetup import import_tensorflow

tf = import_tensorflow()
sys.path.insert(0, ".")
from solutions import k07_seq2seq as k07  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("steps", type=int, nargs="+")
p.add_argument("--no-buckets", action="store_true")
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--copy", action="store_true")
p.add_argument("--seed", type=int, default=1234)
a = p.parse_args()
for steps in a.steps:
    r = k07.train(steps=steps, learning_rate=a.lr, use_buckets=not a.no_buckets, copy_sequence=a.copy,
                  seed=a.seed, num_print=0)
    print(f"TF {tf.__version__} steps={steps} lr={a.lr} buckets={not a.no_buckets} copy={a.copy} seed={a.seed}: "
          f"acc={r['accuracy']:.3f} loss={r['loss']:.4f} train={r['seconds']:.1f}s eval={r['eval_seconds']:.1f}s",
          flush=True)
