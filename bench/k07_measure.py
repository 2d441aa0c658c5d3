"""Measure k07/k08 training: exact match on 500 fresh sequences at several step counts, in ONE run.

The loop is k07.train's (same seeds, same data order, evaluation on RandomState(seed + 1)), so the
figure at N steps is the one ``train(steps=N)`` gives.

    python bench/k07_measure.py 1000 2000 3000                # k07, delete the odds
    python bench/k07_measure.py 1000 2000 --copy              # k07's plain model on the copy task
    python bench/k07_measure.py 1000 2000 --attention         # k08's attention model (copy task)
    options: --lr 3e-3  --seed 1234 [more seeds]  --no-buckets
"""
import argparse
import random
import sys
import time

import numpy as np

from tfkata.tfsetup import import_tensorflow

tf = import_tensorflow()
sys.path.insert(0, ".")
from solutions import k07_seq2seq as k07  # noqa: E402
from solutions import k08_attention as k08  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("steps", type=int, nargs="+")
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--halve-every", type=int, default=None, help="default: the builder's (k07 1000, k08 300); 0: constant")
p.add_argument("--seed", type=int, nargs="+", default=[1234])
p.add_argument("--copy", action="store_true")
p.add_argument("--attention", action="store_true")
p.add_argument("--no-buckets", action="store_true")
a = p.parse_args()
copy = a.copy or a.attention
name = "attention" if a.attention else "plain"


halve = {} if a.halve_every is None else {"halve_every": a.halve_every or None}


def run(seed):
    random.seed(seed)  # as k07.train: the cells' initial weights draw from Python's random
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        model = (k08.build_attention_seq2seq if a.attention else k07.build_seq2seq)(learning_rate=a.lr, **halve)
        init = tf.compat.v1.global_variables_initializer()
    sess = tf.compat.v1.Session(graph=graph)
    sess.run(init)
    rng = np.random.RandomState(seed)
    ex, ey, elx, ely = k07.generate_data(500, copy, np.random.RandomState(seed + 1))
    queue, losses = [], []
    wall, cpu, done = 0.0, 0.0, 0
    for target in sorted(a.steps):
        w0, c0 = time.perf_counter(), time.process_time()
        while done < target:
            if not a.no_buckets:
                if not queue:
                    queue = k07.bucketed_batches(*k07.generate_data(32 * 64, copy, rng), batch_size=64, rng=rng)
                x, y, lx, ly = queue.pop()
            else:
                x, y, lx, ly = k07.generate_data(64, copy, rng)
            y_in, y_out = k07.get_decoder_input_and_output(y)
            _, loss = sess.run([model.train_op, model.loss], {
                model.encoder_inputs: x, model.encoder_lengths: lx, model.decoder_inputs: y_in,
                model.decoder_targets: y_out, model.decoder_lengths: ly})
            losses.append(loss)
            done += 1
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        pred = sess.run(model.predictions, {model.encoder_inputs: ex, model.encoder_lengths: elx})
        print(f"TF {tf.__version__} {name} copy={copy} buckets={not a.no_buckets} lr={a.lr} halve={a.halve_every} seed={seed} "
              f"steps={done}: acc={k07.exact_match(pred, ey):.3f} loss={np.mean(losses[-100:]):.4f} "
              f"wall={wall:.1f}s cpu={cpu:.1f}s", flush=True)
    sess.close()


for seed in a.seed:
    run(seed)
