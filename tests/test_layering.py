"""The package's layers (CONTRIBUTING.md, "The layers, bottom up") as a test: every import in ``keras_convnets/``,
function-local ones included, points down or sideways within a layer, and no set of modules imports itself round.

Reads the source with ``ast`` only (no module is imported), so it runs in a second and without TensorFlow.
"""

import ast
import os
from typing import Dict, List, Set, Tuple

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "keras_convnets")
PACKAGE = "keras_convnets"

#: CONTRIBUTING.md's layer table, bottom up: a module may import modules of its own row or of the rows above it.
#: A module of the package in no row fails the test (add it where it belongs).
LAYERS: List[Tuple[str, Tuple[str, ...]]] = [
    ("argument checks, publishing, the run directory", ("checks", "publish", "run_directory")),
    ("pretrained weights records", ("models.pretrained",)),
    ("checkpoint files", ("models.checkpoints",)),
    ("ImageNet classes", ("models.imagenet",)),
    ("the Keras choice", ("models.backend",)),
    ("TensorFlow-only ops", ("models.tf_ops",)),
    ("layers", ("models.layers", "models.recompute")),
    ("layer defaults", ("models.config",)),
    ("blocks", ("models.blocks",)),
    ("weights", ("models.weights", "models.torch_weights")),
    ("builder core", ("models.application",)),
    ("families", ("models.resnet", "models.densenet")),
    ("FLOPs", ("models.flops",)),
    ("registry", ("models.registry", "models.counts")),
    ("runtime: start-up, machine", ("runtime.startup", "runtime.machine")),
    ("runtime: precision", ("runtime.precision",)),
    ("runtime: settings, strategies", ("runtime.settings", "runtime.distribute")),
    ("data: transforms, augmentation, folders", ("data.transforms", "data.augment", "data.folders")),
    ("data: catalog", ("data.catalog",)),
    ("data: pipelines, preprocessing", ("data.pipelines", "data.preprocessing")),
    ("serving: the SavedModel", ("serving.saved_model",)),
    ("serving: inference, formats, convert", ("serving.inference", "serving.formats", "serving.convert")),
    ("training: config, recipes", ("training.config", "training.recipes")),
    ("training: plan", ("training.plan",)),
    ("training: callbacks, checkpoint, EMA, fine-tuning", ("training.callbacks", "training.checkpoint",
                                                           "training.ema", "training.finetune")),
    ("training: loop", ("training.loop",)),
    ("command line", ("cli", "cli.*")),
]

#: Package ``__init__`` modules: ``keras_convnets`` loads its public names lazily (on first use) from every layer;
#: the layers' packages are empty namespaces. Imports *of* them are read as imports of the named submodule.
PACKAGES = ("", "models", "runtime", "data", "serving", "training")
#: The floors, bottom up: a module of one imports none of a higher one (also checked by the table's order; named here
#: so the failure says which floors).
FLOORS = ("models", "runtime", "data", "serving", "training", "cli")


def _module_files() -> Dict[str, str]:
    files = {}
    for folder, _, names in os.walk(ROOT):
        for file_name in names:
            if file_name.endswith(".py"):
                path = os.path.join(folder, file_name)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                files[".".join(parts)] = path
    return files


def _imports(module: str, path: str, known: Set[str]) -> List[Tuple[str, int]]:
    """``(imported module of the package, line)`` for every import statement in ``path``, at any depth."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    is_package = path.endswith("__init__.py")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against this module's package
                base = (module.split(".") if is_package else module.split(".")[:-1])
                base = base[:len(base) - (node.level - 1)]
                prefix = ".".join([PACKAGE, *base] + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]
        else:
            continue
        for name in names:
            if name != PACKAGE and not name.startswith(PACKAGE + "."):
                continue
            target = name[len(PACKAGE) + 1:]
            # "from keras_convnets.models import resnet" names a module; "from ...resnet import X" names one too.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target not in PACKAGES:
                found.append((target, node.lineno))
                break
    return found


def import_graph() -> Dict[str, List[Tuple[str, int]]]:
    """Module (relative to the package) -> ``[(imported module, line), ...]``."""
    files = _module_files()
    return {module: sorted(set(_imports(module, path, set(files)))) for module, path in files.items()}


def _layer(module: str) -> int:
    for rank, (_, modules) in enumerate(LAYERS):
        for pattern in modules:
            if module == pattern or (pattern.endswith(".*") and module.startswith(pattern[:-1])):
                return rank
    raise AssertionError(f"keras_convnets/{module.replace('.', '/')}.py is in no row of LAYERS (tests/"
                         "test_layering.py): add it to its layer, and to CONTRIBUTING.md's table")


def _pop_component(root: str, stack: List[str], on_stack: Set[str]) -> List[str]:
    """Tarjan's step once ``root`` is a component's root: pops the stack down to ``root``; the modules popped."""
    component = []
    while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == root:
            return component


def _cycles(graph: Dict[str, List[Tuple[str, int]]]) -> List[List[str]]:
    """The strongly connected components of more than one module, or of one that imports itself (Tarjan)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target, _ in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = _pop_component(node, stack, on_stack)
            if len(component) > 1 or any(t == node for t, _ in graph.get(node, ())):
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _where(module: str) -> str:
    return f"keras_convnets/{module.replace('.', '/')}{'/__init__' if module in PACKAGES else ''}.py"


def test_no_import_cycles():
    graph = import_graph()
    problems = []
    for component in _cycles(graph):
        members = set(component)
        edges = [f"{_where(source)}:{line} imports {target}" for source in component
                 for target, line in graph[source] if target in members]
        problems.append(f"cycle {' <-> '.join(component)}: " + "; ".join(edges))
    assert not problems, "\n".join(problems)


def test_imports_point_down():
    graph = import_graph()
    problems = []
    for source, targets in graph.items():
        if source in PACKAGES:
            continue
        for target, line in targets:
            if _layer(target) > _layer(source):
                problems.append(f"{_where(source)}:{line} imports {target}: {LAYERS[_layer(source)][0]} is below "
                                f"{LAYERS[_layer(target)][0]}")
    assert not problems, "\n".join(problems)


def _floor(module: str) -> int:
    """The floor of a module (:data:`FORMATS`' order); the bottom modules (checks, publish, run_directory): -1."""
    top = module.split(".")[0]
    return FLOORS.index(top) if top in FLOORS else -1


def test_no_floor_imports_a_higher_one():
    """models -> runtime -> data -> serving -> training -> cli: in particular data and serving never import
    training, and nothing but the command line imports it."""
    graph = import_graph()
    problems = [f"{_where(source)}:{line} imports {target}: {FLOORS[_floor(source)] if _floor(source) >= 0 else source}"
                f" is below {FLOORS[_floor(target)]}" for source, targets in graph.items() if source not in PACKAGES
                for target, line in targets if _floor(target) > _floor(source)]
    assert not problems, "\n".join(problems)


def test_the_graph_sees_function_local_and_relative_imports(tmp_path):
    """The walker itself: an import inside a function body counts, and so does a relative one."""
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from keras_convnets.models import registry\n    from . import resnet\n")
    assert _imports("models.x", str(path), {"models.registry", "models.resnet", "models.x"}) == [
        ("models.registry", 2), ("models.resnet", 3)]
