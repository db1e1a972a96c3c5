"""The machine a run lands on and what it decides: how TensorFlow starts (``startup``: kernels, logs, threads), the
``machine`` (cores, accelerators, native bf16), the ``precision`` of training, the input-pipeline and compile
``settings``, and the ``tf.distribute`` strategies (``distribute``).

Imports nothing above the models; this package imports nothing, so importing it is free.
"""
