"""Compact streaming students: RGB clips in, an L2-normalised embedding out, frame by frame on an edge device.

A student sees only RGB at inference, so motion has to come from inside the network:
- frame differences in the stem (a cheap stand-in for flow, which the teacher may have seen): the stem is a
  convolution of the frame plus a convolution of its difference from the previous frame, the difference taken on
  the stem's output (temporal.AddFrameDifference); the stem convolution standardises the frame in its weights;
- at the start of the residual branch of inverted-residual blocks, online temporal shift (TSM: 1/8 of the channels
  from the previous frame, free) on the large early maps, and causal depthwise temporal convolutions (a learned
  shift over the last frames) on the small late maps;
- residual causal temporal convolution blocks on the pooled per-frame features.

Per frame: a MobileNetV2-style backbone (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018) of 1x1 expansion -> 3x3 depthwise -> 1x1 linear projection blocks with ReLU6, a 1x1 convolution to the
feature width and global average pooling. Over time: residual causal temporal blocks on the pooled features, the mean
over the clip's frames, and a two-layer projection to the embedding. Nothing looks at a future frame, so the same
weights stream (see edge_ssl.models.temporal): `init_state` and `step` give the whole-clip embedding after T frames.

Only edge-safe ops: Conv2D, DepthwiseConv2D, Dense, BatchNormalization (folded at export), ReLU6, add, concatenate,
slice, pad, reshape, mean and L2 normalisation; no Conv3D, no 3D pooling (export/keras_lint.py checks this).

Variants (decoded here only): `tiny` (8 x 32 x 32, for tests); `small` (16 x 112 x 112, half of MobileNetV3-Small's
cost per frame, for one CPU core); `base` (16 x 128 x 128, MobileNetV2-like width and depth, for Jetson-class GPUs).
"""

import dataclasses
from collections.abc import Mapping

import tensorflow as tf

from edge_ssl import tracing
from edge_ssl.keras import keras
from edge_ssl.models import layers, temporal

TEMPORAL_MODES = ("none", "shift", "conv")
STEM_DIFFERENCES = ("output", "input")


@dataclasses.dataclass(frozen=True)
class StudentStage:
    """A stage of inverted-residual blocks, MobileNetV2's (t, c, n, s) row plus the stage's temporal modelling.

    Attributes:
      expansion: hidden width of a block = input width x expansion (t).
      width: output channels (c).
      blocks: how many blocks (n); the first one strides and changes width, the others are residual.
      stride: spatial stride of the first block (s).
      temporal: what starts the residual branch of each residual block: "none"; "shift" (online temporal shift:
        free, for the large early maps); "conv" (a causal depthwise temporal convolution, a learned shift that can
        express the fixed one, for the small late maps).
    """

    expansion: int
    width: int
    blocks: int
    stride: int
    temporal: str = "none"


