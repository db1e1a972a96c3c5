"""Throughput and GFLOP/s of registered models, optionally against keras.applications (interleaved, median ratio).

    python benchmarks/bench.py --models resnet50,resnet50v2,densenet121 --size 32 --batch 32 --compare-keras

Same as ``keras-convnets bench``; see keras_convnets/bench.py for the method.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_convnets import bench  # noqa: E402

if __name__ == "__main__":
    sys.exit(bench.main())
