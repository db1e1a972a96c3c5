"""Where the time of a ``keras_convnets`` training run goes (issue 32): one real run (``loop.run``, every default
of this machine) with timers around its phases and two callbacks around its own (``_common.instrument_loop``,
``_common.FitTimes``), then two measurements on the trained model's own compiled train step and its own pipeline:

* **one-off**: the imports (TensorFlow, Keras, the package), the plan (the dataset described), the run's context
  (the machine detected, the runtime settings chosen), the test pipeline built, the model built and compiled, the
  first epoch's extra time over a steady epoch (tracing the train and test functions, reading and decoding the
  tfrecords into the cache), the checkpoint looked for, the history and curves, the export;
* **per steady epoch** (the epochs after the first, medians): the train steps (``train_function`` calls: compute and
  the wait for the next batch), the callbacks' per-batch work, fit's loop between steps, the validation, the
  epoch's end (metrics, history files, the backup checkpoint, TensorBoard);
* **the input's cost**: the same ``train_function`` fed by the run's pipeline and by one batch held in memory (a
  repeated ``from_tensors``), in alternating blocks (``--input-rounds`` x ``--input-block`` steps): the ratio is
  what the input adds to a step (waiting for a batch, and the tf.data thread competing for the cores);
* **the pipeline alone**: one epoch of the same training pipeline (its cache filled by the run) iterated without a
  model: its wall time and the CPU time it uses (``time.process_time``, all threads).

    python benchmarks/where_time_goes.py --model resnet20 --epochs 4
    python benchmarks/where_time_goes.py --model densenet_bc_100 --epochs 3
    python benchmarks/where_time_goes.py --model resnet20 --epochs 10 --json --no-extras    # vs_pytorch.py's side

ResNet-20 runs ``resnet20_cifar10.py``'s plan (cosine, Nesterov); other models their recipe at ``--batch``. The
environment variables of ``keras_convnets.runtime.startup`` (``KERAS_CONVNETS_INTRA_OP_THREADS``, ...) and
``--steps-per-execution`` / ``--precision`` are passed through; ``--data-threads N`` replaces the chosen tf.data
pool (an experiment). Prints numbers (``RESULT {json}`` with ``--json``); never fails on a time.
"""

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import LOOP_PHASES, data_dir, instrument_loop, load_average  # noqa: E402

RESULT = "RESULT "
PHASES = tuple(name.lstrip("_") for name in LOOP_PHASES)


def make_plan(args, out):
    from keras_convnets.training.plan import plan
    options = {"steps_per_execution": args.steps_per_execution} if args.steps_per_execution else {}
    if args.model == "resnet20" and not args.batch:
        from resnet20_cifar10 import resnet20_plan
        return resnet20_plan(args.epochs, args.seed, args.precision, out, **options)
    options.update({"batch_size": args.batch} if args.batch else {})
    return plan(args.model, "cifar10", epochs=args.epochs, out=out, data_dir=data_dir(), seed=args.seed,
                precision=args.precision, **options)


def train(args):
    """The instrumented run: ``{"phases", "kept", "epochs", "imports", "plan", "result", "wall", "python",
    "out"}``."""
    began = time.perf_counter()
    from keras_convnets.runtime import startup
    startup.prefer_onednn()
    startup.configure_threads()  # imports TensorFlow

    from keras_convnets.training import loop
    imported = time.perf_counter()
    out = tempfile.mkdtemp(prefix="where_time_goes_")
    run_plan = make_plan(args, out)
    planned = time.perf_counter()
    phases = {}
    times, kept, undo = instrument_loop(loop, phases,
                                        {"data_threads": args.data_threads} if args.data_threads else None)
    try:
        result = loop.run(run_plan, verbose=0)
    finally:
        undo()
    return {"phases": phases, "kept": kept, "epochs": times.epochs, "imports": imported - began,
            "plan": planned - imported, "result": result, "wall": time.perf_counter() - START,
            "python": began - START, "out": out}


