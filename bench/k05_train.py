"""Measure k05 training figures: python bench/k05_train.py {offline|synthetic|leak} [steps] [--chain SEED,K].

Runs solutions/k05_char_lm.train on the chosen corpus with the harness seeds and prints the
summaries and the wall time. Used to set the thresholds in tests/test_k05_char_lm.py.

Measured (seed 1234, CPU shared with other jobs, so wall times are 5-10x an idle box's ~2.3 ms/step):
* offline (pydoc_data.topics, Python 3.11, valid = first 1000 chars), validation perplexity:
  step 1000 3.71, 2000 3.50, 3000 3.44 (TF 2.21); 3000: 3.41 (2.12), 3.42 (2.16), 3.39 (2.19);
  between steps 2000 and 3000 it moves within 3.31-3.61. Test threshold: < 4.3.
* synthetic (synthetic_chain(0, 4): floor 1.3181, 0.2762 nats/char; 1M training chars, 5000 valid
  chars whose oracle perplexity is 1.3178): step 2000 training 1.3364, validation 1.3290 (identical
  on 2.12/2.16/2.19/2.21); step 3000 training 1.3316, validation 1.3333.
  Oracle perplexity on 5000-char texts: std 0.0064 over 300 texts (1000 chars: 0.0132).
* leak (every character doubled): step 1000 training 1.161 (about sqrt(floor) = 1.148),
  validation on clean text > 30000.
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
