"""Suite-wide settings, applied before any test module imports TensorFlow.

- Kernels: the ones the ``keras-convnets`` command uses (oneDNN on unless TF_ENABLE_ONEDNN_OPTS says otherwise).
- Parallel runs (``pytest -n N``, pytest-xdist): each worker's TensorFlow thread pools get an equal share of the
  cores (TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS, unless set), so N workers do not each start a pool as wide
  as the machine and fight over it; subprocesses a test starts inherit the share.
- Tests that share a module-scoped fixture (one training run serving a module's tests) are kept on one worker
  (``xdist_group``, honoured by ``--dist loadgroup``), so the fixture runs once instead of once per worker, and
  those groups are handed out first.
"""

import os

import pytest

from keras_convnets.runtime import startup

startup.prefer_onednn()

_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _share = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _share)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", _share)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    grouped = set()
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        definitions = fixtures.name2fixturedefs.values() if fixtures else ()
        if any(d.scope in ("module", "package", "session") for defs in definitions for d in defs
               if d.baseid):  # baseid "": pytest's own fixtures (tmp_path_factory, ...), not ours
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
            grouped.add(item.nodeid)
    # xdist hands out work units in collection order. The grouped modules are the long ones (a training run shared
    # by the module), so they go first and the many short tests fill the workers' tails, instead of one worker
    # starting a long run while the other has nothing left. (A stable sort: same order on every worker.)
    items.sort(key=lambda item: item.nodeid not in grouped)
