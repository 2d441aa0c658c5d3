"""Measure k05 training figures: python bench/k05_train.py {offline|synthetic|leak} [steps] [--chain SEED,K].

Runs solutions/k05_char_lm.train on the chosen corpus with the harness seeds and prints the
summaries and the wall time. Used to set the thresholds in tests/test_k05_char_lm.py.
"""
import argparse
import sys
import time

from tfkata.loader import fresh_graph
from tfkata.tfsetup import import_tensorflow


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", choices=["offline", "synthetic", "leak"])
    parser.add_argument("steps", type=int, nargs="?", default=3001)
    parser.add_argument("--chain", default="0,4", help="synthetic chain seed,successors")
    parser.add_argument("--chars", type=int, default=200_000, help="synthetic training characters")
    parser.add_argument("--valid", type=int, default=1000, help="validation characters")
    parser.add_argument("--summary", type=int, default=100)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--target", default="solutions")
    args = parser.parse_args(argv)
    import_tensorflow()
    import importlib
    sys.path.insert(0, ".")
    k05 = importlib.import_module(f"{args.target}.k05_char_lm")
    from tfkata.data import text as T

    extra = {}
    if args.corpus == "offline":
        valid, train = T.split_valid(T.offline_corpus(), args.valid)
    else:
        seed, succ = (int(x) for x in args.chain.split(","))
        chain = T.synthetic_chain(seed, succ)
        train = chain.generate(args.chars, seed=1)
        valid = chain.generate(args.valid, seed=2)
        print(f"chain {seed},{succ}: floor {chain.perplexity_floor:.4f} rate {chain.entropy_rate:.4f} "
              f"oracle(valid) {2.718281828 ** chain.logprob_per_char(valid):.4f}")
        if args.corpus == "leak":
            doubled = "".join(c + c for c in train)
            extra["train_batches"] = k05.BatchGenerator(doubled, k05.BATCH_SIZE, k05.NUM_UNROLLINGS)
    t0 = time.time()
    with fresh_graph():
        hist = k05.train(train, valid, num_steps=args.steps, summary_frequency=args.summary,
                         sample_frequency=args.sample, **extra)
    wall = time.time() - t0
    import math
    print("step  mean_loss->ppl  minibatch  valid")
    for s, l, m, v in zip(hist["step"], hist["mean_loss"], hist["minibatch_perplexity"], hist["valid_perplexity"]):
        print(f"{s:5d} {math.exp(l):8.4f} {m:8.4f} {v:8.4f}")
    print(f"wall {wall:.1f} s for {args.steps} steps")


if __name__ == "__main__":
    main()
