"""Ours against PyTorch on this CPU, on the spot (issue 32): ResNet-20 on the CIFAR-10 subset, the same recipe on
both sides (``resnet20_cifar10.py``'s plan with every default of this machine; ``torch_resnet20.py``, its PyTorch
peer), each side in a process of its own.

1. **Steps, interleaved** (``--step-rounds``): one long-lived process per side builds its model, optimizer and input
   (ours: ``fit``'s own compiled ``train_function`` on the run's own tf.data pipeline; PyTorch: the peer's step on its
   in-memory augmentation), takes ``--warmup`` steps, then waits; the sides are then told in turn to run ``--block``
   steps (A B, B A, ...), so both see the same load. Printed: each block's median step, each round's ratio
   ours / PyTorch (above 1: we are slower) and the median ratio.
2. **End to end** (``--rounds``): whole runs of ``--epochs`` epochs, one process per run, the sides alternated:
   the **process wall time** measured here around the child (Python's start, imports, data, training, evaluation,
   export: what a user waits for), its breakdown, the median steady step and the test accuracy, and each round's
   ratio. ``where_time_goes.py`` runs our side (instrumented: its callbacks cost < 0.1%).

Cores, fairly: both sides get every core (TensorFlow's pools, ``torch.set_num_threads``); ``--cpus 0`` runs both
children on the listed cores only (their CPU affinity, which both frameworks size their thread pools by): on a
machine others load too, one core each is the comparison that their load disturbs least (a 2-thread OpenMP or Eigen
step waits for its slower thread whenever another process takes one of the cores). The CIFAR-10 arrays PyTorch
trains on are read from tfds once, before the rounds (``cifar10_arrays.py``), so PyTorch's time holds no TensorFlow
import; ours reads and decodes the tfrecords in its first epoch, as a user's run does.

``--precision bf16``: ours is ``--precision bf16`` (the oneDNN rewrite; refused on a CPU without native bf16), PyTorch
autocast + channels_last. ``--torch-channels-last`` gives PyTorch's float32 the channels_last layout too.

    python benchmarks/vs_pytorch.py                                         # 8 step rounds, then 2 runs of 10 epochs
    python benchmarks/vs_pytorch.py --precision bf16                        # on a CPU with native bf16
    python benchmarks/vs_pytorch.py --step-rounds 0 --epochs 30 --rounds 1  # the issue's run, and its accuracy
    python benchmarks/vs_pytorch.py --cpus 0 --rounds 0                     # one core each, steps only

Prints numbers; never fails on a time.
"""

import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import load_average  # noqa: E402

RESULT, READY, TIMES = "RESULT ", "READY", "TIMES "


