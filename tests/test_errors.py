"""Bad arguments raise a ValueError that names the argument and what it accepts, before TensorFlow sees them."""

import pytest

import keras_convnets as kc
from keras_convnets.models.backend import keras

CASES = [
    (kc.get_model, ("resnet21",), {}, r"unknown model 'resnet21'; known models: resnet18"),
    (kc.CifarResNet, (21,), {}, r"depth for a CIFAR ResNet must be 6n\+2"),
    (kc.PreActResNet, (165,), {}, r"depth for a pre-activation CIFAR ResNet must be 9n\+2"),
    (kc.WideResNet, (17, 4), {}, r"depth for a Wide ResNet must be 6n\+4"),
    (kc.WideResNet, (16, 0), {}, r"width must be a positive integer"),
    (kc.ResNeXt, (29, 0, 64), {}, r"cardinality must be a positive integer"),
    (kc.ResNet, (42,), {}, r"depth must be one of \[18, 34, 50, 101, 152\]"),
    (kc.DenseNet, (122,), {}, r"depth must be one of \[121, 161, 169, 201, 264\]"),
    (kc.CifarDenseNet, (101,), {}, r"depth for DenseNet-BC .* must be 6n\+4"),
    (kc.CifarDenseNet, (41,), {"bottleneck": False, "compression": 1.0}, r"must be 3n\+4"),
    (kc.CifarDenseNet, (100, 0), {}, r"growth_rate must be a positive integer"),
    (kc.CifarDenseNet, (100, -12), {}, r"growth_rate must be a positive integer"),
    (kc.CifarDenseNet, (100,), {"compression": 0.0}, r"compression must be a number in \(0, 1\]"),
    (kc.CifarDenseNet, (100,), {"compression": 1.5}, r"compression must be a number in \(0, 1\]"),
    (kc.CifarDenseNet, (100,), {"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
    (kc.WideResNet, (16, 4), {"dropout": -0.1}, r"dropout must be a number in \[0, 1\)"),
    (kc.ResNet20, (), {"dropout": 0.3}, r"dropout is not an option of resnet20: only the CIFAR Wide ResNets \(wrn\) "
                                        r"and the DenseNets \(densenet\) take it"),
    (kc.ResNet110, (), {"stochastic_depth": 1.5}, r"stochastic_depth .* must be a number in \(0, 1\]"),
    # A model option the architecture does not take names the option and the families that do (issue 11: it was
    # "build_densenet() got an unexpected keyword argument 'stochastic_depth'").
    (kc.DenseNet121, (), {"stochastic_depth": 0.5}, r"stochastic_depth is not an option of densenet121: only the "
                                                    r"residual families \(resnet, preact_resnet, wrn, resnext\)"),
    (kc.get_model, ("densenet_bc_100",), {"stochastic_depth": 0.5}, r"stochastic_depth is not an option of "),
    (kc.ResNet20, (), {"memory_efficient": True}, r"memory_efficient is not an option of resnet20: only the "
                                                  r"DenseNets \(densenet\) take it"),
    (kc.WideResNet50_2, (), {"dropout": 0.3}, r"dropout is not an option of wide_resnet50_2"),
    (kc.DenseNet121, (), {"memory_efficient": "yes"}, r"memory_efficient must be False or True; got 'yes'"),
    (kc.ResNet, (50,), {"layout": "caffe"}, r"layout must be 'torchvision', 'keras' or 'keras_v2'; got 'caffe'"),
    (kc.ResNet50, (), {"input_shape": (16, 16, 3)}, r"smaller than this model can downsample: .* at least 32"),
    (kc.ResNet20, (), {"input_shape": (2, 2, 3)}, r"at least 4"),
    (kc.ResNet20, (), {"input_shape": (32, 32)}, r"input_shape must have 3 entries"),
    (kc.ResNet50, (), {"weights": "imagenet", "input_shape": (224, 224, 1), "include_top": False},
     r"weights='imagenet' needs 3 input channels"),
    (kc.ResNet20, (), {"input_shape": (32, 32, 0)}, r"channel count must be a positive integer"),
    (kc.ResNet50, (), {"weights": "imagenet", "classes": 10}, r"classes must be 1000 with weights='imagenet'"),
    (kc.ResNet50, (), {"pooling": "avg"}, r"pooling='avg' applies only with include_top=False"),
    (kc.ResNet50, (), {"include_top": False, "pooling": "mean"}, r"pooling must be None, 'avg' or 'max'"),
    (kc.ResNet20, (), {"classes": 0}, r"classes must be a positive integer"),
    (kc.ResNet20, (), {"weights": "/no/such/file.weights.h5"}, r"weights must be None, 'imagenet', or the path"),
    (kc.ResNet20, (), {"weights": "imagenet"}, r"weights='imagenet' is published only for"),
    (kc.ResNet20, (), {"data_format": "NHWC"}, r"data_format must be 'channels_last' or 'channels_first'"),
    (kc.ResNet20, (), {"weight_decay": -1e-4}, r"weight_decay must be a finite number >= 0"),
    (kc.ResNet20, (), {"input_tensor": [1, 2, 3]}, r"input_tensor must be a Keras tensor"),
]


@pytest.mark.parametrize("fn,args,kwargs,message", CASES,
                         ids=[f"{fn.__name__}-{i}" for i, (fn, _, _, _) in enumerate(CASES)])
def test_bad_argument_raises_value_error_naming_it(fn, args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fn(*args, **kwargs)


def test_input_tensor_is_accepted_and_becomes_the_model_input():
    image = keras.Input((32, 32, 3))
    model = kc.ResNet20(input_tensor=image)
    assert model.inputs[0] is image or model.inputs[0].shape == image.shape
