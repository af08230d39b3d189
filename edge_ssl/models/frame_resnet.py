"""2D frame encoder of "What can you learn from your muscles" (Ehsani et al., ICLR 2021): ResNet-18 and reductions.

The paper's backbone is torchvision's ResNet-18 without its classifier, run on every frame independently: conv1 64
7x7/2 -> BN -> ReLU -> max-pool 3/2; four stages (layer1..layer4) of two BasicBlocks (3x3 conv -> BN -> ReLU -> 3x3
conv -> BN, plus the identity or a 1x1/2 conv + BN shortcut) with 64, 128, 256 and 512 channels, the first block of
layer2..layer4 striding by 2; global average pooling to 512. The sequence heads read the layer4 map (512 x 7 x 7 at
224 px), so the model returns both the pooled vector and that map.

Padding is explicit and symmetric, as in torchvision (Keras's "same" pads stride-2 convolutions asymmetrically), so the
layout matches torchvision's layer for layer. The max-pool pads with zeros where torchvision pads with -inf: the same,
because it follows a ReLU. No residual BN starts at zero (torchvision's default `zero_init_residual=False`).

Variants (decoded here only): `paper` (ResNet-18, 224 px), `small` (ResNet-10: one block per stage, half width,
112 px), `tiny` (one block per stage, widths 8..64, 3x3/1 stem, 32 px, for tests).
"""

import dataclasses

from edge_ssl.keras import keras
from edge_ssl.models import layers


@dataclasses.dataclass(frozen=True)
class FrameResNetVariant:
    input_size: int
    blocks: tuple[int, int, int, int]  # BasicBlocks in layer1..layer4
    widths: tuple[int, int, int, int]  # output channels of layer1..layer4
    stem_width: int
    stem_kernel: int
    stem_stride: int


VARIANTS = {
    "paper": FrameResNetVariant(224, (2, 2, 2, 2), (64, 128, 256, 512), 64, 7, 2),
    "small": FrameResNetVariant(112, (1, 1, 1, 1), (32, 64, 128, 256), 32, 7, 2),
    "tiny": FrameResNetVariant(32, (1, 1, 1, 1), (8, 16, 32, 64), 8, 3, 1),
}


def _variant(name: str) -> FrameResNetVariant:
    if name not in VARIANTS:
        raise ValueError(f"unknown frame ResNet variant {name!r}; choose one of {sorted(VARIANTS)}")
    return VARIANTS[name]


def layer4_shape(variant: str) -> tuple[int, int, int]:
    """(height, width, channels) of the layer4 map for the variant's input size."""
    v = _variant(variant)
    # Each stride-2 step with symmetric padding maps s -> ceil(s / 2) for the kernels used here.
    size = -(-v.input_size // v.stem_stride)
    for _ in range(4):  # max-pool, layer2, layer3, layer4
        size = -(-size // 2)
    return size, size, v.widths[-1]


def _conv(x, filters, kernel, stride, name):
    if kernel > 1:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(filters, kernel, strides=stride, use_bias=False, name=name)(x)


def _bn(x, name):
    # torchvision's BN: eps 1e-5, running statistics updated with momentum 0.1 (Keras: 0.9).
    return keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=name)(x)


def _basic_block(x, filters, stride, name):
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _bn(_conv(x, filters, 1, stride, f"{name}_downsample"), f"{name}_downsample_bn")
    y = _conv(x, filters, 3, stride, f"{name}_conv1")
    y = keras.layers.ReLU(name=f"{name}_relu1")(_bn(y, f"{name}_bn1"))
    y = _bn(_conv(y, filters, 3, 1, f"{name}_conv2"), f"{name}_bn2")
    return keras.layers.ReLU(name=f"{name}_out")(
        keras.layers.Add(name=f"{name}_add")([shortcut, y])
    )


def frame_resnet(variant: str = "paper", name: str = "frame") -> keras.Model:
    """A 2D ResNet from RGB frames [B, S, S, 3] in [0, 1] to (pooled [B, D], layer4 map [B, h, w, D]).

    The input is standardised with ImageNet statistics inside the model, as the paper's data pipeline does.

    Args:
      variant: "paper" (ResNet-18), "small" or "tiny" (see VARIANTS).
      name: model and layer-name prefix.

    Returns:
      A functional keras.Model with two outputs: the globally average-pooled features and the layer4 map.
    """
    v = _variant(variant)
    inputs = keras.Input((v.input_size, v.input_size, 3), name=f"{name}_input")
    x = layers.Standardize(layers.IMAGENET_MEAN, layers.IMAGENET_STD, name=f"{name}_standardize")(
        inputs
    )
    x = _conv(x, v.stem_width, v.stem_kernel, v.stem_stride, f"{name}_conv1")
    x = keras.layers.ReLU(name=f"{name}_relu")(_bn(x, f"{name}_bn1"))
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_maxpool_pad")(x)
    x = keras.layers.MaxPool2D(3, 2, name=f"{name}_maxpool")(x)
    for stage, (blocks, width) in enumerate(zip(v.blocks, v.widths), start=1):
        for block in range(blocks):
            stride = 2 if (stage > 1 and block == 0) else 1
            x = _basic_block(x, width, stride, f"{name}_layer{stage}_{block}")
    pooled = keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
    return keras.Model(inputs, [pooled, x], name=name)
