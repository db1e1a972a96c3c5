"""Every notebook runs top to bottom with KC_FAST=1 (fewer epochs and images, same code path) on the real
CIFAR-10 subset; a failing cell fails the test."""

import pathlib

import pytest

from tests._data_dir import real_data_dir, requires_cifar10

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_five_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["01_densenet121_cifar10.ipynb", "02_build_your_own.ipynb",
                                           "03_model_zoo.ipynb", "04_fine_tune_folder.ipynb",
                                           "05_backbone_features.ipynb"]


@requires_cifar10
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    monkeypatch.setenv("KC_FAST", "1")
    monkeypatch.setenv("KC_OUT_DIR", str(tmp_path))
    monkeypatch.setenv("TFDS_DATA_DIR", real_data_dir())
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()   # raises CellExecutionError, naming the cell, when one fails
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
