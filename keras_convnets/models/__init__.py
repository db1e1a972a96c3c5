"""The models: the Keras choice (``backend``), layer defaults (``config``), custom ``layers``, pure ``blocks``, the
memory-efficient DenseNet layer (``recompute``), the builder core shared by the families (``application``,
``weights``), one module per family (``resnet``, ``densenet``) where each named model is defined and registered, the
``registry`` with its generated ``counts``, and ``flops``. See CONTRIBUTING.md for the design.

Nothing here imports :mod:`keras_convnets.training`. Import the submodules directly (``from keras_convnets.models
import registry``); this package imports nothing, so importing it is free.
"""
