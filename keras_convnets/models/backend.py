"""The Keras every model is built with, chosen once.

Model code is written against ``tf.keras``: Keras 3 by default, tf-keras (Keras 2) when ``TF_USE_LEGACY_KERAS=1`` is
set before TensorFlow is imported (multi-worker ``model.fit`` works only on tf-keras in TF 2.21; see the README's
"Distributed training"). Only APIs the two share are used; where they differ, the code asks :data:`KERAS_3`.
"""

import tensorflow as tf

keras = tf.keras
layers = keras.layers

#: True under Keras 3, False under tf-keras (Keras 2).
KERAS_3 = str(getattr(keras, "__version__", "2")).startswith("3")
