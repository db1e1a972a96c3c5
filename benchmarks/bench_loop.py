"""Our training loop (``model.fit`` + tf.data + our performance defaults) against a bare ``tf.function`` train step,
per epoch, and the variants that explain the stalls seen with ``fit`` on a cached, repeated dataset.

Every variant runs in its own process (thread-pool sizes are fixed once per process), the variants are interleaved
(A B C A B C ...) and each epoch's images/s is printed, with the CPU time each thread *kind* used during the epoch
(read from /proc/self/task, grouped by thread name) so the competition between tf.data's threads and TensorFlow's
compute pools can be seen, not guessed.

    python benchmarks/bench_loop.py --model resnet50 --size 32 --batch 64 --epochs 4 --steps 20 \\
        --variants fit_default,fit_no_autotune,fit_ours,bare

Variants:
  fit_default      keras.applications-style: cached, repeated dataset, default tf.data.Options, model.fit
  fit_no_autotune  the same with autotune off and a private thread pool of 1 (the lead in issue 6)
  fit_ours         our defaults: prefer_onednn(), configure_threads(), dataset_options(), compile_options()
  bare             a bare tf.function train step over the same pipeline (the limit for this graph)
  bare_ours        the bare step with our kernel, thread and tf.data defaults
Append ``+aug`` to any variant to train on the per-image pad-crop-flip pipeline instead of the cached tensors, and
``@INTRA:INTER`` to size TensorFlow's thread pools for that variant (e.g. ``fit_default@2:1``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def thread_cpu():
    """CPU seconds used so far by each thread name of this process (names truncated by the kernel to 15 chars)."""
    totals = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / tick
        key = name.rstrip("0123456789_-")
        count, used = totals.get(key, (0, 0.0))
        totals[key] = (count + 1, used + cpu)
        try:  # time this thread was runnable but waiting for a core (oversubscription: ours or other processes')
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                wait = int(f.read().split()[1]) / 1e9
            count, used = totals.get("~runqueue_wait", (0, 0.0))
            totals["~runqueue_wait"] = (count + 1, used + wait)
        except (OSError, IndexError, ValueError):
            pass
    return totals


def cpu_delta(before, after):
    out = {}
    for key, (count, used) in after.items():
        spent = used - before.get(key, (0, 0.0))[1]
        if spent >= 0.05:
            out[key] = [count, round(spent, 2)]
    return out


def worker(args):
    variant, _, threads = args.variant.partition("@")
    variant, _, aug = variant.partition("+")
    args.env_threads = threads.replace(":", ",") or args.env_threads
    ours = variant.endswith("_ours")
    from keras_convnets.runtime import settings as runtime_settings
    from keras_convnets.runtime import startup
    if ours:
        startup.prefer_onednn()
        startup.configure_threads()
    import tensorflow as tf
    from _common import cifar_pipeline

    from keras_convnets.cli import bench
    from keras_convnets.models.backend import keras
    if args.env_threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(args.env_threads.split(",")[0]))
        tf.config.threading.set_inter_op_parallelism_threads(int(args.env_threads.split(",")[1]))

    model = bench.build(args.model, args.size, args.source, classes=10)
    ds = cifar_pipeline(args.batch, args.size, augment=bool(aug), seed=0)
    if variant == "fit_no_autotune":
        options = tf.data.Options()
        options.autotune.enabled = False
        options.threading.private_threadpool_size = 1
        ds = ds.with_options(options)
    elif ours:
        ds = ds.with_options(runtime_settings.dataset_options())
    compile_kwargs = runtime_settings.compile_options(None) if ours else {}
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    loss = keras.losses.SparseCategoricalCrossentropy()
    images_per_epoch = args.steps * args.batch
    rates, threads = [], []
    if variant.startswith("fit"):
        model.compile(optimizer=optimizer, loss=loss, **compile_kwargs)

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.cpu, self.t = thread_cpu(), time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                rates.append(images_per_epoch / (time.perf_counter() - self.t))
                threads.append(cpu_delta(self.cpu, thread_cpu()))

        model.fit(ds, epochs=args.epochs + 1, steps_per_epoch=args.steps, verbose=0, callbacks=[Timer()])
    else:
        step = bench.train_step_fn(model, optimizer, loss)
        it = iter(ds)
        for epoch in range(args.epochs + 1):
            cpu, t = thread_cpu(), time.perf_counter()
            for _ in range(args.steps):
                images, labels = next(it)
                step(images, labels)
            float(model.trainable_weights[0].numpy().ravel()[0])  # wait for the last step
            rates.append(images_per_epoch / (time.perf_counter() - t))
            threads.append(cpu_delta(cpu, thread_cpu()))
    print("RESULT " + json.dumps({"variant": args.variant, "rates": rates[1:], "warmup": rates[0],
                                  "threads": threads[1:], "total_threads": sum(c for c, _ in
                                                                               thread_cpu().values())}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--source", default="ours", choices=["ours", "keras"])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs (one more is run first as warm-up)")
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds of all variants")
    parser.add_argument("--variants", default="fit_default,fit_no_autotune,fit_ours,bare")
    parser.add_argument("--env", action="append", default=[], help="VAR=VALUE for the worker processes")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--tf-threads", dest="env_threads", default="", metavar="INTRA,INTER",
                        help="TF thread pool sizes for every variant (experiments)")
    parser.add_argument("--threads", action="store_true", help="print per-thread-name CPU seconds per epoch")
    args = parser.parse_args(argv)
    if args.variant:
        return worker(args)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.update(item.split("=", 1) for item in args.env)
    variants = args.variants.split(",")
    results = {v: [] for v in variants}
    print(f"load before: {os.getloadavg()}", flush=True)
    for round_ in range(args.rounds):
        for variant in variants:
            cmd = [sys.executable, __file__, "--variant", variant, "--model", args.model, "--source", args.source,
                   "--size", str(args.size), "--batch", str(args.batch), "--epochs", str(args.epochs),
                   "--steps", str(args.steps), "--tf-threads", args.env_threads]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            line = [text for text in out.stdout.splitlines() if text.startswith("RESULT ")]
            if not line:
                print(f"{variant}: failed\n{out.stderr[-3000:]}", flush=True)
                continue
            r = json.loads(line[0][7:])
            results[variant].extend(r["rates"])
            print(f"round {round_} {variant:>22}: img/s per epoch " + " ".join(f"{x:6.1f}" for x in r["rates"])
                  + f"  (warm-up {r['warmup']:.1f}; {r['total_threads']} threads; load {os.getloadavg()[0]:.2f})",
                  flush=True)
            if args.threads:
                for e, t in enumerate(r["threads"]):
                    print(f"    epoch {e} CPU s by thread: {json.dumps(t, sort_keys=True)}")
    bare = [v for v in variants if v.startswith("bare") and results[v]]
    base = results[bare[0]] if bare else None
    print("\nsummary (median img/s, min epoch, min epoch / median bare):")
    for variant, rates in results.items():
        if rates:
            rel = f"{min(rates) / statistics.median(base):.3f}" if base else "-"
            print(f"  {variant:>22}: median {statistics.median(rates):7.1f}  min {min(rates):7.1f}  {rel}")
    print(f"load after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
