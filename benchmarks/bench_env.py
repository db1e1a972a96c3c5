"""The same ``keras-convnets bench`` measurement under two process environments, alternated: for settings that
TensorFlow reads once per process (``TF_ENABLE_ONEDNN_OPTS``, thread-pool sizes), which an in-process A B A B
cannot compare.

Each round runs one child process per environment (order A B, then B A, ...); every child warms up, times its
steps and prints its images/s per model and mode. The ratio B / A of each round and their median are printed.

    python benchmarks/bench_env.py --a TF_ENABLE_ONEDNN_OPTS=0 --b TF_ENABLE_ONEDNN_OPTS=1 --rounds 2 \\
        -- --models resnet20,densenet_bc_100 --batch 64 --mode train,infer --steps 3 --rounds 3
Everything after ``--`` is ``keras-convnets bench``'s arguments (see ``keras-convnets bench --help``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def child(bench_args):
    from keras_convnets import bench
    args = bench.add_arguments(argparse.ArgumentParser()).parse_args(bench_args)
    results = bench.measure_all(args)
    print("RESULT " + json.dumps({f"{r['model']} {r['mode']}": r["images_per_s"] for r in results}), flush=True)


def _environment(assignments):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for item in assignments:
        name, _, value = item.partition("=")
        if value:
            env[name] = value
        else:
            env.pop(name, None)  # NAME= : unset, the library's or TensorFlow's own default
    return env


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    bench_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", action="append", default=[], metavar="VAR=VALUE", help="environment A (repeatable)")
    parser.add_argument("--b", action="append", default=[], metavar="VAR=VALUE", help="environment B (repeatable)")
    parser.add_argument("--rounds", type=int, default=2, help="child processes per environment, alternated")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(own)
    if args.child:
        return child(bench_args)
    labels = {"A": " ".join(args.a) or "(inherited)", "B": " ".join(args.b) or "(inherited)"}
    rates = {"A": [], "B": []}
    print(f"A: {labels['A']}\nB: {labels['B']}\nload before: {os.getloadavg()}", flush=True)
    for round_ in range(args.rounds):
        for side in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
            out = subprocess.run([sys.executable, __file__, "--child", "--", *bench_args],
                                 env=_environment(args.a if side == "A" else args.b), capture_output=True, text=True)
            line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
            if not line:
                print(f"{side} failed:\n{out.stderr[-3000:]}", flush=True)
                return 1
            rates[side].append(json.loads(line[0][7:]))
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


if __name__ == "__main__":
    sys.exit(main())
