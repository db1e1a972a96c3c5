"""Activation memory and step time of plain vs memory-efficient DenseNets (a script, not a test).

    python benchmarks/densenet_memory.py                 # the four default configurations, markdown table
    python benchmarks/densenet_memory.py --steps 5 --budget-gib 8
    python benchmarks/densenet_memory.py --backend jax --configs densenet_bc_100:32:64    # Keras' JAX backend

Every configuration runs in a fresh process (``--child``), so allocator state and traced graphs never leak between
them. In the child: build the model, compile it (SGD momentum, sparse cross-entropy; no XLA on TensorFlow, jitted by
XLA on JAX, eager on PyTorch: each backend's default way to train), and run ``train_on_batch`` on one fixed in-memory
batch twice as warm-up (tracing, optimizer slots, first allocations). Then, for each measured step, a thread samples
the process's resident set (``/proc/self/statm``) every ~0.5 ms while ``train_on_batch`` runs; *activation memory* is
the peak RSS of the step minus the RSS just before it (weights, optimizer state, graphs and the input batch are
resident already, so what the step adds is what it keeps alive: activations, gradients and workspace). The median
over the measured steps is reported, with the median step time.

glibc would otherwise keep freed blocks in its heap and make RSS lag behind live memory, so the children run with
``MALLOC_MMAP_THRESHOLD_`` set: every large tensor is its own mmap, returned to the OS when freed.

"Max batch in budget" extrapolates linearly from the one measured batch:
``(budget - resting RSS) / (activation memory / batch)``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

CONFIGS = [("densenet_bc_100", 32, 256), ("densenet121", 224, 32)]
HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = os.sysconf("SC_PAGE_SIZE")
GIB = 1024 ** 3


def _rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class PeakRSS:
    """Samples RSS in a thread (TensorFlow releases the GIL while it runs a step) and keeps the maximum."""

    def __init__(self, interval=0.0005):
        self.interval, self.peak, self._stop = interval, _rss(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def child(model_name, size, batch, memory_efficient, steps, warmup):
    import gc

    import numpy as np

    sys.path.insert(0, os.path.dirname(HERE))
    from keras_convnets import get_model
    from keras_convnets.models.backend import BACKEND, keras

    model = get_model(model_name, input_shape=(size, size, 3), memory_efficient=memory_efficient)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(), jit_compile=BACKEND == "jax")
    classes = int(model.output.shape[-1])
    x = keras.ops.convert_to_tensor(np.random.default_rng(0).uniform(size=(batch, size, size, 3)).astype("float32"))
    y = keras.ops.convert_to_tensor(np.random.default_rng(1).integers(0, classes, size=(batch,)))
    for _ in range(warmup):
        model.train_on_batch(x, y)
    activations, times = [], []
    for _ in range(steps):
        gc.collect()
        before = _rss()
        with PeakRSS() as peak:
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - start)
        activations.append(peak.peak - before)
    print(json.dumps({"backend": BACKEND, "model": model_name, "size": size, "batch": batch,
                      "memory_efficient": memory_efficient,
                      "activation_bytes": statistics.median(activations), "step_s": statistics.median(times),
                      "resting_bytes": _rss(), "all_activation_bytes": activations, "all_step_s": times}))


def run_child(model_name, size, batch, memory_efficient, args):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536",
               TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND=args.backend)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", model_name, str(size), str(batch),
           str(int(memory_efficient)), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        sys.stderr.write(out.stderr[-4000:])
        raise RuntimeError(f"{model_name} memory_efficient={memory_efficient} failed ({out.returncode})")
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", nargs=4, metavar=("MODEL", "SIZE", "BATCH", "MEMORY_EFFICIENT"))
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax", "torch"),
                        help="Keras backend of the measured processes")
    parser.add_argument("--configs", help="MODEL:SIZE:BATCH,... instead of the default configurations")
    parser.add_argument("--steps", type=int, default=3, help="measured training steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured steps first (tracing, allocations)")
    parser.add_argument("--budget-gib", type=float, default=8.0, help="memory budget for the max-batch column")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run plain / memory-efficient alternately this many times; medians are reported")
    args = parser.parse_args()
    if args.child:
        model_name, size, batch, memory_efficient = args.child
        child(model_name, int(size), int(batch), bool(int(memory_efficient)), args.steps, args.warmup)
        return
    print(f"load average before: {os.getloadavg()}, {os.cpu_count()} CPUs", file=sys.stderr)
    configs = CONFIGS if not args.configs else [(m, int(s), int(b)) for m, s, b in
                                                (c.split(":") for c in args.configs.split(","))]
    rows = []
    for model_name, size, batch in configs:
        results = {False: [], True: []}
        for _ in range(args.repeats):
            for memory_efficient in (False, True):  # interleaved: A B A B
                result = run_child(model_name, size, batch, memory_efficient, args)
                print(json.dumps(result), file=sys.stderr)
                results[memory_efficient].append(result)
        rows.append((model_name, size, batch, results))
    print(f"load average after: {os.getloadavg()}; backend {args.backend}", file=sys.stderr)
    print("| model | input | batch | variant | activation memory (MiB) | vs plain | step time (s) | vs plain "
          f"| max batch in {args.budget_gib:g} GiB | vs plain |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for model_name, size, batch, results in rows:
        summary = {}
        for memory_efficient, runs in results.items():
            activation = statistics.median(r["activation_bytes"] for r in runs)
            step = statistics.median(r["step_s"] for r in runs)
            resting = statistics.median(r["resting_bytes"] for r in runs)
            max_batch = int((args.budget_gib * GIB - resting) / (activation / batch))
            summary[memory_efficient] = (activation, step, max_batch)
        plain = summary[False]
        for memory_efficient, (activation, step, max_batch) in summary.items():
            print(f"| {model_name} | {size}x{size} | {batch} | {'memory-efficient' if memory_efficient else 'plain'} "
                  f"| {activation / 2 ** 20:,.0f} | {activation / plain[0]:.0%} | {step:.2f} | {step / plain[1]:.2f}x "
                  f"| {max_batch} | {max_batch / plain[2]:.2f}x |")


if __name__ == "__main__":
    main()
