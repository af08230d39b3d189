"""CV-MIM's networks: the residual-MLP pose encoder, its InfoMax sub-encoder, CLUB estimators, the prior
discriminator, and the temporal 1D-CNN classifier over per-frame pose embeddings.

Zhao et al., "Learning View-Disentangled Human Pose Representation by Contrastive Cross-View Mutual Information
Maximization", CVPR 2021 (google-research `poem/cv_mim`).

Encoder E: flatten [13, 2] -> fc0 Dense(width, he_normal) -> BN -> ReLU -> Dropout(0.25) -> `blocks` residual blocks
(x + [Dense -> BN -> ReLU -> Dropout] x 2) -> Dense(64), split into z_p (first 32) and z_v (last 32). Outputs the
embedding and the fc0 activation, which the sub-encoder S reads (S: residual blocks -> Dense(32), or 64 for CAT fusion).
Variants (decoded here only): `paper` (width 1024, 2 blocks; about 4.3M parameters), `small` (512, 1), `tiny` (128, 1).
"""

import dataclasses

from edge_ssl.keras import keras
from edge_ssl.models import layers

NUM_KEYPOINTS = 13


@dataclasses.dataclass(frozen=True)
class PoseEncoderVariant:
    width: int
    blocks: int


VARIANTS = {
    "paper": PoseEncoderVariant(1024, 2),
    "small": PoseEncoderVariant(512, 1),
    "tiny": PoseEncoderVariant(128, 1),
}


def _variant(name: str) -> PoseEncoderVariant:
    if name not in VARIANTS:
        raise ValueError(f"unknown pose encoder variant {name!r}; choose one of {sorted(VARIANTS)}")
    return VARIANTS[name]


def _dense_bn_relu(x, width, dropout, name):
    x = keras.layers.Dense(
        width, kernel_initializer="he_normal", bias_initializer="he_normal", name=name
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.layers.Dropout(dropout, name=f"{name}_drop")(x)


def _residual_blocks(x, width, blocks, dropout, name):
    for b in range(blocks):
        y = _dense_bn_relu(x, width, dropout, f"{name}_res{b}_a")
        y = _dense_bn_relu(y, width, dropout, f"{name}_res{b}_b")
        x = keras.layers.Add(name=f"{name}_res{b}_add")([x, y])
    return x


def pose_encoder(
    variant: str = "paper",
    embedding_dim: int = 64,
    dropout: float = 0.25,
    name: str = "pose_encoder",
) -> keras.Model:
    """E: normalised 13-keypoint 2D pose [B, 13, 2] -> {"embedding": [B, embedding_dim], "fc0": [B, width]}."""
    v = _variant(variant)
    inputs = keras.Input((NUM_KEYPOINTS, 2), name=f"{name}_input")
    x = keras.layers.Flatten(name=f"{name}_flatten")(inputs)
    fc0 = _dense_bn_relu(x, v.width, dropout, f"{name}_fc0")
    x = _residual_blocks(fc0, v.width, v.blocks, dropout, name)
    embedding = keras.layers.Dense(embedding_dim, name=f"{name}_embedder")(x)
    return keras.Model(inputs, {"embedding": embedding, "fc0": fc0}, name=name)


def sub_encoder(
    variant: str = "paper", out_dim: int = 32, dropout: float = 0.25, name: str = "sub_encoder"
):
    """S: E's fc0 activation [B, width] -> residual blocks -> local code [B, out_dim] (the InfoMax "local" branch)."""
    v = _variant(variant)
    inputs = keras.Input((v.width,), name=f"{name}_input")
    x = _residual_blocks(inputs, v.width, v.blocks, dropout, name)
    return keras.Model(inputs, keras.layers.Dense(out_dim, name=f"{name}_out")(x), name=name)


def club_estimator(dim: int = 32, name: str = "club") -> keras.Model:
    """q(y | x) = N(mu(x), exp(logvar(x))): x [B, dim] -> {"mu", "logvar"}, each Dense -> BN -> ELU -> Dense."""
    inputs = keras.Input((dim,), name=f"{name}_input")
    outputs = {}
    for head, activation in (("mu", None), ("logvar", "tanh")):
        x = keras.layers.Dense(dim, name=f"{name}_{head}_fc1")(inputs)
        x = keras.layers.BatchNormalization(name=f"{name}_{head}_bn")(x)
        x = keras.layers.ELU(name=f"{name}_{head}_elu")(x)
        outputs[head] = keras.layers.Dense(dim, activation=activation, name=f"{name}_{head}_fc2")(x)
    return keras.Model(inputs, outputs, name=name)


def prior_discriminator(dim: int = 64, name: str = "discriminator") -> keras.Model:
    """D: a code in (0, 1)^dim -> one logit (real: uniform samples; fake: sigmoid of the embedding)."""
    inputs = keras.Input((dim,), name=f"{name}_input")
    x = keras.layers.Dense(64, activation="relu", name=f"{name}_fc1")(inputs)
    x = keras.layers.Dense(32, activation="relu", name=f"{name}_fc2")(x)
    return keras.Model(inputs, keras.layers.Dense(1, name=f"{name}_logit")(x), name=name)


def temporal_classifier(
    num_classes: int,
    frames: int,
    in_dim: int = 32,
    filters: tuple[int, ...] = (64, 128, 256),
    kernel: int = 7,
    dropout: float = 0.5,
    name: str = "temporal_classifier",
) -> keras.Model:
    """CV-MIM's CONVNET action classifier: per-frame codes [B, T, in_dim] -> class logits [B, num_classes].

    Blocks of Conv1D(kernel, stride 2, same, he_normal) -> BN -> ReLU -> Dropout, then global average pooling and a
    Dense layer. Conv1D, BN and Dense are TFLite builtins, so it runs on the device beside the pose encoder.
    """
    if num_classes < 2:
        raise ValueError(f"need at least 2 classes, got {num_classes}")
    inputs = keras.Input((frames, in_dim), name=f"{name}_input")
    x = inputs
    for i, f in enumerate(filters):
        x = keras.layers.Conv1D(
            f,
            kernel,
            strides=2,
            padding="same",
            kernel_initializer="he_normal",
            name=f"{name}_conv{i}",
        )(x)
        x = keras.layers.BatchNormalization(name=f"{name}_conv{i}_bn")(x)
        x = keras.layers.ReLU(name=f"{name}_conv{i}_relu")(x)
        x = keras.layers.Dropout(dropout, name=f"{name}_conv{i}_drop")(x)
    x = keras.layers.GlobalAveragePooling1D(name=f"{name}_pool")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name=f"{name}_logits")(x), name=name)


def pose_embedding_model(
    encoder: keras.Model, pose_dim: int = 32, name: str = "pose_embedding"
) -> keras.Model:
    """The representation of a pose: E's z_p half, L2-normalised; [B, 13, 2] -> [B, pose_dim]."""
    z = encoder.output["embedding"]
    z_p = keras.layers.Cropping1D((0, z.shape[-1] - pose_dim), name=f"{name}_zp")(
        keras.layers.Reshape((-1, 1))(z)
    )
    z_p = keras.layers.Flatten(name=f"{name}_flatten")(z_p)
    return keras.Model(encoder.input, layers.L2Normalize(name=f"{name}_l2")(z_p), name=name)
