"""oneDNN's own account of one ResNet-20 train step, ours (TensorFlow) against PyTorch's (issue 32): each side runs in
a child process with ``ONEDNN_VERBOSE=1`` (both frameworks bundle oneDNN and print one line per primitive executed,
with its kind, implementation, memory formats and milliseconds), takes ``--warmup`` steps, then one marked step on
a random batch; the lines of that step are summed per primitive kind, propagation and implementation.

Ours: ``keras_convnets``' ResNet-20 with the recipe's coupled L2, compiled with SGD (Nesterov) and the sparse
cross-entropy as ``keras_convnets.train`` does, its ``train_function`` fed one batch held in memory (no input pipeline);
oneDNN kernels on (``keras_convnets.runtime.startup.prefer_onednn``). PyTorch: ``torch_resnet20.py``'s network and
optimizer. What oneDNN does not run (TensorFlow's Eigen ops, PyTorch's ATen batch norm, ReLU and add) is the step's
wall time minus the primitives' sum.

    python benchmarks/onednn_profile.py [--batch 128] [--precision float32|bf16] [--torch-channels-last]

Verbose output slows both sides; compare the primitives' shares, not the step times, with other scripts' figures.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import load_average  # noqa: E402

STEP, WALL = "PROFILED_STEP", "PROFILED_WALL "


def ours_step(args):
    """The child of our side: returns a function running one train step."""
    import numpy as np

    from keras_convnets.runtime import precision, startup
    startup.prefer_onednn()
    startup.configure_threads()
    import tensorflow as tf

    from keras_convnets import ResNet20
    from keras_convnets.models.backend import keras
    model = ResNet20(weight_decay=1e-4)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    rng = np.random.default_rng(0)
    batch = (rng.normal(size=(args.batch, 32, 32, 3)).astype("float32"), rng.integers(0, 10, args.batch))
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    model.make_train_function()
    train_function = model.train_function

    def step():
        with precision.onednn_bf16(args.precision == "bf16"):
            float(train_function(iterator)["loss"])
    return step


def pytorch_step(args):
    import torch
    import torch.nn.functional as F
    from torch_resnet20 import ResNet20, parameter_groups
    memory_format = torch.channels_last if args.torch_channels_last or args.precision == "bf16" \
        else torch.contiguous_format
    model = ResNet20().to(memory_format=memory_format)
    optimizer = torch.optim.SGD(parameter_groups(model, 1e-4), lr=0.1, momentum=0.9, nesterov=True)
    x = torch.randn(args.batch, 3, 32, 32).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (args.batch,))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def child(args):
    step = ours_step(args) if args.side == "ours" else pytorch_step(args)
    for _ in range(args.warmup):
        step()
    print(STEP, flush=True)
    began = time.perf_counter()
    step()
    print(f"{WALL}{time.perf_counter() - began}", flush=True)
    return 0


def profile(side, args):
    """``({(kind, propagation, implementation): [count, ms]}, step wall seconds)`` of one side's marked step."""
    command = [sys.executable, __file__, "--side", side, "--batch", str(args.batch), "--warmup", str(args.warmup),
               "--precision", args.precision] + (["--torch-channels-last"] if args.torch_channels_last else [])
    env = dict(os.environ, ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = out.stdout.splitlines()
    if STEP not in lines:
        raise SystemExit(f"{side} failed:\n{out.stdout[-1500:]}\n{out.stderr[-2500:]}")
    marked = lines[lines.index(STEP) + 1:]
    wall = next(float(line[len(WALL):]) for line in marked if line.startswith(WALL))
    totals = collections.defaultdict(lambda: [0, 0.0])
    for line in marked:
        fields = line.split(",")
        if not line.startswith("onednn_verbose") or len(fields) < 9 or fields[3] != "exec":
            continue
        key = (fields[5], fields[7], fields[6])
        totals[key][0] += 1
        totals[key][1] += float(fields[-1])
    return dict(totals), wall


def report(side, totals, wall):
    total = sum(ms for _, ms in totals.values())
    print(f"\n{side}: step {1000 * wall:.1f} ms under verbose; oneDNN primitives {total:.1f} ms "
          f"({100 * total / (1000 * wall):.0f}%), the rest (not oneDNN, framework) {1000 * wall - total:.1f} ms")
    print(f"  {'primitive':<14} {'propagation':<18} {'implementation':<24} {'count':>5} {'ms':>8}")
    for (kind, prop, impl), (count, ms) in sorted(totals.items(), key=lambda item: -item[1][1]):
        print(f"  {kind:<14} {prop:<18} {impl:<24} {count:5d} {ms:8.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", choices=("float32", "bf16"), default="float32")
    parser.add_argument("--torch-channels-last", action="store_true")
    parser.add_argument("--sides", default="ours,pytorch")
    parser.add_argument("--json", help="also write the totals here")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        return child(args)
    print(f"ResNet-20 train step, batch {args.batch}, {args.precision}; load average {load_average()}")
    results = {}
    for side in args.sides.split(","):
        totals, wall = profile(side, args)
        report(side, totals, wall)
        results[side] = {"wall": wall, "primitives": [[*key, *value] for key, value in totals.items()]}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print(f"\nload average {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
