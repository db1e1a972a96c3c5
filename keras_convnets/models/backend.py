"""The Keras every model is built with, chosen once, without importing TensorFlow.

* Keras 3 (``import keras``) by default, on whatever backend it is configured for (``KERAS_BACKEND`` or
  ``~/.keras/keras.json``: TensorFlow, JAX or PyTorch). The model code is written against ``keras.ops`` /
  ``keras.random``, so it runs on every backend; TensorFlow is imported only if it is the backend, by Keras itself.
* tf-keras (Keras 2, ``import tf_keras``) when ``TF_USE_LEGACY_KERAS`` is set to what TensorFlow itself reads as true
  (``1``, ``true``, ``True``: the same test as ``tf.keras``, so the two never disagree). Multi-worker ``model.fit``
  works only there in TF 2.21 (README, "Distributed training"). tf-keras has no ``keras.ops``: the code paths that
  ask :data:`KERAS_3` and find it False are written with TensorFlow ops (tf-keras runs only on TensorFlow).

:data:`BACKEND` names the backend (``"tensorflow"`` under tf-keras); :func:`require_tensorflow` is the one-line
refusal of an option that exists only on TensorFlow.
"""

import os

#: What TensorFlow's ``tf.keras`` loader counts as "true" for ``TF_USE_LEGACY_KERAS`` (tensorflow/python/util/
#: lazy_loader.py): with any other value ``tf.keras`` is Keras 3, and so must ours be.
LEGACY_KERAS_VALUES = ("1", "true", "True")

if os.environ.get("TF_USE_LEGACY_KERAS") in LEGACY_KERAS_VALUES:
    import tf_keras as keras
else:
    import keras

layers = keras.layers

#: True under Keras 3, False under tf-keras (Keras 2).
KERAS_3 = str(getattr(keras, "__version__", "2")).startswith("3")

#: The Keras backend the models run on: "tensorflow", "jax" or "torch" (tf-keras: always "tensorflow").
BACKEND = keras.backend.backend() if KERAS_3 else "tensorflow"


def require_tensorflow(option: str, why: str) -> None:
    """A one-line ValueError naming ``option`` and this process's backend unless Keras runs on TensorFlow; ``why``
    says what only TensorFlow has."""
    if BACKEND != "tensorflow":
        raise ValueError(f"{option} needs Keras' TensorFlow backend ({why}); this process runs Keras on {BACKEND} "
                         "(KERAS_BACKEND=tensorflow selects it)")

