"""Op-type histogram of the traced train step of our model and keras.applications' (same batch, 32x32): a
load-independent check that the two run the same computation.

    python benchmarks/graph_ops.py resnet50 resnet50v2 densenet121
"""

import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))



def main(names):
    import tensorflow as tf
    from keras_convnets import bench
    from keras_convnets.models.backend import keras
    for name in names or ["resnet50", "resnet50v2", "densenet121"]:
        hists = []
        for source in ("ours", "keras"):
            model = bench.build(name, 32, source, 10)
            step = bench.train_step_fn(model, keras.optimizers.SGD(0.01, momentum=0.9),
                                       keras.losses.SparseCategoricalCrossentropy())
            graph = step.get_concrete_function(tf.TensorSpec((8, 32, 32, 3)), tf.TensorSpec((8,), tf.int64)).graph
            hists.append(collections.Counter(op.type for op in graph.get_operations()))
        diff = {k: (hists[0][k], hists[1][k]) for k in set(hists[0]) | set(hists[1]) if hists[0][k] != hists[1][k]}
        print(f"{name}: ops ours {sum(hists[0].values())}, keras {sum(hists[1].values())}; op types that differ "
              f"(ours, keras): {diff}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
