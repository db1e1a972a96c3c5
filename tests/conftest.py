"""Runs the suite with the kernels the ``keras-convnets`` command uses: oneDNN on unless TF_ENABLE_ONEDNN_OPTS says
otherwise (set before any test module imports TensorFlow)."""

from keras_convnets.training import performance

performance.prefer_onednn()
