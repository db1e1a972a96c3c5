"""Throughput and GFLOP/s of registered models, optionally against keras.applications (interleaved, median ratio),
or the same measurement under two process environments.

    python benchmarks/bench.py --models resnet50,resnet50v2,densenet121 --size 32 --batch 32 --compare-keras

Without ``--env-a``/``--env-b`` it is ``keras-convnets bench`` (see keras_convnets/cli/bench.py for the method). With
them, for settings TensorFlow reads once per process (``TF_ENABLE_ONEDNN_OPTS``, thread-pool sizes), which an
in-process A B A B cannot compare: each round runs one child process per environment (A B, then B A, ...), every
child runs the bench with the other arguments, and the ratio B / A of each round and their median are printed.

    python benchmarks/bench.py --env-a TF_ENABLE_ONEDNN_OPTS=0 --env-b TF_ENABLE_ONEDNN_OPTS=1 --env-rounds 2 \\
        --models resnet20,wrn_16_4,densenet_bc_100 --batch 64

``VAR=`` (empty value) unsets VAR in that environment.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_convnets.cli import bench

RESULT = "RESULT "


def _environment(assignments):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for item in assignments:
        name, _, value = item.partition("=")
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    return env


def _child(bench_args):
    args = bench.add_arguments(argparse.ArgumentParser()).parse_args(bench_args)
    results = bench.measure_all(args)
    print(RESULT + json.dumps({f"{r['model']} {r['mode']}": r["images_per_s"] for r in results}), flush=True)
    return 0


def compare_environments(env_a, env_b, rounds, bench_args):
    """Alternates child processes under ``env_a`` and ``env_b``; prints images/s per round and the median B / A."""
    labels = {"A": " ".join(env_a) or "(inherited)", "B": " ".join(env_b) or "(inherited)"}
    rates = {"A": [], "B": []}
    print(f"A: {labels['A']}\nB: {labels['B']}\nload before: {os.getloadavg()}", flush=True)
    for round_ in range(rounds):
        for side in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
            out = subprocess.run([sys.executable, __file__, "--child", *bench_args], capture_output=True, text=True,
                                 env=_environment(env_a if side == "A" else env_b), check=False)
            lines = [line for line in out.stdout.splitlines() if line.startswith(RESULT)]
            if not lines:
                print(f"{side} failed:\n{out.stderr[-3000:]}", flush=True)
                return 1
            rates[side].append(json.loads(lines[0][len(RESULT):]))
            print(f"round {round_} {side}: " + ", ".join(f"{k} {v:.1f}" for k, v in rates[side][-1].items())
                  + f" img/s (load {os.getloadavg()[0]:.2f})", flush=True)
    print("\nimg/s B / A per round, median:")
    for key in rates["A"][0]:
        ratios = [b[key] / a[key] for a, b in zip(rates["A"], rates["B"])]
        print(f"  {key:<40} A {statistics.median(r[key] for r in rates['A']):8.1f}  "
              f"B {statistics.median(r[key] for r in rates['B']):8.1f}  ratio "
              + " ".join(f"{r:.2f}" for r in ratios) + f"  median {statistics.median(ratios):.3f}")
    print(f"load after: {os.getloadavg()}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     add_help=False)
    parser.add_argument("--env-a", action="append", default=[], metavar="VAR=VALUE", help="environment A")
    parser.add_argument("--env-b", action="append", default=[], metavar="VAR=VALUE", help="environment B")
    parser.add_argument("--env-rounds", type=int, default=2, help="child processes per environment, alternated")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    own, bench_args = parser.parse_known_args(argv)
    if own.child:
        return _child(bench_args)
    if own.env_a or own.env_b:
        return compare_environments(own.env_a, own.env_b, own.env_rounds, bench_args)
    return bench.main(bench_args)


if __name__ == "__main__":
    sys.exit(main())
