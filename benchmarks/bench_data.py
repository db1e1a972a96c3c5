"""The augmenting input pipeline alone (no model): images/s and CPU seconds after the cache is filled, with
tf.data's default options and with ours, each in its own process, alternating.

    python benchmarks/bench_data.py --rounds 2
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def worker(options_name, batches):
    from bench_loop import cpu_delta, thread_cpu
    from keras_convnets import bench
    from keras_convnets.training import performance
    options = performance.dataset_options() if options_name == "ours" else None
    it = iter(bench.cifar_pipeline(64, 32, augment=True, seed=0, options=options))
    for _ in range(100):  # fills the cache (5,170 images = 81 batches)
        next(it)
    before, start = thread_cpu(), time.perf_counter()
    for _ in range(batches):
        next(it)
    seconds = time.perf_counter() - start
    spent = cpu_delta(before, thread_cpu())
    work = sum(cpu for name, (_, cpu) in spent.items() if not name.startswith("~"))
    print("RESULT " + json.dumps({"images_per_s": batches * 64 / seconds, "cpu_s": work,
                                  "threads": sum(c for name, (c, _) in thread_cpu().items() if not name.startswith("~"))}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.batches)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    print(f"load before: {os.getloadavg()}")
    for _ in range(args.rounds):
        for side in ("default", "ours"):
            out = subprocess.run([sys.executable, __file__, "--worker", side, "--batches", str(args.batches)],
                                 env=env, capture_output=True, text=True)
            line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
            if not line:
                print(f"{side} failed:\n{out.stderr[-2000:]}")
                continue
            r = json.loads(line[0][7:])
            print(f"{side:>8} options: {r['images_per_s']:7.0f} img/s, {r['cpu_s']:.2f} CPU s for "
                  f"{args.batches * 64} images ({1000 * r['cpu_s'] / (args.batches * 64):.3f} ms/image), "
                  f"{r['threads']} threads, load {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