def cpu_line():
    """The CPU's model name and its bf16 / AVX-512 flags, from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    kinds = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name}, {os.cpu_count()} CPUs, {' '.join(kinds) or 'no AVX2'}"


def parse_cpus(text):
    """``"0"``, ``"0,1"``, ``"0-3"`` -> a set of CPU numbers; empty: no restriction."""
    cpus = set()
    for part in filter(None, (text or "").split(",")):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def command(side, args, arrays):
    if side == "ours":
        return [sys.executable, os.path.join(HERE, "where_time_goes.py"), "--model", "resnet20", "--epochs",
                str(args.epochs), "--seed", str(args.seed), "--precision", args.precision, "--json", "--no-extras"]
    line = [sys.executable, os.path.join(HERE, "torch_resnet20.py"), "--epochs", str(args.epochs), "--seed",
            str(args.seed), "--precision", args.precision, "--arrays", arrays]
    return line + (["--channels-last"] if args.torch_channels_last else [])


def run_side(side, args, arrays):
    """One child run: its RESULT, with ``process_wall`` (measured here) and a common ``summary``; None on failure."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    cpus = parse_cpus(args.cpus)
    began = time.perf_counter()
    out = subprocess.run(command(side, args, arrays), env=env, capture_output=True, text=True, check=False,
                         preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    wall = time.perf_counter() - began
    lines = [line for line in out.stdout.splitlines() if line.startswith(RESULT)]
    if not lines:
        print(f"{side} failed (exit {out.returncode}):\n{out.stdout[-1500:]}\n{out.stderr[-2500:]}", flush=True)
        return None
    result = json.loads(lines[0][len(RESULT):])
    if side == "ours":
        epochs = result["epochs"]
        summary = {"step": result["steady"]["step_median"], "train": sum(e["steps"] for e in epochs),
                   "eval": sum(e["eval"] for e in epochs), "accuracy": result["test_accuracy"]}
    else:
        epochs = result["epochs"]
        summary = {"step": result["step_median"], "train": sum(e["train"] for e in epochs),
                   "eval": sum(e["eval"] for e in epochs), "accuracy": result["test_accuracy"]}
    summary["wall"] = wall
    summary["rest"] = wall - summary["train"] - summary["eval"]
    return summary


def print_run(r, side, s):
    print(f"round {r} {side:>7}: process {s['wall']:6.1f} s = train steps {s['train']:6.1f} + evaluation "
          f"{s['eval']:5.1f} + the rest {s['rest']:5.1f} (start-up, data, tracing, fit's loop, export); median "
          f"step {1000 * s['step']:6.1f} ms; test accuracy {s['accuracy']:.4f}  (load {load_average()})",
          flush=True)


def compare(args, arrays):
    runs, ratios = {"ours": [], "pytorch": []}, {"wall": [], "step": []}
    for r in range(args.rounds):
        current = {}
        for side in ("ours", "pytorch") if r % 2 == 0 else ("pytorch", "ours"):
            current[side] = run_side(side, args, arrays)
            if current[side] is None:
                return runs, ratios
            print_run(r, side, current[side])
            runs[side].append(current[side])
        for key in ratios:
            ratios[key].append(current["ours"][key] / current["pytorch"][key])
        print(f"round {r}: ours / PyTorch: process wall {ratios['wall'][-1]:.3f}, steady step "
              f"{ratios['step'][-1]:.3f}", flush=True)
    return runs, ratios


def ours_stepper(args):
    """Our side's step: the run's ``train_function`` (what ``fit`` calls per step) on the run's training pipeline
    (``keras_convnets.training.loop``'s own phases: the run's context, its model built and compiled, its stream of
    epochs)."""
    from keras_convnets.runtime import startup
    startup.prefer_onednn()
    startup.configure_threads()
    from resnet20_cifar10 import resnet20_plan

    from keras_convnets.runtime import distribute, precision
    from keras_convnets.training import loop
    out = tempfile.mkdtemp(prefix="vs_pytorch_ours_")  # nothing is written there: the run is not started
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    run_plan = resnet20_plan(args.epochs, args.seed, args.precision, out, batch_size=args.batch)
    ctx = loop._context(run_plan, distribute.get_strategy(run_plan.config.strategy))
    model, _ = loop._build_and_compile(ctx)
    model.make_train_function()
    iterator = iter(loop._training_data(ctx, 0, ctx.epochs).repeat())

    def step():
        with precision.onednn_bf16(ctx.precision.onednn_bf16):
            float(model.train_function(iterator)["loss"])
    return step


def pytorch_stepper(args):
    """PyTorch's side: the peer's :class:`torch_resnet20.Trainer` step, batches drawn from seeded epochs."""
    import torch_resnet20
    data = torch_resnet20.load_cifar10(None, args.arrays)
    peer = argparse.Namespace(seed=args.seed, precision=args.precision, channels_last=args.torch_channels_last,
                              weight_decay=1e-4, lr=0.1, batch=args.batch, epochs=args.epochs)
    trainer = torch_resnet20.Trainer(peer, data["train"])
    batches = []

    def step():
        if not batches:
            order = trainer.order()
            batches.extend(order[start:start + peer.batch] for start in range(0, len(order), peer.batch))
        trainer.step(batches.pop(0))
    return step


def serve(args):
    """A side's process for the interleaved rounds: warm up, say READY, then run the number of steps each stdin
    line asks for and answer their seconds (0 ends)."""
    step = ours_stepper(args) if args.serve == "ours" else pytorch_stepper(args)
    for _ in range(args.warmup):
        step()
    print(READY, flush=True)
    for line in sys.stdin:
        count = int(line)
        if not count:
            break
        seconds = []
        for _ in range(count):
            began = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - began)
        print(TIMES + json.dumps(seconds), flush=True)
    return 0


class Served:
    """A side's serving process, started with the run's CPU affinity; ``steps(n)`` -> their seconds."""

    def __init__(self, side, args, arrays, log):
        cpus = parse_cpus(args.cpus)
        command = [sys.executable, __file__, "--serve", side, "--epochs", str(args.epochs), "--seed", str(args.seed),
                   "--precision", args.precision, "--warmup", str(args.warmup), "--arrays", arrays, "--batch",
                   str(args.batch)] + \
            (["--torch-channels-last"] if args.torch_channels_last else [])
        self.side = side
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                                        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)

    def answer(self, prefix):
        for line in self.process.stdout:
            if line.startswith(prefix):
                return line[len(prefix):]
        raise SystemExit(f"the {self.side} side ended (exit {self.process.wait()}); its stderr is above")

    def steps(self, count):
        self.process.stdin.write(f"{count}\n")
        self.process.stdin.flush()
        return json.loads(self.answer(TIMES))

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.write("0\n")
            self.process.stdin.close()
        self.process.wait()


