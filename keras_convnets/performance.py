"""CPU/throughput settings decided in one place (measured choices, see benchmarks/): the tf.data options of the
input pipeline and the compile options of training. The data and training modules only call these."""

import tensorflow as tf


def dataset_options() -> tf.data.Options:
    """Options applied to every input pipeline we build."""
    return tf.data.Options()


def compile_options(info=None) -> dict:
    """Extra ``model.compile`` keyword arguments for training the registered model ``info`` on this machine."""
    return {}
