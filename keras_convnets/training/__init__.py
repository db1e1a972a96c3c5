"""Training registered models: tfds input pipelines (``data``), the papers' recipes (``recipes``), ``tf.distribute``
strategies (``distribute``), the fit loop (``loop``), the SavedModel export (``export``) and the runtime settings
chosen per machine (``performance``).

Knows models only through :mod:`keras_convnets.models.registry`. This package imports nothing, so importing it is
free; the submodules import TensorFlow only when they do work.
"""
