"""Smoke test of the benchmark: it runs on a tiny setting, prints its numbers and returns them. Never a timing test."""

import argparse

from keras_convnets.cli import bench


def test_bench_runs_and_prints_numbers(capsys):
    args = bench.add_arguments(argparse.ArgumentParser()).parse_args(
        ["--models", "resnet20", "--batch", "8", "--steps", "1", "--rounds", "2", "--warmup", "1"])
    results = bench.measure_all(args)
    out = capsys.readouterr().out
    assert {r["mode"] for r in results} == {"train", "infer"}
    for r in results:
        assert r["images_per_s"] > 0 and r["gflop_per_s"] > 0
        assert r["gflops"] == 40551040 / 1e9
    assert "resnet20" in out and "GFLOP/s" in out


def test_cli_entry_returns_exit_status_zero(capsys):
    args = bench.add_arguments(argparse.ArgumentParser()).parse_args(
        ["--models", "resnet20", "--batch", "2", "--mode", "infer", "--steps", "1", "--rounds", "1", "--warmup", "0"])
    assert bench.run(args) == 0
    assert "resnet20" in capsys.readouterr().out


def test_bench_compares_with_keras_applications_and_reports_a_ratio():
    results = bench.bench_model("resnet50", size=32, batch=2, mode="infer", steps=1, rounds=2, warmup=1,
                                compare_keras=True)
    assert results[1]["model"] == "keras.applications.ResNet50"
    assert results[0]["gflops"] == results[1]["gflops"]
    assert results[0]["ratio_vs_keras"] > 0 and len(results[0]["ratios"]) == 2


def test_benchmark_data_loading_fails_clearly_instead_of_timing_random_images(tmp_path, monkeypatch):
    """Issue 11: bench's CIFAR pipeline silently fell back to random images on any exception while loading data.
    The pipeline now lives with the scripts that use it (benchmarks/_common.py) and stops with the reason."""
    import pathlib
    import sys

    import pytest

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).parent.parent / "benchmarks"))
    sys.modules.pop("_common", None)
    import _common

    with pytest.raises(SystemExit, match=r"no prepared CIFAR-10 in .*set TFDS_DATA_DIR"):
        _common.cifar_pipeline(8, directory=str(tmp_path))
    assert not hasattr(bench, "cifar_pipeline")
