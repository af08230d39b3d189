"""CV-MIM's networks: the residual-MLP pose encoder, its InfoMax sub-encoder, CLUB estimators, the prior
discriminator, and the temporal 1D-CNN classifier over per-frame pose embeddings.

Zhao et al., "Learning View-Disentangled Human Pose Representation by Contrastive Cross-View Mutual Information
Maximization", CVPR 2021 (google-research `poem/cv_mim`).

Encoder E: flatten [13, 2] -> fc0 Dense(width, he_normal) -> BN -> ReLU -> Dropout(0.25) -> `blocks` residual blocks
(x + [Dense -> BN -> ReLU -> Dropout] x 2) -> Dense(64), split into z_p (first 32) and z_v (last 32). Outputs the
embedding and the fc0 activation, which the sub-encoder S reads (S: residual blocks -> Dense(32), or 64 for CAT fusion).
Variants (decoded here only): `paper` (width 1024, 2 blocks; about 4.3M parameters), `small` (512, 1), `tiny` (128, 1).

For a device, `keypoint_embedding_model` wraps the representation so that it takes raw COCO-17 keypoints in pixels
and does CV-MIM's 13-keypoint selection and normalisation (`PoseNormalize`, the same as `edge_ssl.data.pose.normalize`
in training) inside the graph, with ops that TFLite runs in int8 and TensorRT's ONNX parser takes.
"""

import dataclasses

import tensorflow as tf

from edge_ssl import tracing
from edge_ssl.data import keypoints as kp
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


# Positions in the 13-keypoint subset of the keypoints CV-MIM normalises by (kp.CV_MIM_13 is sorted COCO indices).
_POS13 = {int(k): i for i, k in enumerate(kp.CV_MIM_13)}
_TORSO_A = [_POS13[a] for a, _ in kp.TORSO_PAIRS]
_TORSO_B = [_POS13[b] for _, b in kp.TORSO_PAIRS]
_HIPS = (_POS13[kp.INDEX["left_hip"]], _POS13[kp.INDEX["right_hip"]])


def _runs(indices) -> list[tuple[int, int]]:
    """[(start, stop)] runs of consecutive indices: [0, 5, 6, 7] -> [(0, 1), (5, 8)]."""
    runs = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def _take(x, indices, axis: int = -2):
    """x's entries at `indices` along the keypoint axis, as slices and one concatenation.

    Constant slices instead of a gather: GATHER is not delegated by XNNPACK (observed with ai-edge-litert 2.3.0), while
    STRIDED_SLICE and CONCATENATION are, in float and in int8.
    """
    parts = [x[..., start:stop, :] for start, stop in _runs(indices)]
    return parts[0] if len(parts) == 1 else tf.concat(parts, axis=axis)


@keras.utils.register_keras_serializable("edge_ssl")
class PoseNormalize(keras.layers.Layer):
    """CV-MIM's pose normalisation inside a model: [B, 17 or 13, 2] keypoints (pixels) -> [B, 13, 2] normalised.

    `p' = (p - hip_centre) * scale_unit / max(max_torso_distance, epsilon)`, exactly `edge_ssl.data.pose.normalize`
    (what CV-MIM trains on), written with ops that TFLite runs in int8 and that ONNX and TensorRT parse: slices,
    concatenation, subtraction, multiplication, a sum, a maximum and a reciprocal square root (the largest distance
    is the square root of the largest squared distance, so one RSQRT replaces six norms and a division, which has no
    int8 kernel).
    """

    def __init__(self, scale_unit: float = 0.5, epsilon: float = 1e-6, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if scale_unit <= 0 or epsilon <= 0:
            raise ValueError(
                f"scale_unit and epsilon must be positive, got {scale_unit}, {epsilon}"
            )
        self.scale_unit = float(scale_unit)
        self.epsilon = float(epsilon)

    @tracing.as_written
    def call(self, x):
        count = x.shape[-2]
        if count == kp.NUM_KEYPOINTS:
            x = _take(x, [int(i) for i in kp.CV_MIM_13])
        elif count != NUM_KEYPOINTS:
            raise ValueError(f"expected 17 (COCO) or 13 (CV-MIM) keypoints, got shape {x.shape}")
        left, right = _HIPS
        centre = 0.5 * (x[..., left : left + 1, :] + x[..., right : right + 1, :])
        difference = _take(x, _TORSO_A) - _take(x, _TORSO_B)  # [B, 6, 2]
        squared = tf.reduce_max(tf.reduce_sum(difference * difference, axis=-1), axis=-1)
        scale = self.scale_unit * tf.math.rsqrt(tf.maximum(squared, self.epsilon**2))
        return (x - centre) * scale[..., None, None]

    def get_config(self):
        return {**super().get_config(), "scale_unit": self.scale_unit, "epsilon": self.epsilon}


def keypoint_embedding_model(
    backbone: keras.Model, name: str = "pose_keypoint_embedding"
) -> keras.Model:
    """The pose representation for a device: raw keypoints in, the backbone's embedding out.

    Args:
      backbone: `pose_embedding_model(...)` (CV-MIM's backbone, trained on normalised [B, 13, 2] poses), or a loaded
        copy of it.
      name: the model's name.

    Returns:
      A model from `keypoints` float32 [B, 17, 2] (COCO-17 image coordinates in pixels, the confidence channel
      dropped) to the L2-normalised embedding [B, D]; the 13-keypoint selection and normalisation happen inside.
    """
    shape = tuple(backbone.input_shape[1:])
    if shape != (NUM_KEYPOINTS, 2):
        raise ValueError(
            f"the backbone must take normalised poses [B, {NUM_KEYPOINTS}, 2], it takes {list(shape)}"
        )
    keypoints = keras.Input((kp.NUM_KEYPOINTS, 2), name="keypoints")
    normalised = PoseNormalize(name=f"{name}_normalize")(keypoints)
    return keras.Model(keypoints, backbone(normalised, training=False), name=name)


def keypoint_signature(
    model: keras.Model, batch_size: int | None = None
) -> tf.types.experimental.ConcreteFunction:
    """`serving_default` of a keypoint model: `keypoints` [B, 17, 2] -> {"embedding": [B, D]}, in inference mode."""

    @tracing.function(
        input_signature=[
            tf.TensorSpec((batch_size, kp.NUM_KEYPOINTS, 2), tf.float32, name="keypoints")
        ]
    )
    def serving_default(keypoints):
        return {"embedding": model(keypoints, training=False)}

    return serving_default.get_concrete_function()


def save_keypoint_model(model: keras.Model, path: str) -> None:
    """Saves a `keypoint_embedding_model` as a SavedModel whose `serving_default` takes `keypoints` (any batch).

    `keras.models.load_model(path)` gives the Keras model back (edge_ssl's layers are rebuilt from their configs);
    `tf.saved_model.load(path).signatures["serving_default"]` runs it without Keras or edge_ssl.
    """
    model.save(
        path,
        save_format="tf",
        save_traces=False,
        signatures={"serving_default": keypoint_signature(model)},
    )
