"""CaffeNet-BN and VGG16-BN encoders of Cross and Learn (Sayed et al., GCPR 2018), for RGB, flow or differences.

CaffeNet-BN: conv1 96 11x11/4 -> ReLU -> BN -> max-pool 3/2; conv2 256 5x5 (2 groups) -> ReLU -> BN -> pool;
conv3 384 3x3; conv4 384 3x3 (2 groups); conv5 256 3x3 (2 groups) -> pool (256x6x6 = 9216 at 224 px);
fc6 4096 and fc7 4096 with dropout 0.5. BN follows the ReLU, as in the paper's code. The loss acts on `fc6` by default
(the output after Dropout -> Dense -> ReLU); `conv5`, `pool5` and `fc7` are the other choices.

Variants (decoded here only): `paper` (the layers above, 224 px), `small` (the same layout, narrower, 112 px) and
`tiny` (32 px, for tests). `vgg16` is VGG16-BN (13 conv layers, 512x7x7 -> fc6 4096 -> fc7 4096).
"""

import dataclasses

from edge_ssl.keras import keras
from edge_ssl.models import layers

FEATURE_LAYERS = ("conv5", "pool5", "fc6", "fc7")


@dataclasses.dataclass(frozen=True)
class CaffeNetVariant:
    input_size: int
    conv_widths: tuple[int, int, int, int, int]
    conv1_kernel: int
    conv1_stride: int
    fc_width: int
    groups: int = 2


CAFFENET_VARIANTS = {
    "paper": CaffeNetVariant(224, (96, 256, 384, 384, 256), 11, 4, 4096),
    "small": CaffeNetVariant(112, (32, 64, 96, 96, 64), 11, 4, 512),
    "tiny": CaffeNetVariant(32, (8, 16, 16, 16, 16), 5, 2, 64),
}
VGG16_WIDTHS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def _conv_relu_bn(x, filters, kernel, name, strides=1, groups=1, padding="same"):
    x = keras.layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        groups=groups,
        activation="relu",
        name=name,
    )(x)
    return keras.layers.BatchNormalization(name=f"{name}_bn")(x)


def _input_and_preprocess(
    input_size: int, in_channels: int, modality: str, name: str, subtract_mean: bool = True
):
    inputs = keras.Input((input_size, input_size, in_channels), name=f"{name}_input")
    if modality == "rgb":
        if in_channels != 3:
            raise ValueError(f"an RGB encoder takes 3 channels, got {in_channels}")
        x = layers.Standardize(
            layers.IMAGENET_MEAN, layers.IMAGENET_STD, name=f"{name}_standardize"
        )(inputs)
    elif modality in ("flow", "diff"):
        x = layers.SubtractSpatialMean(name=f"{name}_submean")(inputs) if subtract_mean else inputs
    else:
        raise ValueError(f"unknown modality {modality!r}; choose rgb, flow or diff")
    return inputs, x


def _classifier(x, fc_width: int, dropout: float, feature_layer: str, name: str):
    outputs = {}
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    outputs["pool5"] = x
    x = keras.layers.Dropout(dropout, name=f"{name}_drop6")(x)
    x = keras.layers.Dense(fc_width, activation="relu", name=f"{name}_fc6")(x)
    outputs["fc6"] = x
    if feature_layer == "fc7":
        x = keras.layers.Dropout(dropout, name=f"{name}_drop7")(x)
        outputs["fc7"] = keras.layers.Dense(fc_width, activation="relu", name=f"{name}_fc7")(x)
    return outputs[feature_layer]


def _check(feature_layer: str) -> None:
    if feature_layer not in FEATURE_LAYERS:
        raise ValueError(f"unknown feature layer {feature_layer!r}; choose one of {FEATURE_LAYERS}")


