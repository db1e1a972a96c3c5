"""``keras-convnets convert``: a torchvision / timm checkpoint as a Keras weights file, and optionally as the
uint8-serving SavedModel ``keras-convnets predict`` reads.

Above the models (it builds registered models, loads the checkpoint through
:mod:`keras_convnets.models.torch_weights`) and beside the other exports (its SavedModel is
:func:`keras_convnets.serving.saved_model.export_saved_model`'s); only the command line imports it.
"""

import os
import warnings
from typing import List, Optional

from keras_convnets import publish
from keras_convnets.data.preprocessing import preprocessing_model
from keras_convnets.models import pretrained, registry, resnet, torch_weights
from keras_convnets.models.backend import KERAS_3
from keras_convnets.models.imagenet import imagenet_class_names
from keras_convnets.serving.saved_model import export_saved_model


def build_for_checkpoint(name: str, **kwargs):
    """Registered model ``name`` in the layout torchvision/timm checkpoints fit: the registry's factory, except for
    ResNet-50/101/152, registered in keras.applications' layout, which are built with ``layout="torchvision"``."""
    info = registry.model_info(name)
    if info.name in pretrained.KERAS_LAYOUT_RESNETS:
        return resnet.ResNet(int(info.name[6:]), layout="torchvision", **kwargs)
    return info.build(**kwargs)


def convert(source, model_name: str, out: str, *, classes: Optional[int] = None,
            export_dir: Optional[str] = None) -> List[str]:
    """Writes the weights of checkpoint ``source`` (a file, or ``"torchvision"`` / ``"timm[:tag]"``) for
    registered model ``model_name`` to a Keras weights file ``out``; with ``classes`` other than the checkpoint's,
    the backbone only (a fresh classifier). ``export_dir``: also a SavedModel serving raw uint8 images in the view
    the weights expect (short side resized to ``resize_size`` with their interpolation, centre ``input_size`` crop,
    ImageNet normalisation in front; torchvision's 256 -> 224 bilinear for a file) for ``keras-convnets predict``.
    Returns what was done, in lines.

    Both outputs are published (:func:`keras_convnets.publish.publishing`): written beside their place, checked
    (the weights file loaded back), then swapped in; an ``out`` or ``export_dir`` that exists and is not a weights
    file or SavedModel this package wrote is refused before anything is done, and a missing folder is created.
    """
    suffix = ".weights.h5" if KERAS_3 else ".h5"
    if not str(out).endswith(suffix):
        raise ValueError(f"--out must end in {suffix} (a Keras weights file); got {out!r}")
    out = os.path.abspath(os.fspath(out))
    publish.check_replaceable(out, publish.WEIGHTS)
    if export_dir:
        export_dir = os.path.abspath(os.fspath(export_dir))
        publish.check_replaceable(export_dir, publish.SAVED_MODEL, "--export")
    name = registry.model_info(model_name).name
    kwargs = {} if classes is None else {"classes": classes}
    model = build_for_checkpoint(name, **kwargs)
    preprocessing, class_names = pretrained.TORCH_MODE, pretrained.IMAGENET_CLASSES   # torchvision's, for a file
    if pretrained.is_named_source(source):
        entry = pretrained.published_checkpoint(name, source)
        preprocessing, class_names = entry.preprocessing, entry.class_names
        source = torch_weights.fetch(name, source)
    elif not os.path.isfile(source):
        raise ValueError(f"SOURCE must be a checkpoint file or 'torchvision' / 'timm[:tag]'; got {source!r}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = torch_weights.load_checkpoint(model, source, skip_mismatch=classes is not None)
    lines = [str(w.message) for w in caught if "skipped the classifier" in str(w.message)]
    write_weights(model, out)
    layout = f" (load with keras_convnets.ResNet({name[6:]}, layout=\"torchvision\", weights=...))" \
        if name in pretrained.KERAS_LAYOUT_RESNETS else ""
    lines.append(f"wrote {out}: {report.loaded} tensors of {source} into {model.name}{layout}")
    if export_dir:
        size = preprocessing.input_size
        served = preprocessing_model(model, preprocessing, (size, size, 3))
        classes_out = model.output_shape[-1]
        names = imagenet_class_names() if class_names == pretrained.IMAGENET_CLASSES and classes is None \
            and classes_out == 1000 else \
            [str(i) for i in range(classes_out)]
        export_saved_model(served, export_dir, names,
                           crop_fraction=preprocessing.crop_fraction, interpolation=preprocessing.interpolation)
        lines.append(f"saved model: {export_dir} (uint8 images of any size in, probabilities out; it resizes the "
                     f"short side to {preprocessing.resize_size} ({preprocessing.interpolation}) and centre-crops "
                     f"{size}x{size}, as the weights expect)")
    return lines


def write_weights(model, out: str) -> str:
    """Publishes ``model``'s weights as the Keras weights file ``out``: written beside it, marked as ours
    (:func:`keras_convnets.publish.mark_hdf5`), loaded back into ``model`` as the check, then swapped in."""
    with publish.publishing({out: publish.WEIGHTS}) as staged:
        model.save_weights(staged[out])
        publish.mark_hdf5(staged[out])
        model.load_weights(staged[out])  # the file reads back whole (a failed write raises here, out untouched)
    return out
