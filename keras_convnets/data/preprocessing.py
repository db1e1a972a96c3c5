"""The model's input normalization, inside the model: a trained model takes raw ``uint8`` images, so its SavedModel
serves them (:func:`preprocessing_model`)."""


def preprocessing_model(model, spec, image_shape, name=None):
    """``model`` behind its input preprocessing: uint8 images -> float32 -> per-channel ``(x/255 - mean) / std``.

    Args:
        model: a Keras model taking the normalized images.
        spec: anything with per-channel ``mean`` and ``std`` of pixels in [0, 1] (a
            :class:`~keras_convnets.data.catalog.Statistics`, a :class:`~keras_convnets.data.catalog.DatasetSpec`,
            pretrained weights' :class:`~keras_convnets.models.pretrained.Preprocessing`).
        image_shape: ``(height, width, 3)`` of the images it takes.
        name: the returned model's name (default: ``model``'s).

    Returns:
        A Keras model taking raw ``uint8 [B, H, W, 3]`` images, which is what the SavedModel serves.
    """
    from keras_convnets.models.backend import keras

    mean = [255.0 * m for m in spec.mean]
    variance = [(255.0 * s) ** 2 for s in spec.std]
    images = keras.Input(shape=tuple(image_shape), dtype="uint8", name="images")
    x = keras.layers.Normalization(mean=mean, variance=variance, dtype="float32", name="normalize")(images)
    return keras.Model(images, model(x), name=name or model.name)
