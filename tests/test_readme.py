"""The README's model table is the registry's, and its commands are the ones CI and the CLI really take."""

import pathlib

from keras_convnets.models import registry

ROOT = pathlib.Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_model_table_is_generated_from_the_registry():
    start, end = (README.index(marker) for marker in registry.README_MARKERS)
    table = README[start + len(registry.README_MARKERS[0]):end].strip()
    assert table == registry.markdown_table(), "run: python -m tools.registry --write"


def test_readme_starts_with_the_two_commands():
    commands = [line for line in README.splitlines() if line.startswith("python3 -m venv")]
    assert len(commands) >= 2
    assert "keras-convnets train resnet20 --dataset cifar10" in commands[0]
    assert "bash .ci/run" in commands[1]
    assert README.index(commands[1]) < README.index("## Quickstart")
