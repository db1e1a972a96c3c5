"""Size, top-1 on the test images and latency per image of a trained run in every deployment format.

For each run directory (``keras-convnets train ... --out RUN``): the SavedModel as trained, then
``keras_convnets.export`` to ONNX, LiteRT float32, LiteRT int8 (calibrated on 256 of the run's training images) and
OpenVINO, each written into a temporary directory. Top-1 is over the run's whole evaluation split (the 1,017 CIFAR-10
test images of the subset), each format fed the same uint8 batches of the evaluation pipeline. Latency is one image
per call (batch 1, what an edge device does), measured interleaved: after a warm-up, ``--rounds`` rounds in which
every format classifies the same ``--calls`` images in turn (the order rotated each round); the median over rounds
of the per-call mean is printed, with the load average, as CONTRIBUTING.md asks on a shared machine. Needs the
extras of the formats (``pip install -e ".[onnx,litert,openvino]"``); a missing one is left out with its reason.

    python benchmarks/formats.py RUN [RUN ...] [--data-dir DIR] [--rounds 5] [--calls 50]
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
from _common import data_dir


def _test_images(run, directory):
    from keras_convnets.data import catalog, pipelines
    from keras_convnets.serving import formats
    from keras_convnets.serving import saved_model as savedmodel

    source = savedmodel.saved_model_dir(run)
    saved_model = savedmodel.load(source)
    record = formats._run_record(source) or {}
    recorded = record.get("data", {})
    (size, _), fraction, method = formats._view(saved_model)
    unused = catalog.Statistics((0.0,) * 3, (1.0,) * 3, "not used")
    description = catalog.describe(recorded["dataset"], image_size=size,
                                    augmentation="imagenet" if fraction < 1 else "none", statistics=unused,
                                    data_dir=directory, holdout_fraction=recorded.get("holdout_fraction", 0.1),
                                    split_seed=recorded.get("split_seed", 0))
    images, labels = zip(*pipelines.eval_dataset(description, 256, crop_fraction=fraction if fraction < 1 else None,
                                                interpolation=method).as_numpy_iterator())
    return np.concatenate(images), np.concatenate(labels)


def _size(paths):
    total = 0
    for path in paths:
        if os.path.isdir(path):
            total += sum(os.path.getsize(os.path.join(r, f)) for r, _, files in os.walk(path) for f in files)
        elif not path.endswith(".labels.txt"):
            total += os.path.getsize(path)
    return total


def _latency(runners, images, rounds, calls):
    """``{name: median over rounds of seconds per single-image call}``, interleaved."""
    for run in runners.values():  # warm-up
        for image in images[:5]:
            run(image[None])
    per_round = {name: [] for name in runners}
    names = list(runners)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            for image in images[:calls]:
                runners[name](image[None])
            per_round[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(times) for name, times in per_round.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="train --out directories")
    parser.add_argument("--data-dir")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()

    from keras_convnets.runtime import startup
    startup.prefer_onednn()
    startup.quiet_tensorflow_logs()
    from keras_convnets.serving import formats
    from keras_convnets.serving import saved_model as savedmodel

    directory = data_dir(args.data_dir)
    for run in args.runs:
        images, labels = _test_images(run, directory)
        out = tempfile.mkdtemp(prefix="deploy_bench_")
        source = savedmodel.saved_model_dir(run)
        files = {"saved_model": (source, [source])}
        notes = []
        for name, format, quantize, suffix in (("onnx", "onnx", None, ".onnx"), ("litert fp32", "litert", None,
                                                                                  ".tflite"),
                                               ("litert int8", "litert", "int8", "_int8.tflite"),
                                               ("openvino", "openvino", None, ".xml")):
            try:
                result = formats.export(run, format, os.path.join(out, "model" + suffix), quantize=quantize,
                                       data_dir=directory)
            except formats.MissingExtraError as error:
                notes.append(f"{name}: left out, {error}")
                continue
            files[name] = (result.path, list(result.files))
            if result.calibration:
                notes.append(f"{name}: calibrated on {result.calibration}")
        runners = {name: formats.runner(path) for name, (path, _) in files.items()}
        accuracy, outputs = {}, {}
        for name, run_fn in runners.items():
            outputs[name] = np.concatenate([np.asarray(run_fn(images[i:i + 64])) for i in range(0, len(images), 64)])
            accuracy[name] = float(np.mean(outputs[name].argmax(-1) == labels))
        latency = _latency(runners, images, args.rounds, args.calls)
        load = os.getloadavg()
        print(f"== {run} ({len(images)} test images; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
              f"{os.cpu_count()} CPUs)")
        print(f"{'format':<12} {'size MB':>8} {'top-1':>7} {'vs SavedModel':>14} {'max |dp|':>9} {'ms/image':>9}")
        reference = outputs["saved_model"]
        for name in runners:
            agreement = np.mean(outputs[name].argmax(-1) == reference.argmax(-1))
            difference = np.max(np.abs(outputs[name] - reference))
            print(f"{name:<12} {_size(files[name][1]) / 1e6:>8.3f} {accuracy[name]:>7.2%} {agreement:>13.1%} "
                  f"{difference:>9.2g} {latency[name] * 1e3:>9.3f}")
        for note in notes:
            print(note)


if __name__ == "__main__":
    main()
