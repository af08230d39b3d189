"""Small serialisable layers shared by the encoders."""

import numpy as np
import tensorflow as tf

from edge_ssl import tracing
from edge_ssl.keras import keras

# ImageNet statistics, which Cross and Learn and the Muscles paper normalise RGB with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# MoDist (SlowFast code base) normalises RGB with one mean and std for all channels.
VIDEO_MEAN = (0.45, 0.45, 0.45)
VIDEO_STD = (0.225, 0.225, 0.225)


@keras.utils.register_keras_serializable("edge_ssl")
class Standardize(keras.layers.Layer):
    """(x - mean) / std per channel, with fixed statistics (RGB in [0, 1] -> network input)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], **kwargs):
        super().__init__(**kwargs)
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"mean and std must match in length, std positive; got {mean}, {std}")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    @tracing.as_written
    def call(self, x):
        return (x - tf.constant(self.mean, x.dtype)) / tf.constant(self.std, x.dtype)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@keras.utils.register_keras_serializable("edge_ssl")
class StandardizedConv2D(keras.layers.Conv2D):
    """A Conv2D of the standardised input `(x - input_mean) / input_std`, with the standardisation in its weights.

    It convolves x itself with the kernel divided by `input_std` (per input channel) and subtracts the convolution
    of the constant image `input_mean` with that kernel. Inside the image this is exactly the convolution of the
    standardised input; at the border the zero padding is a zero of x, not of the standardised x. In an exported
    graph the kernel is a constant, so both fold into the convolution's weights and bias: standardising costs
    nothing, where a `Standardize` layer before it is a per-channel subtract and multiply over the whole input, a
    broadcast over a 3-wide innermost axis that LiteRT runs slowly (on a clip [1, 16, 112, 112, 3], 1.4 ms in fp32
    and 4.5 ms in int8 on one core, more than a small student's whole backbone: benchmarks/README.md).

    Args:
      input_mean: one value per input channel, or one for all.
      input_std: one positive value per input channel, or one for all.
      **kwargs: Conv2D's arguments (groups=1, channels_last).
    """

    def __init__(self, *args, input_mean=0.0, input_std=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        if self.groups != 1 or self.data_format != "channels_last":
            raise ValueError("StandardizedConv2D supports groups=1 and channels_last only")
        self.input_mean = _floats(input_mean)
        self.input_std = _floats(input_std)
        if min(np.atleast_1d(self.input_std)) <= 0:
            raise ValueError(f"input_std must be positive, got {input_std}")

    def build(self, input_shape):
        channels = int(input_shape[-1])
        for name in ("input_mean", "input_std"):
            value = getattr(self, name)
            if isinstance(value, tuple) and len(value) != channels:
                raise ValueError(
                    f"{self.name}: {name} has {len(value)} values for {channels} input channels"
                )
        super().build(input_shape)

    @tracing.as_written
    def call(self, inputs):
        kernel = tf.cast(self.kernel, self.compute_dtype)
        channels = kernel.shape[2]
        mean = tf.broadcast_to(tf.constant(self.input_mean, self.compute_dtype), [channels])
        std = tf.broadcast_to(tf.constant(self.input_std, self.compute_dtype), [channels])
        kernel = kernel / std[:, None]
        # The convolution of the constant image `mean`: each input channel's taps summed, weighted by its mean.
        offset = tf.linalg.matvec(tf.reduce_sum(kernel, axis=[0, 1]), mean, transpose_a=True)
        outputs = self.convolution_op(inputs, kernel) - offset
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, tf.cast(self.bias, self.compute_dtype))
        return self.activation(outputs) if self.activation is not None else outputs

    def get_config(self):
        return {**super().get_config(), "input_mean": self.input_mean, "input_std": self.input_std}


def _floats(value):
    """A float, or a tuple of floats for a list or tuple."""
    if isinstance(value, (list, tuple)):
        return tuple(float(v) for v in value)
    return float(value)


@keras.utils.register_keras_serializable("edge_ssl")
class SubtractSpatialMean(keras.layers.Layer):
    """Subtracts each channel's mean over the image (Cross and Learn's "SubMeanDisplacement" for flow stacks):
    camera motion that shifts the whole frame is removed, motion relative to the scene stays."""

    @tracing.as_written
    def call(self, x):
        return x - tf.reduce_mean(x, axis=[-3, -2], keepdims=True)


@keras.utils.register_keras_serializable("edge_ssl")
class L2Normalize(keras.layers.Layer):
    """Rows scaled to unit length: embeddings are L2-normalised float32 [B, D] (DESIGN.md).

    It computes in float32 even under a mixed-precision policy (unless given another dtype), so every embedding leaves
    its network in float32.
    """

    def __init__(self, epsilon: float = 1e-12, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    @tracing.as_written
    def call(self, x):
        return tf.math.l2_normalize(x, axis=-1, epsilon=self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def projection_head(
    inputs: keras.layers.Layer, hidden: int, out: int, name: str, batch_norm: bool = False
) -> keras.layers.Layer:
    """MoCo v2 / MoDist projection: Dense(hidden) -> ReLU -> Dense(out) -> L2-normalise.

    With `batch_norm`, MoCo v3's / SimCLR's form: Dense(hidden) -> BN -> ReLU -> Dense(out) -> BN without scale or
    offset -> L2-normalise. The last BN centres the codes on the batch, so that what all clips share (after ReLU and
    global pooling, most of a random encoder's output) does not dominate their cosines.
    """
    if not batch_norm:
        x = keras.layers.Dense(hidden, activation="relu", name=f"{name}_fc1")(inputs)
        x = keras.layers.Dense(out, name=f"{name}_fc2")(x)
        return L2Normalize(name=f"{name}_l2")(x)
    x = keras.layers.Dense(hidden, use_bias=False, name=f"{name}_fc1")(inputs)
    x = keras.layers.BatchNormalization(name=f"{name}_bn1")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    x = keras.layers.Dense(out, use_bias=False, name=f"{name}_fc2")(x)
    x = keras.layers.BatchNormalization(center=False, scale=False, name=f"{name}_bn2")(x)
    return L2Normalize(name=f"{name}_l2")(x)


@keras.utils.register_keras_serializable("edge_ssl")
class ChannelMean(keras.layers.Layer):
    """The three colour channels replaced by their mean (Cross and Learn's test-time input after channel splitting)."""

    @tracing.as_written
    def call(self, x):
        return tf.repeat(tf.reduce_mean(x, axis=-1, keepdims=True), 3, axis=-1)


@keras.utils.register_keras_serializable("edge_ssl")
class MeanOverTime(keras.layers.Layer):
    """[B, T, D] -> [B, D]: a clip embedding from per-frame embeddings."""

    @tracing.as_written
    def call(self, x):
        return tf.reduce_mean(x, axis=1)


@keras.utils.register_keras_serializable("edge_ssl")
class MomentumBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization for a momentum (key) encoder: frozen for optimizers, batch statistics in training mode.

    Keras's BatchNormalization switches to inference mode whenever `trainable` is False, so a key encoder frozen with
    `trainable = False` would normalise with moving statistics that its forward passes never update. MoCo's key
    encoder runs in training mode: it normalises with the batch's statistics and keeps its own moving statistics. This
    layer honours `training` whatever `trainable` says, and keeps the moving-statistics updates that Keras drops for a
    frozen layer; gamma and beta are still non-trainable and move only by the momentum update.
    """

    def _get_training_value(self, training=None):
        if training is None:
            training = keras.backend.learning_phase()
        if isinstance(training, int):
            training = bool(training)
        return training

    def add_update(self, updates):
        # Keras skips the callable updates of a layer whose `trainable` is False; run them as for a trainable one.
        trainable = self._trainable
        self._trainable = True
        try:
            super().add_update(updates)
        finally:
            self._trainable = trainable
