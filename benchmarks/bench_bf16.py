"""float32 against bf16 (TensorFlow's oneDNN bf16 graph rewrite, what ``--precision bf16`` uses on a CPU with native
bf16) on this CPU: train-step images/s per model and size, then the end-to-end epoch time of ``keras_convnets.train``.

Train steps: one process; each model is built twice (same architecture), one train step is called only with the
rewrite off, the other only with it on (the option is part of every function call's configuration, so the two are
instantiated apart). After tracing and ``--warmup`` steps each, ``--rounds`` interleaved rounds (A B, B A, ...) of
``--steps`` steps; printed: median images/s of each and every round's ratio bf16 / float32 with their median.

``--separate N``: the same cases, but each side in a process of its own (N float32/bf16 process pairs, A B, B A,
...; each process times ``--rounds`` rounds of its one side after the warm-up): what a user's process sees, where the
one-process interleaving keeps both sides' instantiations and oneDNN primitives alive together.

End to end: ``keras_convnets.train`` of ``--e2e-model`` on the CIFAR-10 subset (``TFDS_DATA_DIR``), one child
process per run, alternating float32 and bf16 (A B, B A, ...); each run trains ``--e2e-epochs`` epochs and the
median seconds of its epochs after the first (which traces) is taken; printed per round with the ratio.

    python benchmarks/bench_bf16.py                      # the README rows: 4 models at their sizes, then e2e
    python benchmarks/bench_bf16.py --cases resnet50:224:8,densenet121:224:8 --rounds 3 --steps 2 --e2e-rounds 0

Prints numbers; never fails on a time. On a CPU without native bf16 the rewrite does nothing or emulates bf16
(slower, tensorflow/tensorflow#42422): the script says so first.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import data_dir  # noqa: E402

#: model:size:batch, the issue's cases: CIFAR models at 32x32, ImageNet models at 64x64 (the fine-tuning size of a
#: laptop) and 224x224 (keras.applications').
DEFAULT_CASES = ("resnet20:32:128,wrn_16_4:32:128,resnet50:64:32,densenet121:64:32,resnet50:224:8,"
                 "densenet121:224:8")
RESULT = "RESULT "


def _uptime():
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def train_steps(cases, steps, rounds, warmup):
    from keras_convnets.cli import bench
    from keras_convnets.models.backend import keras
    from keras_convnets.runtime import precision

    rows = []
    for case in cases:
        name, size, batch = case.split(":")
        size, batch = int(size), int(batch)
        keras.backend.clear_session()
        sides = {"float32": bench.Candidate(name, bench.build(name, size), batch, "train"),
                 "bf16": bench.Candidate(name, bench.build(name, size), batch, "train")}

        def timed(side, count):
            with precision.onednn_bf16(side == "bf16"):
                return sides[side].time(count)

        for side in sides:
            timed(side, 1)  # traces and instantiates
            if warmup:
                timed(side, warmup)
        seconds = {side: [] for side in sides}
        for r in range(rounds):
            for side in ("float32", "bf16") if r % 2 == 0 else ("bf16", "float32"):
                seconds[side].append(timed(side, steps))
        ratios = [f / b for f, b in zip(seconds["float32"], seconds["bf16"])]  # images/s bf16 / float32
        row = {"model": name, "size": size, "batch": batch,
               "float32": batch / statistics.median(seconds["float32"]),
               "bf16": batch / statistics.median(seconds["bf16"]), "ratios": ratios,
               "median_ratio": statistics.median(ratios)}
        rows.append(row)
        print(f"{name:<12} {size:>4} {batch:>5} {row['float32']:9.1f} {row['bf16']:9.1f}  "
              + " ".join(f"{r:.2f}" for r in ratios) + f"  median {row['median_ratio']:.2f}x  ({_uptime()})",
              flush=True)
    return rows


def side_child(args):
    """One side of ``--separate``: prints the median images/s of its rounds."""
    from keras_convnets.cli import bench
    from keras_convnets.runtime import precision, startup
    startup.prefer_onednn()
    startup.configure_threads()
    name, size, batch = args.cases.split(":")
    candidate = bench.Candidate(name, bench.build(name, int(size)), int(batch), "train")
    with precision.onednn_bf16(args.side == "bf16"):
        candidate.time(1)
        if args.warmup:
            candidate.time(args.warmup)
        rates = [int(batch) / candidate.time(args.steps) for _ in range(args.rounds)]
    print(RESULT + json.dumps({"median": statistics.median(rates), "rates": rates}), flush=True)
    return 0


def separate(args, cases):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for case in cases:
        rates = {"float32": [], "bf16": []}
        for r in range(args.separate):
            for side in ("float32", "bf16") if r % 2 == 0 else ("bf16", "float32"):
                out = subprocess.run([sys.executable, __file__, "--side", side, "--cases", case, "--steps",
                                      str(args.steps), "--rounds", str(args.rounds), "--warmup", str(args.warmup)],
                                     env=env, capture_output=True, text=True, check=False)
                lines = [line for line in out.stdout.splitlines() if line.startswith(RESULT)]
                if not lines:
                    print(f"{case} {side} failed:\n{out.stderr[-3000:]}", flush=True)
                    return
                rates[side].append(json.loads(lines[0][len(RESULT):])["median"])
        ratios = [b / f for f, b in zip(rates["float32"], rates["bf16"])]
        name, size, batch = case.split(":")
        print(f"{name:<12} {size:>4} {batch:>5} {statistics.median(rates['float32']):9.1f} "
              f"{statistics.median(rates['bf16']):9.1f}  " + " ".join(f"{r:.2f}" for r in ratios)
              + f"  median {statistics.median(ratios):.2f}x  ({_uptime()})", flush=True)


def e2e_child(args):
    from keras_convnets.runtime import startup
    startup.prefer_onednn()
    from keras_convnets.training import loop

    with tempfile.TemporaryDirectory(prefix="bench_bf16_") as out:
        result = loop.train(args.e2e_model, "cifar10", data_dir=data_dir(), precision=args.child, out=out,
                            epochs=args.e2e_epochs, batch_size=args.e2e_batch, steps_per_epoch=args.e2e_steps or None,
                            image_size=args.e2e_image_size or None, verbose=0)
    seconds = result.history["seconds"]
    print(RESULT + json.dumps({"first": seconds[0], "seconds": seconds[1:], "accuracy": result.test_accuracy}),
          flush=True)
    return 0


def end_to_end(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    runs = {"float32": [], "bf16": []}
    ratios = []
    for r in range(args.e2e_rounds):
        medians = {}
        for side in ("float32", "bf16") if r % 2 == 0 else ("bf16", "float32"):
            command = [sys.executable, __file__, "--child", side, "--e2e-model", args.e2e_model, "--e2e-epochs",
                       str(args.e2e_epochs), "--e2e-batch", str(args.e2e_batch)]
            for flag, value in (("--e2e-steps", args.e2e_steps), ("--e2e-image-size", args.e2e_image_size)):
                if value:
                    command += [flag, str(value)]
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            lines = [line for line in out.stdout.splitlines() if line.startswith(RESULT)]
            if not lines:
                print(f"{side} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}", flush=True)
                return
            result = json.loads(lines[0][len(RESULT):])
            runs[side].extend(result["seconds"])
            medians[side] = statistics.median(result["seconds"])
            print(f"round {r} {side:>7}: first epoch {result['first']:6.1f} s, then "
                  + " ".join(f"{s:6.1f}" for s in result["seconds"]) + f" s  ({_uptime()})", flush=True)
        ratios.append(medians["float32"] / medians["bf16"])
    if ratios:
        print(f"epoch seconds, median: float32 {statistics.median(runs['float32']):.1f}, bf16 "
              f"{statistics.median(runs['bf16']):.1f}; speed-up per round "
              + " ".join(f"{r:.2f}" for r in ratios) + f"; median {statistics.median(ratios):.2f}x", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=DEFAULT_CASES, help="model:size:batch, comma-separated")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round and side")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds (A B, B A, ...)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after tracing")
    parser.add_argument("--e2e-model", default="resnet20")
    parser.add_argument("--e2e-epochs", type=int, default=3, help="epochs per run; the first is not timed")
    parser.add_argument("--e2e-batch", type=int, default=128)
    parser.add_argument("--e2e-steps", type=int, default=0, help="cap an epoch's steps (0: the whole split)")
    parser.add_argument("--e2e-image-size", type=int, default=0, help="training size (0: the dataset's, 32)")
    parser.add_argument("--e2e-rounds", type=int, default=2, help="float32/bf16 process pairs (0: skip)")
    parser.add_argument("--separate", type=int, default=0, metavar="N",
                        help="time each side in its own process, N float32/bf16 pairs per case (0: one process)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return e2e_child(args)
    if args.side:
        return side_child(args)

    from keras_convnets.runtime import machine, startup
    startup.prefer_onednn()
    startup.configure_threads()
    flags = machine.cpu_bf16_flags()
    print(f"{_uptime()}; {os.cpu_count()} CPUs; native bf16: {' '.join(flags) or 'none (bf16 is emulated or not '}"
          f"{'' if flags else 'rewritten: expect no gain)'}; "
          f"{'oneDNN' if startup.onednn_enabled() else 'Eigen'} kernels", flush=True)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if cases:
        how = (f"{args.separate} float32/bf16 process pairs, each the median of {args.rounds} rounds" if args.separate
               else f"{args.rounds} interleaved rounds")
        print(f"\ntrain step, images/s: {how} of {args.steps} steps after {args.warmup} warm-up steps\n"
              f"model        size batch   float32      bf16  bf16/float32 per {'pair' if args.separate else 'round'}",
              flush=True)
        (separate if args.separate else lambda a, c: train_steps(c, a.steps, a.rounds, a.warmup))(args, cases)
    if args.e2e_rounds:
        print(f"\nend to end: keras_convnets.train {args.e2e_model} on the CIFAR-10 subset, batch {args.e2e_batch}, "
              f"{args.e2e_epochs} epochs per run (the first not timed), {args.e2e_rounds} float32/bf16 pairs",
              flush=True)
        end_to_end(args)
    print(f"\n{_uptime()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