def with_and_without_input(model, train_data, rounds, block, bf16):
    """The run's compiled ``train_function`` fed by the run's own pipeline (as ``fit`` feeds it) and by one batch
    held in memory, in alternating blocks of ``block`` steps (A B, B A, ...) after 2 warm-up steps each, so both see
    the same load: ``{"with_input", "without_input"}`` median step seconds and ``ratio``, the median of the rounds'
    ratios with / without (the input's cost: its wait and its thread competing for the cores)."""
    import tensorflow as tf

    from keras_convnets.runtime import precision
    batch = next(iter(train_data))
    feeds = {"with_input": iter(train_data.repeat()),
             "without_input": iter(tf.data.Dataset.from_tensors(batch).repeat())}

    def timed(feed, count):
        seconds = []
        for _ in range(count):
            began = time.perf_counter()
            float(model.train_function(feeds[feed])["loss"])
            seconds.append(time.perf_counter() - began)
        return statistics.median(seconds)

    medians, ratios = {feed: [] for feed in feeds}, []
    with precision.onednn_bf16(bf16):
        for feed in feeds:
            timed(feed, 2)
        for r in range(rounds):
            for feed in feeds if r % 2 == 0 else reversed(list(feeds)):
                medians[feed].append(timed(feed, block))
            ratios.append(medians["with_input"][-1] / medians["without_input"][-1])
    return {**{feed: statistics.median(values) for feed, values in medians.items()},
            "ratio": statistics.median(ratios), "ratios": ratios, "batch": int(batch[0].shape[0])}


def pipeline_alone(train_data, steps):
    """Wall and CPU seconds (all threads) of one epoch (``steps`` batches) of the training pipeline, the second of
    two."""
    measured = None
    for _ in range(2):
        wall, cpu, images = time.perf_counter(), time.process_time(), 0
        for images_batch, _ in train_data.take(steps):
            images += int(images_batch.shape[0])
        measured = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "images": images}
    return measured


def steady(epochs):
    """Median per-epoch components over the epochs after the first (the first alone when there is one)."""
    later = epochs[1:] or epochs
    keys = ("wall", "train", "callbacks", "between", "eval", "epoch_end")
    rows = [dict(e, train=sum(e["steps"])) for e in later]
    medians = {key: statistics.median(row[key] for row in rows) for key in keys}
    medians["step_median"] = statistics.median(s for e in later for s in e["steps"])
    medians["steps"] = len(epochs[0]["steps"])
    return medians


def summarize(run, extras):
    epochs, phases = run["epochs"], run["phases"]
    typical = steady(epochs)
    first_extra = epochs[0]["wall"] - typical["wall"]
    fit_outside_epochs = phases["fit_phases"] - sum(e["wall"] for e in epochs)
    one_off = {"python start": run["python"], "imports": run["imports"], "plan (dataset described)": run["plan"],
               **{name: phases.get(name, 0.0) for name in PHASES if name != "fit_phases"},
               "first epoch over a steady one (tracing, cache fill)": first_extra,
               "fit outside its epochs (start, end)": fit_outside_epochs}
    summary = {"one_off": one_off, "steady": typical, "epochs": [
        dict(e, steps=sum(e["steps"]), first_step=e["steps"][0]) for e in epochs],
        "wall": run["wall"], "test_accuracy": run["result"].test_accuracy, "extras": extras,
        "load_average": load_average()}
    return summary