@dataclasses.dataclass(frozen=True)
class StudentConfig:
    """Everything that decides a student's architecture and input.

    Attributes:
      frames: clip length T; the temporal mean averages this many frames.
      input_size: frame height and width S; a multiple of the backbone's total stride.
      stem_width: channels after the stem: a convolution of the RGB frame plus one of its difference from the
        previous frame (see temporal.AddFrameDifference).
      stem_kernel: the stem convolution's kernel size.
      stem_stride: the stem convolution's stride.
      stem_difference: where the frame difference is taken: "output" (on the stem convolution's output, for stems
        whose output has fewer values than a frame) or "input" (on the frames, concatenated to them).
      stages: the backbone's stages in order.
      feature_width: channels of the last 1x1 convolution, the per-frame feature size after pooling.
      head_blocks: residual causal temporal blocks on the pooled features (temporal conv -> Dense -> BN -> ReLU6).
      head_kernel: temporal kernel of those blocks.
      hidden_width: hidden layer of the projection to the embedding.
      embedding_dim: D of the L2-normalised embedding [B, D].
      shift_fraction: fraction of a block's channels shifted from the previous frame.
      temporal_kernel: temporal kernel of the causal convolutions that start residual branches in "conv" stages.
    """

    frames: int
    input_size: int
    stem_width: int
    stages: tuple[StudentStage, ...]
    feature_width: int
    head_blocks: int
    head_kernel: int
    hidden_width: int
    embedding_dim: int
    shift_fraction: float = 0.125
    temporal_kernel: int = 3
    stem_kernel: int = 3
    stem_stride: int = 2
    stem_difference: str = "output"

    @property
    def total_stride(self) -> int:
        """Spatial stride from the input to the last feature map."""
        stride = self.stem_stride
        for stage in self.stages:
            stride *= stage.stride
        return stride

    def validate(self) -> None:
        """Raises ValueError naming the first field that cannot build a student."""
        if self.frames < 2:
            raise ValueError(
                f"a student needs clips of at least 2 frames, got frames={self.frames}"
            )
        if self.input_size < self.total_stride or self.input_size % self.total_stride:
            raise ValueError(
                f"input_size must be a positive multiple of the total stride {self.total_stride}, "
                f"got {self.input_size}"
            )
        for name in (
            "stem_width",
            "stem_kernel",
            "stem_stride",
            "feature_width",
            "hidden_width",
            "embedding_dim",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.head_blocks < 0 or self.head_kernel < 2 or self.temporal_kernel < 2:
            raise ValueError(
                "need head_blocks >= 0 and temporal kernels >= 2, got "
                f"head_blocks={self.head_blocks}, head_kernel={self.head_kernel}, "
                f"temporal_kernel={self.temporal_kernel}"
            )
        if self.stem_difference not in STEM_DIFFERENCES:
            raise ValueError(
                f"unknown stem_difference {self.stem_difference!r}; choose one of {STEM_DIFFERENCES}"
            )
        if not self.stages:
            raise ValueError("a student needs at least one stage")
        width = self.stem_width
        for i, stage in enumerate(self.stages):
            if stage.temporal not in TEMPORAL_MODES:
                raise ValueError(
                    f"stage {i}: unknown temporal mode {stage.temporal!r}; choose one of {TEMPORAL_MODES}"
                )
            if min(stage.expansion, stage.width, stage.blocks) < 1 or stage.stride not in (1, 2):
                raise ValueError(
                    f"stage {i}: need expansion, width, blocks >= 1 and stride 1 or 2, got {stage}"
                )
            first_is_residual = stage.stride == 1 and stage.width == width
            if stage.temporal != "none" and stage.blocks == 1 and not first_is_residual:
                raise ValueError(
                    f"stage {i} models time in residual blocks but has none (one block that changes "
                    "stride or width); give it more blocks or set temporal='none'"
                )
            width = stage.width


VARIANTS = {
    "tiny": StudentConfig(
        frames=8,
        input_size=32,
        stem_width=8,
        stages=(
            StudentStage(1, 8, 1, 1),
            StudentStage(3, 12, 2, 2, "shift"),
            StudentStage(3, 16, 2, 2, "conv"),
        ),
        feature_width=32,
        head_blocks=1,
        head_kernel=3,
        hidden_width=32,
        embedding_dim=16,
    ),
    # A 4x4 stride-4 ("patchify") stem straight to 28 x 28 x 16: int8 kernels gain little on few channels at high
    # resolution, and the frame difference is taken on a map with a third of a frame's values (benchmarks/README.md).
    "small": StudentConfig(
        frames=16,
        input_size=112,
        stem_width=16,
        stem_kernel=4,
        stem_stride=4,
        stages=(
            StudentStage(3, 24, 2, 2, "shift"),
            StudentStage(3, 40, 3, 2, "shift"),
            StudentStage(3, 64, 2, 1, "conv"),
        ),
        feature_width=384,
        head_blocks=1,
        head_kernel=3,
        hidden_width=512,
        embedding_dim=128,
    ),
    # Its stem's output (64 x 64 x 24) has twice a frame's values, so the difference is taken on the frames.
    "base": StudentConfig(
        frames=16,
        input_size=128,
        stem_width=24,
        stem_difference="input",
        stages=(
            StudentStage(1, 16, 1, 1),
            StudentStage(6, 24, 2, 2, "shift"),
            StudentStage(6, 32, 3, 2, "shift"),
            StudentStage(6, 64, 4, 2, "conv"),
            StudentStage(6, 96, 3, 1, "conv"),
            StudentStage(6, 160, 3, 2, "conv"),
        ),
        feature_width=640,
        head_blocks=2,
        head_kernel=3,
        hidden_width=1024,
        embedding_dim=256,
    ),
}


def student_config(variant: str | StudentConfig = "small", **overrides) -> StudentConfig:
    """A variant's config, with fields replaced by `overrides` (e.g. `frames=4, input_size=64`), validated.

    Raises:
      ValueError: for an unknown variant name, an unknown field or a config that cannot build a student.
    """
    if isinstance(variant, StudentConfig):
        config = variant
    elif variant in VARIANTS:
        config = VARIANTS[variant]
    else:
        raise ValueError(f"unknown student variant {variant!r}; choose one of {sorted(VARIANTS)}")
    fields = {f.name for f in dataclasses.fields(StudentConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown student config fields {unknown}; fields are {sorted(fields)}")
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    config.validate()
    return config


class _ClipGraph:
    """Builds a clip graph [B, T, ...] in which runs of per-frame layers become one sub-model under TimeDistributed.

    Per-frame layers are applied to a frame input [B, ...] of an open sub-model; touching the clip (for a temporal
    layer or a residual add across one) closes the sub-model and applies it to the clip with TimeDistributed. Fewer,
    larger per-frame sub-models mean fewer reshapes in the exported graph, and the multiply-add counter counts a
    TimeDistributed sub-model once per frame.
    """

    def __init__(self, clip, name: str):
        self._clip = clip
        self._name = name
        self._frame_input = None
        self._frame = None
        self._segments = 0

    def per_frame(self, build):
        """Applies `build` (frame tensor -> frame tensor) to every frame."""
        if self._frame_input is None:
            self._segments += 1
            self._frame_input = keras.Input(
                self._clip.shape[2:], name=f"{self._name}_frames{self._segments}_input"
            )
            self._frame = self._frame_input
        self._frame = build(self._frame)

    @property
    def clip(self):
        """The clip tensor [B, T, ...] so far (closes an open per-frame sub-model)."""
        if self._frame_input is not None:
            segment = f"{self._name}_frames{self._segments}"
            model = keras.Model(self._frame_input, self._frame, name=segment)
            self._clip = keras.layers.TimeDistributed(model, name=f"{segment}_td")(self._clip)
            self._frame_input = self._frame = None
        return self._clip

    @clip.setter
    def clip(self, value):
        if self._frame_input is not None:
            raise RuntimeError("read .clip to close the open per-frame sub-model first")
        self._clip = value


# He initialisation for ReLU networks. Keras counts a depthwise kernel [3, 3, C, 1]'s fan-in as 9C, so its default
# (and he_normal) give depthwise outputs about C times too little variance and an untrained network's signal fades
# layer by layer (BN in inference mode does not restore it); the fan-out of that shape, 9, is the true fan-in.
_CONV_INIT = "he_normal"


def _depthwise_init():
    # A new instance per layer: one unseeded instance shared by layers would give them all the same values.
    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="truncated_normal")


def _conv_bn(x, filters, name, relu=True):
    x = keras.layers.Conv2D(filters, 1, use_bias=False, kernel_initializer=_CONV_INIT, name=name)(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def _depthwise_bn(x, stride, name):
    x = keras.layers.DepthwiseConv2D(
        3,
        strides=stride,
        padding="same",
        use_bias=False,
        depthwise_initializer=_depthwise_init(),
        name=name,
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x)


def _inverted_residual(graph: _ClipGraph, in_width, stage, stride, config, name):
    """One block: 1x1 expand -> 3x3 depthwise -> 1x1 linear projection, plus the input when shapes allow.

    In a residual block of a temporal stage, the branch starts with the stage's temporal module (TSM's residual
    shift: the shortcut keeps the current frame whole, the branch mixes in the past).
    """
    residual = stride == 1 and in_width == stage.width
    temporal_module = stage.temporal if residual else "none"

    def branch(x):
        if stage.expansion != 1:
            x = _conv_bn(x, in_width * stage.expansion, f"{name}_expand")
        x = _depthwise_bn(x, stride, f"{name}_depthwise")
        return _conv_bn(x, stage.width, f"{name}_project", relu=False)

    if temporal_module == "none":  # the whole block is per-frame
        graph.per_frame(
            lambda x: (
                keras.layers.Add(name=f"{name}_add")([x, branch(x)]) if residual else branch(x)
            )
        )
        return
    shortcut = graph.clip
    if temporal_module == "shift":
        graph.clip = temporal.TemporalShift(config.shift_fraction, name=f"{name}_shift")(shortcut)
    else:
        graph.clip = temporal.CausalTemporalConv(config.temporal_kernel, name=f"{name}_temporal")(
            shortcut
        )
    graph.per_frame(branch)
    graph.clip = keras.layers.Add(name=f"{name}_add")([shortcut, graph.clip])


def _stem(clip, config: StudentConfig, name: str) -> _ClipGraph:
    """The stem: a convolution of each frame plus one of its difference from the previous frame, then BN and ReLU6.

    The frame is standardised with ImageNet's statistics inside the convolution (layers.StandardizedConv2D), where it
    costs nothing once exported. Where the difference is taken (`config.stem_difference`) changes the cost, not the
    function: "output" convolves the frame to 2 x stem_width channels [a, m] and takes a + m[t] - m[t-1]
    (temporal.AddFrameDifference); "input" convolves the frame and its difference concatenated on channels.
    """
    # He initialisation with the fan-in of frame and difference (6 channels) in both forms, so that they start alike.
    initializer = keras.initializers.VarianceScaling(
        2.0 if config.stem_difference == "input" else 1.0, "fan_in", "truncated_normal"
    )
    if config.stem_difference == "input":
        diff = temporal.FrameDifference(name=f"{name}_difference")(clip)
        graph = _ClipGraph(
            keras.layers.Concatenate(name=f"{name}_rgb_and_difference")([clip, diff]), name
        )
        filters, mean, std = (
            config.stem_width,
            (*layers.IMAGENET_MEAN, 0.0, 0.0, 0.0),
            layers.IMAGENET_STD * 2,
        )
    else:
        graph = _ClipGraph(clip, name)
        filters, mean, std = 2 * config.stem_width, layers.IMAGENET_MEAN, layers.IMAGENET_STD
    graph.per_frame(
        lambda x: layers.StandardizedConv2D(
            filters,
            config.stem_kernel,
            strides=config.stem_stride,
            padding="same",
            use_bias=False,
            kernel_initializer=initializer,
            input_mean=mean,
            input_std=std,
            name=f"{name}_stem",
        )(x)
    )
    if config.stem_difference == "output":
        graph.clip = temporal.AddFrameDifference(name=f"{name}_stem_difference")(graph.clip)

    def activation(x):
        x = keras.layers.BatchNormalization(name=f"{name}_stem_bn")(x)
        return keras.layers.ReLU(6.0, name=f"{name}_stem_relu")(x)

    graph.per_frame(activation)
    return graph


def _clip_model(config: StudentConfig, name: str) -> keras.Model:
    clip = keras.Input((config.frames, config.input_size, config.input_size, 3), name="clip")
    graph = _stem(clip, config, name)
    width = config.stem_width
    for s, stage in enumerate(config.stages, start=1):
        for b in range(stage.blocks):
            stride = stage.stride if b == 0 else 1
            _inverted_residual(graph, width, stage, stride, config, f"{name}_stage{s}_block{b + 1}")
            width = stage.width

    def features(x):
        x = _conv_bn(x, config.feature_width, f"{name}_features")
        return keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)

    graph.per_frame(features)
    x = graph.clip  # [B, T, feature_width]
    for h in range(1, config.head_blocks + 1):
        block = f"{name}_head{h}"
        y = temporal.CausalTemporalConv(config.head_kernel, name=f"{block}_temporal")(x)
        y = keras.layers.Dense(config.feature_width, use_bias=False, name=f"{block}_dense")(y)
        y = keras.layers.BatchNormalization(name=f"{block}_bn")(y)
        y = keras.layers.ReLU(6.0, name=f"{block}_relu")(y)
        x = keras.layers.Add(name=f"{block}_add")([x, y])
    x = temporal.TemporalWindowMean(config.frames, name=f"{name}_mean")(x)
    x = keras.layers.Dense(config.hidden_width, activation="relu", name=f"{name}_projection1")(x)
    x = keras.layers.Dense(config.embedding_dim, name=f"{name}_projection2")(x)
    embedding = layers.L2Normalize(dtype="float32", name=f"{name}_embedding")(x)
    return keras.Model(clip, embedding, name=name)


class Student:
    """A streaming student: the whole-clip model and its one-frame step model, sharing every weight.

    `student(clip)` gives the embedding of clips [B, T, S, S, 3] (RGB in [0, 1]); `init_state(batch)` and
    `step(frame, state)` give it frame by frame. `model` is the functional keras.Model to train, save and count;
    `step_model` (a temporal.StreamingStep, a keras.Model) is the step to export: inputs `frame` and the state
    tensors, outputs `embedding` and the new state.
    """

    def __init__(self, model: keras.Model, config: StudentConfig | None = None):
        """Wraps a whole-clip student model (built by `build_student` or loaded with `load_student`).

        Args:
          model: a functional model from clips [B, T, S, S, 3] to embeddings [B, D].
          config: the config it was built from, if known (a loaded model does not carry one).
        """
        self.model = model
        self.config = config
        self.step_model = temporal.StreamingStep(model, output_name="embedding")
        self._step = tracing.function(self.step_model, reduce_retracing=True)

    @property
    def frames(self) -> int:
        return int(self.model.input_shape[1])

    @property
    def input_size(self) -> int:
        return int(self.model.input_shape[2])

    @property
    def embedding_dim(self) -> int:
        return int(self.model.output_shape[-1])

    @property
    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each state tensor without the batch axis, in the step model's order; all float32."""
        return self.step_model.state_shapes

    def step_specs(self, batch_size: int | None = None) -> dict[str, tf.TensorSpec]:
        """TensorSpecs of the step's inputs (`frame`, then the state), e.g. for an export signature."""
        return self.step_model.input_specs(batch_size)

    def __call__(self, clip, training: bool = False) -> tf.Tensor:
        """Embeddings [B, D] of clips [B, T, S, S, 3]."""
        shape = tuple(clip.shape)
        want = tuple(self.model.input_shape[1:])
        if len(shape) != 5 or shape[1:] != want:
            raise ValueError(
                f"the student takes clips [B, {', '.join(map(str, want))}], got {shape}"
            )
        return self.model(clip, training=training)

    def init_state(self, batch_size: int) -> dict[str, tf.Tensor]:
        """The state before the first frame: zeros, one float32 tensor per entry of `state_shapes`."""
        return self.step_model.initial_state(batch_size)

    def step(self, frame, state: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """One frame [B, S, S, 3] in: the embedding [B, D] of the frames so far and the new state.

        After T frames from `init_state`, the embedding is `student(clip)` of those frames. Later frames slide the
        window: the embedding describes the latest T frames. Runs in inference mode (BN moving statistics).
        """
        self.step_model.check_inputs({"frame": frame, **state})
        outputs = dict(self._step({"frame": frame, **state}, training=False))
        return outputs.pop("embedding"), outputs

    def signatures(
        self, batch_size: int | None = None
    ) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """The serving signatures: `serving_default` (clip -> embedding) and `step` (frame + state -> embedding
        + state), traced in inference mode, for a SavedModel (see `save`) or a TFLite converter.

        Args:
          batch_size: a fixed batch size, or None for any.
        """
        clip_spec = tf.TensorSpec((batch_size, *self.model.input_shape[1:]), tf.float32, "clip")
        clip_fn = tracing.function(lambda clip: {"embedding": self.model(clip, training=False)})
        step_fn = tracing.function(lambda inputs: self.step_model(inputs, training=False))
        return {
            "serving_default": clip_fn.get_concrete_function(clip_spec),
            "step": step_fn.get_concrete_function(self.step_specs(batch_size)),
        }

    def save(self, path: str) -> None:
        """Saves the student as a SavedModel with the `serving_default` and `step` signatures.

        `load_student(path)` gives the Student back (edge_ssl's layers are rebuilt from their configs, so the
        layer functions are not traced into the file); `tf.saved_model.load(path).signatures` runs both forms
        without Keras or edge_ssl.
        """
        self.model.save(path, save_format="tf", save_traces=False, signatures=self.signatures())


def build_student(
    variant: str | StudentConfig = "small",
    frames: int | None = None,
    input_size: int | None = None,
    embedding_dim: int | None = None,
    name: str = "student",
) -> Student:
    """A compact streaming student, its architecture chosen by name.

    Args:
      variant: "tiny", "small" or "base" (see VARIANTS), or a StudentConfig.
      frames: clip length T instead of the variant's.
      input_size: frame size S instead of the variant's (a multiple of the total stride); the layers stay the same.
      embedding_dim: embedding size D instead of the variant's.
      name: model and layer-name prefix.

    Returns:
      A Student; `student.model` is the whole-clip keras.Model, `student.step_model` its streaming step.
    """
    config = student_config(
        variant, frames=frames, input_size=input_size, embedding_dim=embedding_dim
    )
    return Student(_clip_model(config, name), config)


def load_student(path: str) -> Student:
    """A Student from a whole-clip model saved by `Student.save` (or `model.save`)."""
    return Student(keras.models.load_model(path))