def caffenet_bn(
    variant: str = "paper",
    in_channels: int = 3,
    modality: str = "rgb",
    feature_layer: str = "fc6",
    dropout: float = 0.5,
    name: str = "caffenet",
    subtract_mean: bool = True,
) -> keras.Model:
    """CaffeNet-BN from an image [B, S, S, in_channels] to its features at `feature_layer` [B, D].

    Args:
      variant: "paper", "small" or "tiny" (see CAFFENET_VARIANTS).
      in_channels: 3 for RGB, 20 for a 10-frame flow stack, 12 for 4 frame differences.
      modality: "rgb" (ImageNet standardisation) or "flow" / "diff" (per-channel spatial mean subtracted).
      feature_layer: "conv5", "pool5", "fc6" (default, as the paper) or "fc7". Layers past it are not built.
      dropout: before fc6 and fc7.
      name: model and layer-name prefix (two encoders in one method need different names).
      subtract_mean: flow / diff only: subtract each channel's spatial mean (False: the input as it is).

    Returns:
      A functional keras.Model; `model.get_config()` / `keras.Model.from_config` round-trip it.
    """
    _check(feature_layer)
    if variant not in CAFFENET_VARIANTS:
        raise ValueError(
            f"unknown CaffeNet variant {variant!r}; choose one of {sorted(CAFFENET_VARIANTS)}"
        )
    v = CAFFENET_VARIANTS[variant]
    inputs, x = _input_and_preprocess(v.input_size, in_channels, modality, name, subtract_mean)
    w1, w2, w3, w4, w5 = v.conv_widths
    x = keras.layers.ZeroPadding2D(2, name=f"{name}_pad1")(x)
    x = _conv_relu_bn(
        x, w1, v.conv1_kernel, f"{name}_conv1", strides=v.conv1_stride, padding="valid"
    )
    x = keras.layers.MaxPool2D(3, 2, name=f"{name}_pool1")(x)
    x = _conv_relu_bn(x, w2, 5, f"{name}_conv2", groups=v.groups)
    x = keras.layers.MaxPool2D(3, 2, name=f"{name}_pool2")(x)
    x = _conv_relu_bn(x, w3, 3, f"{name}_conv3")
    x = _conv_relu_bn(x, w4, 3, f"{name}_conv4", groups=v.groups)
    x = _conv_relu_bn(x, w5, 3, f"{name}_conv5", groups=v.groups)
    if feature_layer == "conv5":
        features = keras.layers.Flatten(name=f"{name}_flatten")(x)
    else:
        x = keras.layers.MaxPool2D(3, 2, name=f"{name}_pool5")(x)
        features = _classifier(x, v.fc_width, dropout, feature_layer, name)
    return keras.Model(inputs, features, name=name)


def vgg16_bn(
    in_channels: int = 3,
    modality: str = "rgb",
    feature_layer: str = "fc6",
    dropout: float = 0.5,
    input_size: int = 224,
    name: str = "vgg16",
    subtract_mean: bool = True,
) -> keras.Model:
    """VGG16-BN (conv -> BN -> ReLU, 13 conv layers, 512x7x7 -> fc6 4096 -> fc7 4096) to `feature_layer` features;
    the arguments as `caffenet_bn`'s."""
    _check(feature_layer)
    inputs, x = _input_and_preprocess(input_size, in_channels, modality, name, subtract_mean)
    for stage, widths in enumerate(VGG16_WIDTHS, start=1):
        for i, width in enumerate(widths, start=1):
            x = keras.layers.Conv2D(width, 3, padding="same", name=f"{name}_conv{stage}_{i}")(x)
            x = keras.layers.BatchNormalization(name=f"{name}_conv{stage}_{i}_bn")(x)
            x = keras.layers.ReLU(name=f"{name}_conv{stage}_{i}_relu")(x)
        if stage == 5 and feature_layer == "conv5":
            return keras.Model(inputs, keras.layers.Flatten(name=f"{name}_flatten")(x), name=name)
        x = keras.layers.MaxPool2D(2, 2, name=f"{name}_pool{stage}")(x)
    return keras.Model(inputs, _classifier(x, 4096, dropout, feature_layer, name), name=name)
