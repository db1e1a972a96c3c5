"""The one place a ``tf.distribute`` strategy is chosen from its name (``--strategy``)."""

#: Names accepted by :func:`get_strategy`.
STRATEGIES = ("auto", "default", "mirrored")


def get_strategy(name: str = "auto"):
    """``auto``/``default``: TensorFlow's default strategy (one device); ``mirrored``: ``MirroredStrategy`` over
    the local devices (synchronous data parallelism, gradients all-reduced)."""
    import tensorflow as tf

    if name in ("auto", "default"):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; known strategies: {', '.join(STRATEGIES)}")
