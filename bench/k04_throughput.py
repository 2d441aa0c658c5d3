"""k04 throughput: the solution's graph-mode training step vs the same network in tf.keras model.fit.

    python bench/k04_throughput.py                 # 20,000 examples per measurement
    python bench/k04_throughput.py --examples 5000 --target katas

For batch sizes 50 and 100 it trains the k04 CNN (solutions/ by default) for the same number of
examples twice: with the kata's own loop (``DataSet.next_batch`` + ``sess.run(train_op)``, Adam
1e-3, keep_prob 0.5) and with an identical ``tf.keras`` Sequential model (same layers, initialisers,
dropout, Adam 1e-3, softmax cross-entropy on logits) trained by ``model.fit`` for one epoch over
the same examples. Both are warmed up first (graph building, tracing and the first steps are not
timed). It prints examples/s from wall time and from process CPU time (all threads), and the
ratio kata / keras. CPU time is the steadier figure on a shared machine: wall time includes
waiting for other processes. This is a benchmark, not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_kata(k04, data, batch_size, examples, warmup_steps):
    tf = sys.modules["tensorflow"]
    from tfkata import fresh_graph

    steps = examples // batch_size
    with fresh_graph():
        model = k04.build_cnn()
        training = k04.build_training(model, learning_rate=1e-3)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())

            def run(n):
                for _ in range(n):
                    xs, ys = data.train.next_batch(batch_size)
                    sess.run(training.train_op, feed_dict={model.x: xs, model.y_: ys, model.keep_prob: 0.5})

            run(warmup_steps)
            return _timed(lambda: run(steps))


def keras_model(tf):
    keras = tf.keras
    init_w = keras.initializers.TruncatedNormal(stddev=0.1)
    init_b = keras.initializers.Constant(0.1)
    conv = dict(padding="same", activation="relu", kernel_initializer=init_w, bias_initializer=init_b)
    model = keras.Sequential(
        [
            keras.layers.Reshape((28, 28, 1), input_shape=(784,)),
            keras.layers.Conv2D(32, 5, **conv),
            keras.layers.MaxPooling2D(2, padding="same"),
            keras.layers.Conv2D(64, 5, **conv),
            keras.layers.MaxPooling2D(2, padding="same"),
            keras.layers.Flatten(),
            keras.layers.Dense(1024, activation="relu", kernel_initializer=init_w, bias_initializer=init_b),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, kernel_initializer=init_w, bias_initializer=init_b),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    return model


def bench_keras(tf, data, batch_size, examples, warmup_steps):
    model = keras_model(tf)
    assert model.count_params() == 3274634, model.count_params()
    xs, ys = data.train.images[:examples], data.train.labels[:examples]
    n_warm = warmup_steps * batch_size
    model.fit(xs[:n_warm], ys[:n_warm], batch_size=batch_size, epochs=1, verbose=0)
    return _timed(lambda: model.fit(xs, ys, batch_size=batch_size, epochs=1, shuffle=True, verbose=0))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000, help="examples per measurement (default 20000)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--target", choices=["solutions", "katas"], default="solutions")
    args = parser.parse_args(argv)

    os.environ["TFKATA_TARGET"] = args.target
    from tfkata import load_kata
    from tfkata.tfsetup import SEED, import_tensorflow

    tf = import_tensorflow()
    tf.random.set_seed(SEED)
    k04 = load_kata("k04")
    data = k04.read_data_sets(seed=SEED)
    keras_name = getattr(tf.keras, "__name__", "keras").split(".")[0]  # tf_keras (Keras 2) or keras
    keras_version = getattr(sys.modules.get(keras_name), "__version__", "?")
    print(
        f"TensorFlow {tf.__version__}, keras {keras_name} {keras_version}, {os.cpu_count()} CPUs, "
        f"{args.examples} examples per measurement, target {args.target}/"
    )
    print(f"{'batch':>5}  {'kata ex/s':>10} {'(cpu)':>9}  {'keras ex/s':>10} {'(cpu)':>9}  {'ratio wall':>10} {'ratio cpu':>9}")
    for batch_size in args.batch_sizes:
        n = (args.examples // batch_size) * batch_size
        k_wall, k_cpu = bench_kata(k04, data, batch_size, n, args.warmup_steps)
        r_wall, r_cpu = bench_keras(tf, data, batch_size, n, args.warmup_steps)
        print(
            f"{batch_size:>5}  {n / k_wall:>10.0f} {n / k_cpu:>9.0f}  {n / r_wall:>10.0f} {n / r_cpu:>9.0f}  "
            f"{r_wall / k_wall:>10.2f} {r_cpu / k_cpu:>9.2f}",
            flush=True,
        )
    print("ratio = kata examples/s divided by keras examples/s (above 1: the kata loop is faster)")


if __name__ == "__main__":
    main()