def report(summary, args):
    one_off, typical, extras = summary["one_off"], summary["steady"], summary["extras"]
    epochs = len(summary["epochs"])
    print(f"\n{args.model}, {epochs} epochs of {typical['steps']} steps, precision {args.precision}: process wall "
          f"{summary['wall']:.1f} s, test accuracy {summary['test_accuracy']:.4f} (load average "
          f"{summary['load_average']})")
    print("\nper epoch (s):  " + "  ".join(f"{e['epoch']}: {e['wall']:.1f} (train {e['steps']:.1f}, eval "
                                             f"{e['eval']:.1f})" for e in summary["epochs"]))
    first = summary["epochs"][0]
    print(f"first epoch: its first step {first['first_step']:.2f} s (tracing the train function), the other steps "
          f"{first['steps'] - first['first_step']:.2f} s (steady: {typical['train'] - typical['step_median']:.2f}; "
          f"the cache filling), validation {first['eval']:.2f} s (steady {typical['eval']:.2f}: tracing the test "
          "function)")
    total_steady = typical["wall"] * max(0, epochs - 1)
    print(f"\none-off (s), total {sum(one_off.values()):.1f}:")
    for name, seconds in one_off.items():
        print(f"  {name:<52} {seconds:7.2f}")
    print(f"\na steady epoch (median of epochs 2-{epochs}): {typical['wall']:.2f} s "
          f"({total_steady:.1f} s over those epochs)")
    parts = {"train steps (train_function calls)": typical["train"],
             "callbacks' per-batch work": typical["callbacks"], "fit's loop between steps": typical["between"],
             "validation": typical["eval"], "epoch end (metrics, history, backup, TensorBoard)": typical["epoch_end"]}
    if extras:
        compute = typical["train"] / extras["input"]["ratio"]
        parts = {"train steps' compute (without input)": compute,
                 "train steps' input (wait, tf.data's thread)": typical["train"] - compute, **parts}
        del parts["train steps (train_function calls)"]
    parts["rest"] = typical["wall"] - sum(parts.values())
    for name, seconds in parts.items():
        print(f"  {name:<52} {seconds:7.2f}  {100 * seconds / typical['wall']:5.1f}%")
    print(f"  median fit step {1000 * typical['step_median']:.1f} ms")
    if extras:
        feed = extras["input"]
        print("  the train step fed by the pipeline / by a batch in memory, interleaved: "
              f"{1000 * feed['with_input']:.1f} / {1000 * feed['without_input']:.1f} ms (batch {feed['batch']}), "
              f"ratio {feed['ratio']:.3f} (rounds "
              + " ".join(f"{r:.3f}" for r in feed["ratios"]) + ")")
        alone = extras["pipeline"]
        print(f"  the pipeline alone: one epoch ({alone['images']} images) in {alone['wall']:.2f} s wall, "
              f"{alone['cpu']:.2f} CPU s ({1000 * alone['cpu'] / typical['steps']:.1f} ms of CPU per batch)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=0, help="0: the recipe's (ResNet-20: resnet20_cifar10's plan)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--steps-per-execution", type=int, default=None)
    parser.add_argument("--data-threads", type=int, default=0,
                        help="replace the settings' private tf.data threads (0: as chosen; an experiment)")
    parser.add_argument("--input-rounds", type=int, default=6, help="rounds of steps with / without the pipeline")
    parser.add_argument("--input-block", type=int, default=5, help="steps per block of those rounds")
    parser.add_argument("--no-extras", action="store_true", help="skip the input's cost and the pipeline alone")
    parser.add_argument("--json", action="store_true", help="print the summary as one RESULT line")
    args = parser.parse_args(argv)
    run = train(args)
    extras = None
    if not args.no_extras:
        kept = run["kept"]
        ctx, train_data = kept["context"], kept["train_data"]
        bf16 = ctx.precision.onednn_bf16  # the precision the run resolved
        extras = {"input": with_and_without_input(kept["model"], train_data, args.input_rounds, args.input_block,
                                                  bf16),
                  "pipeline": pipeline_alone(train_data, ctx.steps)}
    run.pop("kept")
    shutil.rmtree(run["out"], ignore_errors=True)
    summary = summarize(run, extras)
    if args.json:
        print(RESULT + json.dumps(summary), flush=True)
    else:
        report(summary, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