def step_rounds(args, arrays):
    """The interleaved step rounds; returns the per-round ratios ours / PyTorch of the blocks' median steps."""
    with tempfile.TemporaryFile("w+") as log:
        sides = {side: Served(side, args, arrays, log) for side in ("ours", "pytorch")}
        try:
            for side in sides.values():  # one at a time: each warms up alone
                side.answer(READY)
            ratios, medians = [], {"ours": [], "pytorch": []}
            for r in range(args.step_rounds):
                for side in ("ours", "pytorch") if r % 2 == 0 else ("pytorch", "ours"):
                    medians[side].append(statistics.median(sides[side].steps(args.block)))
                ratios.append(medians["ours"][-1] / medians["pytorch"][-1])
                print(f"round {r}: median step ours {1000 * medians['ours'][-1]:6.1f} ms, PyTorch "
                      f"{1000 * medians['pytorch'][-1]:6.1f} ms, ours / PyTorch {ratios[-1]:.3f}  (load "
                      f"{load_average()})", flush=True)
        except SystemExit:
            log.seek(0)
            print(log.read()[-3000:])
            raise
        finally:
            for side in sides.values():
                side.close()
    print(f"steps: ours / PyTorch, median of {len(ratios)} rounds {statistics.median(ratios):.3f} ("
          + " ".join(f"{x:.3f}" for x in ratios) + "); median steps ours "
          f"{1000 * statistics.median(medians['ours']):.1f} ms, PyTorch "
          f"{1000 * statistics.median(medians['pytorch']):.1f} ms", flush=True)
    return ratios


def end_to_end(args, arrays):
    """The whole-run rounds: prints each round and the medians."""
    runs, ratios = compare(args, arrays)
    if not ratios["wall"]:
        return
    print(f"end to end: ours / PyTorch, median of {len(ratios['wall'])} rounds: process wall "
          f"{statistics.median(ratios['wall']):.3f} (" + " ".join(f"{x:.3f}" for x in ratios["wall"])
          + f"), steady step {statistics.median(ratios['step']):.3f} ("
          + " ".join(f"{x:.3f}" for x in ratios["step"]) + ")")
    for side, results in runs.items():
        print(f"{side:>7}: process wall median {statistics.median(s['wall'] for s in results):.1f} s, step "
              f"{1000 * statistics.median(s['step'] for s in results):.1f} ms, test accuracy "
              + " ".join(f"{s['accuracy']:.4f}" for s in results))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step-rounds", type=int, default=8, help="interleaved step rounds (0: none)")
    parser.add_argument("--block", type=int, default=10, help="steps per side per step round")
    parser.add_argument("--warmup", type=int, default=5, help="steps each served side takes before the rounds")
    parser.add_argument("--batch", type=int, default=128,
                        help="the step rounds' batch (a small one shows each framework's fixed cost per step); the "
                             "end-to-end runs keep the recipe's 128")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per end-to-end run")
    parser.add_argument("--rounds", type=int, default=2, help="end-to-end ours/PyTorch run pairs, alternated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=("float32", "bf16"), default="float32")
    parser.add_argument("--cpus", help="run both sides on these cores only, e.g. 0 or 0,1 (default: every core)")
    parser.add_argument("--torch-channels-last", action="store_true")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--arrays", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args)
    from keras_convnets.runtime import machine
    if args.precision == "bf16" and not machine.cpu_bf16_flags():
        print(f"{cpu_line()}: no native bf16 (amx_bf16, avx512_bf16 or Arm bf16), so ours refuses --precision bf16 "
              "(it would be emulated and slower than float32) and PyTorch's autocast would emulate it: nothing to "
              "compare here; run this on a CPU with native bf16")
        return 2
    import torch
    print(f"{cpu_line()}; load average {load_average()}; PyTorch {torch.__version__}; ResNet-20 batch {args.batch}, "
          f"{args.precision}{', PyTorch channels_last' if args.torch_channels_last else ''}, cores "
          f"{args.cpus or 'all'} for each side; {args.step_rounds} step rounds of {args.block} steps, {args.rounds} "
          f"end-to-end rounds of {args.epochs} epochs", flush=True)
    with tempfile.TemporaryDirectory(prefix="vs_pytorch_") as tmp:
        arrays = os.path.join(tmp, "cifar10.npz")
        subprocess.run([sys.executable, os.path.join(HERE, "cifar10_arrays.py"), arrays], check=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        if args.step_rounds:
            step_rounds(args, arrays)
        if args.rounds:
            end_to_end(args, arrays)
    print(f"load average {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
