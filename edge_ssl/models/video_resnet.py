"""Slow-only 3D ResNet (MoDist's visual pathway) and its 1/8-width motion pathway.

Xiao, Tighe and Modolo, "MoDist: Motion Distillation for Self-supervised Video Representation Learning" (arXiv
2106.09703; ECCV 2022 as MaCLR), built on SlowFast's "dense slow" ResNet-50: conv1 5x7x7 (spatial stride 2) + 1x3x3
max-pool; bottleneck stages res2..res5 with 3, 4, 6, 3 blocks, temporal kernels 1, 1, 3, 3 and 256..2048 channels;
global average pooling. The last BN of each block starts at zero (the block starts as the identity). The motion
pathway has the same stages at 1/8 width with temporal kernel 1 everywhere (per-frame 2D convolutions on the flow);
`motion_resnet(width_divisor=...)` sets another fraction (MoDist's small and tiny configs keep the paper's 8-channel
stem, see `MoDistConfig.motion_width_divisor`).

This is a teacher: it uses Conv3D, which students never do (see edge_ssl.models students and the export lint).
Variants are decoded here only: `paper` (R50, 224 px), `small` (one block per stage, 112 px), `tiny` (32 px).
"""

import dataclasses

from edge_ssl.keras import keras
from edge_ssl.models import layers


@dataclasses.dataclass(frozen=True)
class VideoResNetVariant:
    input_size: int
    blocks: tuple[int, int, int, int]
    base_width: int  # bottleneck width of res2; stage outputs are 4x the stage's bottleneck width
    stem_width: int


VARIANTS = {
    "paper": VideoResNetVariant(224, (3, 4, 6, 3), 64, 64),
    "small": VideoResNetVariant(112, (1, 1, 1, 1), 16, 16),
    "tiny": VideoResNetVariant(32, (1, 1, 1, 1), 4, 8),
}
VISUAL_TEMPORAL_KERNELS = (5, 1, 1, 3, 3)  # conv1, res2, res3, res4, res5
MOTION_TEMPORAL_KERNELS = (1, 1, 1, 1, 1)


def _bn(x, name, zero=False):
    return keras.layers.BatchNormalization(
        gamma_initializer="zeros" if zero else "ones", name=name
    )(x)


def _bottleneck(x, width, out, temporal_kernel, stride, name):
    shortcut = x
    if stride != 1 or x.shape[-1] != out:
        shortcut = keras.layers.Conv3D(
            out, 1, strides=(1, stride, stride), use_bias=False, name=f"{name}_proj"
        )(x)
        shortcut = _bn(shortcut, f"{name}_proj_bn")
    y = keras.layers.Conv3D(
        width, (temporal_kernel, 1, 1), padding="same", use_bias=False, name=f"{name}_a"
    )(x)
    y = keras.layers.ReLU(name=f"{name}_a_relu")(_bn(y, f"{name}_a_bn"))
    y = keras.layers.Conv3D(
        width,
        (1, 3, 3),
        strides=(1, stride, stride),
        padding="same",
        use_bias=False,
        name=f"{name}_b",
    )(y)
    y = keras.layers.ReLU(name=f"{name}_b_relu")(_bn(y, f"{name}_b_bn"))
    y = keras.layers.Conv3D(out, 1, use_bias=False, name=f"{name}_c")(y)
    y = _bn(y, f"{name}_c_bn", zero=True)
    return keras.layers.ReLU(name=f"{name}_out")(
        keras.layers.Add(name=f"{name}_add")([shortcut, y])
    )


def video_resnet(
    variant: str = "paper",
    frames: int = 8,
    in_channels: int = 3,
    modality: str = "rgb",
    width_divisor: int = 1,
    temporal_kernels: tuple[int, ...] = VISUAL_TEMPORAL_KERNELS,
    name: str = "visual",
) -> keras.Model:
    """A Slow-only 3D ResNet from a clip [B, T, S, S, C] to pooled features [B, D].

    Args:
      variant: "paper", "small" or "tiny" (see VARIANTS).
      frames: clip length T (static, for export).
      in_channels: 3 for RGB, 2 for flow (3 for colour-coded flow).
      modality: "rgb" (MoDist's mean 0.45 / std 0.225) or "flow" / "diff" (no standardisation).
      width_divisor: 8 for the motion pathway.
      temporal_kernels: temporal kernel of conv1 and of res2..res5.
      name: model and layer-name prefix.

    Returns:
      A functional keras.Model whose output has 32 * base_width / width_divisor features (2048 for R50).
    """
    if variant not in VARIANTS:
        raise ValueError(
            f"unknown video ResNet variant {variant!r}; choose one of {sorted(VARIANTS)}"
        )
    if len(temporal_kernels) != 5:
        raise ValueError(f"need 5 temporal kernels (conv1, res2..res5), got {temporal_kernels}")
    v = VARIANTS[variant]
    inputs = keras.Input((frames, v.input_size, v.input_size, in_channels), name=f"{name}_input")
    x = inputs
    if modality == "rgb":
        x = layers.Standardize(layers.VIDEO_MEAN, layers.VIDEO_STD, name=f"{name}_standardize")(x)
    elif modality not in ("flow", "diff"):
        raise ValueError(f"unknown modality {modality!r}; choose rgb, flow or diff")
    stem = max(v.stem_width // width_divisor, 1)
    x = keras.layers.Conv3D(
        stem,
        (temporal_kernels[0], 7, 7),
        strides=(1, 2, 2),
        padding="same",
        use_bias=False,
        name=f"{name}_conv1",
    )(x)
    x = keras.layers.ReLU(name=f"{name}_conv1_relu")(_bn(x, f"{name}_conv1_bn"))
    # A 1x3x3 max-pool written as per-frame 2D pooling, which every runtime has (MaxPool3D is no TFLite builtin).
    x = keras.layers.TimeDistributed(
        keras.layers.MaxPool2D(3, 2, padding="same"), name=f"{name}_pool1"
    )(x)
    for stage, (blocks, t_kernel) in enumerate(zip(v.blocks, temporal_kernels[1:]), start=2):
        width = max(v.base_width * 2 ** (stage - 2) // width_divisor, 1)
        for block in range(blocks):
            stride = 2 if (stage > 2 and block == 0) else 1
            x = _bottleneck(x, width, 4 * width, t_kernel, stride, f"{name}_res{stage}_{block}")
    features = keras.layers.GlobalAveragePooling3D(name=f"{name}_pool")(x)
    return keras.Model(inputs, features, name=name)


def motion_resnet(
    variant: str = "paper",
    frames: int = 16,
    in_channels: int = 2,
    width_divisor: int = 8,
    name: str = "motion",
):
    """MoDist's motion pathway: the same ResNet at 1/8 width (`width_divisor`) with temporal kernel 1 everywhere."""
    return video_resnet(
        variant,
        frames=frames,
        in_channels=in_channels,
        modality="flow",
        width_divisor=width_divisor,
        temporal_kernels=MOTION_TEMPORAL_KERNELS,
        name=name,
    )
