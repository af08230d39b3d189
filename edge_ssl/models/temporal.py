"""Causal temporal layers that stream frame by frame with explicit state, and the step model built from a clip model.

A clip model holds tensors [B, T, ...] with time on axis 1. Every layer that mixes time is a `CausalTemporalLayer`:
its output at frame t reads frames t, t-1, ..., t-h+1 of its input only (h is the layer's history), and frames
before the clip count as zeros (FrameDifference and AddFrameDifference instead make their first difference zero).
So the same layer can run one frame at a time: given the last h-1 frames of its input as state, it computes the
output for the newest frame and hands back the updated state. Every other layer acts on each
frame alone: a per-frame network inside `TimeDistributed`, or a layer such as Dense, Add, Concatenate on channels or
BatchNormalization that never works along the time axis (streaming cannot check this; a test of the model that
streams a clip against the whole clip does).

`StreamingStep(clip_model)` reruns a clip model's graph on one frame ([B, 1, ...] inside, a time axis of length 1)
with every causal layer fed its state as an extra input, sharing the clip model's layers and weights. After T frames
from the zero state it gives the clip model's output on those T frames. The step is a pure function of its inputs
(frame and state tensors, all float32 with static shapes), so it exports as a SavedModel or TFLite signature.

The layers are built from slices, padding, concatenation, reshapes, a depthwise 2D convolution and a mean: ops that
int8 TFLite, XNNPACK and TensorRT run (no Conv3D, no 3D pooling).

Temporal shift follows TSM (Lin, Gan and Han, "TSM: Temporal Shift Module for Efficient Video Understanding", ICCV
2019) in its online form: a fraction of the channels is shifted from the previous frame only, never from the future.
"""

from collections.abc import Mapping

import tensorflow as tf

from edge_ssl import tracing
from edge_ssl.keras import keras

STATE_SEPARATOR = "__"


def _time_padded(x: tf.Tensor, frames: int) -> tf.Tensor:
    """`frames` zero frames prepended on the time axis (axis 1) of x [B, T, ...]."""
    paddings = [[0, 0], [frames, 0]] + [[0, 0]] * (x.shape.rank - 2)
    return tf.pad(x, paddings)


class CausalTemporalLayer(keras.layers.Layer):
    """A layer over [B, T, ...] whose output at frame t depends on input frames up to t only.

    Subclasses implement `_clip(x)` (the whole clip, zeros before the first frame), `state_shapes(input_shape)` and
    `_step(x, state)` (one frame [B, 1, ...] and the state -> output for that frame and the new state). Calling the
    layer as `layer(x)` runs the clip form; `layer(x, state=dict)` runs one step and returns `(y, new_state)`, so
    the step form also goes through Keras's `__call__` and can be used in a functional model.
    """

    @tracing.as_written
    def call(self, inputs, state=None):
        if state is None:
            return self._clip(inputs)
        missing = set(self.state_shapes(inputs.shape[1:])) - set(state)
        if missing:
            raise ValueError(f"layer {self.name!r}: state is missing {sorted(missing)}")
        return self._step(inputs, state)

    def state_shapes(self, input_shape) -> dict[str, tuple[int, ...]]:
        """Shapes (without the batch axis) of the state this layer keeps, for an input of `input_shape`.

        Args:
          input_shape: the input's shape without the batch axis, time first ([T, ...]); only the axes after time
            matter.

        Returns:
          An ordered dict from state name to shape; empty for a layer that needs no state.
        """
        raise NotImplementedError

    def _clip(self, x):
        raise NotImplementedError

    def _step(self, x, state):
        raise NotImplementedError


@keras.utils.register_keras_serializable("edge_ssl")
class FrameDifference(CausalTemporalLayer):
    """Frame differences on the time axis: `y[t] = x[t] - x[t-1]` and `y[0] = 0` (the data contract's `diff`).

    State: `previous`, the last frame [1, ...], and `started` [1], 1 once a frame has been seen. The flag makes the
    first streamed difference zero whatever `previous` holds, as in the clip form.
    """

    def state_shapes(self, input_shape):
        frame = tuple(int(d) for d in input_shape[1:])
        return {"previous": (1, *frame), "started": (1,)}

    def _clip(self, x):
        return _time_padded(x[:, 1:] - x[:, :-1], 1)

    def _step(self, x, state):
        started = tf.reshape(state["started"], [-1] + [1] * (x.shape.rank - 1))
        y = (x - state["previous"]) * started
        return y, {"previous": x, "started": tf.ones_like(state["started"])}


@keras.utils.register_keras_serializable("edge_ssl")
class AddFrameDifference(FrameDifference):
    """`y[t] = a[t] + m[t] - m[t-1]` for an input whose channels are `[a, m]`, two halves of C each (m[-1] = m[0]).

    Input [B, T, ..., 2C], output [B, T, ..., C]. After a linear convolution W of the frames that gives `[a, m] =
    [W_a x, W_m x]`, this is `W_a x[t] + W_m (x[t] - x[t-1])`: the same function as a convolution of the frame and its
    difference concatenated on channels, but the difference is taken on the convolution's output instead of the
    input (on an edge device: no frame-sized difference and concatenation ahead of the first layer, and the first
    layer reads 3 channels instead of 6). The difference of m is FrameDifference's, state included: `previous`, the
    last frame's m [1, ..., C], and `started` [1].
    """

    def _halves(self, x):
        channels = x.shape[-1]
        if channels is None or channels % 2:
            raise ValueError(
                f"{self.name}: expects an even number of channels [a, m], got {channels}"
            )
        return x[..., : channels // 2], x[..., channels // 2 :]

    def state_shapes(self, input_shape):
        *frame, channels = input_shape
        return super().state_shapes((*frame, int(channels) // 2))

    def _clip(self, x):
        a, m = self._halves(x)
        return a + super()._clip(m)

    def _step(self, x, state):
        a, m = self._halves(x)
        difference, state = super()._step(m, state)
        return a + difference, state


@keras.utils.register_keras_serializable("edge_ssl")
class TemporalShift(CausalTemporalLayer):
    """Online temporal shift (TSM): the first `round(C * fraction)` channels of frame t come from frame t-1.

    Input [B, T, ..., C]; the remaining channels stay in place. Frame 0 receives zeros in the shifted channels. Costs
    no multiply-adds and no parameters: a slice, a pad and a concatenation. State: `shifted`, the previous frame's
    shifted channels [1, ..., n].
    """

    def __init__(self, fraction: float = 0.125, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < fraction <= 0.5:
            raise ValueError(f"shift fraction must be in (0, 0.5], got {fraction}")
        self.fraction = float(fraction)

    def shifted_channels(self, channels: int) -> int:
        """How many of `channels` channels are shifted (at least one)."""
        return max(1, int(round(channels * self.fraction)))

    def state_shapes(self, input_shape):
        frame = tuple(int(d) for d in input_shape[1:])
        return {"shifted": (1, *frame[:-1], self.shifted_channels(frame[-1]))}

    def _clip(self, x):
        n = self.shifted_channels(x.shape[-1])
        past = _time_padded(x[:, :-1, ..., :n], 1)
        return tf.concat([past, x[..., n:]], axis=-1)

    def _step(self, x, state):
        n = self.shifted_channels(x.shape[-1])
        y = tf.concat([state["shifted"], x[..., n:]], axis=-1)
        return y, {"shifted": x[..., :n]}

    def get_config(self):
        return {**super().get_config(), "fraction": self.fraction}


def _causal_identity(shape, dtype=None):
    """Depthwise temporal kernel [k, 1, C, 1] that passes the current frame through (newest tap 1, others 0)."""
    kernel_size = shape[0]
    taps = tf.one_hot(kernel_size - 1, kernel_size, dtype=dtype or tf.float32)
    return tf.broadcast_to(tf.reshape(taps, [kernel_size, 1, 1, 1]), shape)


@keras.utils.register_keras_serializable("edge_ssl")
class CausalTemporalConv(CausalTemporalLayer):
    """Depthwise causal convolution over time: `y[t, c] = sum_i w[i, c] x[t - k + 1 + i, c] (+ b[c])`.

    Input [B, T, ..., C]: each channel at each spatial position is filtered over time on its own (the temporal half
    of a (2+1)D depthwise block). Written as a 2D depthwise convolution with a (k, 1) kernel over [B, T + k - 1,
    positions, C] after k - 1 zero frames are prepended, so it is a DEPTHWISE_CONV_2D everywhere it is exported.
    The kernel starts as the identity (the current frame's tap is 1), so a new block starts as a per-frame network.
    State: `frames`, the last k - 1 input frames [k - 1, ..., C].
    """

    def __init__(self, kernel_size: int = 3, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        if kernel_size < 2:
            raise ValueError(f"a temporal convolution needs kernel_size >= 2, got {kernel_size}")
        self.kernel_size = int(kernel_size)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        if len(input_shape) < 3 or input_shape[-1] is None:
            raise ValueError(
                f"{self.name}: expects [B, T, ..., C] with known C, got {tuple(input_shape)}"
            )
        channels = int(input_shape[-1])
        self.kernel = self.add_weight(
            "kernel", shape=(self.kernel_size, 1, channels, 1), initializer=_causal_identity
        )
        self.bias = (
            self.add_weight("bias", shape=(channels,), initializer="zeros")
            if self.use_bias
            else None
        )
        super().build(input_shape)

    def state_shapes(self, input_shape):
        frame = tuple(int(d) for d in input_shape[1:])
        return {"frames": (self.kernel_size - 1, *frame)}

    def _convolve(self, padded, frames_out):
        # [B, T + k - 1, ..., C] -> [B, T + k - 1, positions, C] -> depthwise (k, 1) VALID -> [B, T, ..., C].
        inner = padded.shape[2:]
        positions = 1
        for d in inner[:-1]:
            positions *= int(d)
        x = tf.reshape(padded, [-1, padded.shape[1], positions, inner[-1]])
        y = tf.nn.depthwise_conv2d(x, self.kernel, strides=[1, 1, 1, 1], padding="VALID")
        if self.bias is not None:
            y = y + self.bias
        return tf.reshape(y, [-1, frames_out, *inner])

    def _clip(self, x):
        return self._convolve(_time_padded(x, self.kernel_size - 1), x.shape[1])

    def _step(self, x, state):
        window = tf.concat([state["frames"], x], axis=1)
        return self._convolve(window, 1), {"frames": window[:, 1:]}

    def multiply_adds(self) -> int:
        """Multiply-adds of one example (read by edge_ssl.models.complexity)."""
        out_elements = 1
        for d in self.output_shape[1:]:
            out_elements *= int(d)
        return out_elements * self.kernel_size

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "use_bias": self.use_bias}


@keras.utils.register_keras_serializable("edge_ssl")
class TemporalWindowMean(CausalTemporalLayer):
    """[B, T, ...] -> [B, ...]: the mean over the last `frames` frames, the clip's length.

    The clip form needs exactly `frames` frames and averages them. Streaming keeps the last `frames - 1` inputs
    (state `window`) and averages them with the newest one: after `frames` frames this is the clip's mean, and in a
    longer stream it is the mean of the most recent `frames` frames (a sliding window, so the embedding always
    describes the latest clip and no running sum drifts). Before the window has filled, the missing frames count as
    zeros. A static 1/frames scale, no division by a running count: every runtime has it.
    """

    def __init__(self, frames: int, **kwargs):
        super().__init__(**kwargs)
        if frames < 1:
            raise ValueError(f"a temporal window needs frames >= 1, got {frames}")
        self.frames = int(frames)

    def state_shapes(self, input_shape):
        if self.frames == 1:
            return {}
        frame = tuple(int(d) for d in input_shape[1:])
        return {"window": (self.frames - 1, *frame)}

    def _clip(self, x):
        if x.shape[1] != self.frames:
            raise ValueError(
                f"{self.name}: averages clips of {self.frames} frames, got {x.shape[1]} frames"
            )
        return tf.reduce_mean(x, axis=1)

    def _step(self, x, state):
        if self.frames == 1:
            return x[:, 0], {}
        window = tf.concat([state["window"], x], axis=1)
        return tf.reduce_mean(window, axis=1), {"window": window[:, 1:]}

    def get_config(self):
        return {**super().get_config(), "frames": self.frames}


def state_name(layer_name: str, key: str) -> str:
    """The name of one state tensor in the step model's inputs and outputs: `<layer>__<key>`."""
    return f"{layer_name}{STATE_SEPARATOR}{key}"


def _frame_input_shape(clip_model: keras.Model) -> tuple[int, ...]:
    if len(clip_model.inputs) != 1 or len(clip_model.outputs) != 1:
        raise ValueError(
            f"a streamable clip model has one input [B, T, ...] and one output; {clip_model.name!r} has "
            f"{len(clip_model.inputs)} inputs and {len(clip_model.outputs)} outputs"
        )
    shape = tuple(clip_model.inputs[0].shape[1:])
    if len(shape) < 2 or any(d is None for d in shape):
        raise ValueError(
            f"a streamable clip model needs a static input [B, T, ...], {clip_model.name!r} takes "
            f"{tuple(clip_model.inputs[0].shape)}"
        )
    return shape[1:]


def _graph_nodes(clip_model: keras.Model) -> list:
    """The clip model's layer calls in an order that computes each after its inputs (as Keras runs them)."""
    # pylint: disable=protected-access
    nodes, seen = [], set()
    for depth in sorted(clip_model._nodes_by_depth, reverse=True):
        for node in clip_model._nodes_by_depth[depth]:
            if node.is_input:
                continue
            if id(node.layer) in seen:
                raise ValueError(
                    f"layer {node.layer.name!r} is used more than once in {clip_model.name!r}; streaming "
                    "needs each layer of the clip model used once"
                )
            seen.add(id(node.layer))
            nodes.append(node)
    return nodes


class StreamingStep(keras.Model):
    """The one-frame step of a clip model, sharing its layers and weights.

    Inputs: a dict with `frame` [B, ...] (one frame of the clip input [B, T, ...]) and one float32 tensor per state
    entry, named `state_name(layer, key)` (see `state_shapes`). Outputs: a dict with `output_name` (the clip model's
    output after this frame) and the new state under the same names. The clip model's graph is rerun on the frame
    with a time axis of length 1, so per-frame layers see the rank they were built for, and every causal layer gets
    its state. The step is a pure function of its inputs: fixed shapes, float32 state, no variables of its own, so it
    traces into a SavedModel or TFLite signature (`input_specs` gives the TensorSpecs).

    Running the clip model's layers on real tensors (not on Keras's symbolic ones) keeps the clip model's graph as
    it was: its layers get no second inbound node, so `output_shape`, summaries and multiply-add counts still work.
    """

    def __init__(
        self, clip_model: keras.Model, output_name: str = "output", name: str | None = None
    ):
        """Builds the step of `clip_model`.

        Args:
          clip_model: a functional model with one static input [B, T, ...] and one output, whose layers act on each
            frame alone (per-frame layers, TimeDistributed) or are CausalTemporalLayers.
          output_name: the key of the clip model's output in the step's outputs.
          name: the step model's name; `<clip model name>_step` by default.

        Raises:
          ValueError: for a model with several inputs or outputs, a dynamic input shape or a layer used twice.
        """
        super().__init__(name=name or f"{clip_model.name}_step")
        self.frame_shape = _frame_input_shape(clip_model)
        self.clip_model = clip_model
        self.output_name = output_name
        self._nodes = _graph_nodes(clip_model)
        self._state_shapes = {}
        for node in self._nodes:
            if isinstance(node.layer, CausalTemporalLayer):
                shape = node.input_shapes
                for key, state in node.layer.state_shapes(tuple(shape)[1:]).items():
                    self._state_shapes[state_name(node.layer.name, key)] = state
        if output_name == "frame" or output_name in self._state_shapes:
            raise ValueError(f"output_name {output_name!r} clashes with an input or state name")

    @property
    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each state tensor without the batch axis, in graph order; all float32."""
        return dict(self._state_shapes)

    def input_specs(self, batch_size: int | None = None) -> dict[str, tf.TensorSpec]:
        """TensorSpecs of the inputs, `frame` first, e.g. for an export signature with a fixed batch size."""
        specs = {"frame": tf.TensorSpec((batch_size, *self.frame_shape), tf.float32, "frame")}
        for key, shape in self._state_shapes.items():
            specs[key] = tf.TensorSpec((batch_size, *shape), tf.float32, key)
        return specs

    def initial_state(self, batch_size: int) -> dict[str, tf.Tensor]:
        """The zero state for `batch_size` streams: what a clip starts from."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        return {
            key: tf.zeros((batch_size, *shape), tf.float32)
            for key, shape in self._state_shapes.items()
        }

    def check_inputs(self, inputs: Mapping[str, tf.Tensor]) -> None:
        """Raises ValueError naming what is wrong when `inputs` (frame and state) do not fit this step."""
        wanted = {"frame": self.frame_shape, **self._state_shapes}
        missing, unknown = sorted(set(wanted) - set(inputs)), sorted(set(inputs) - set(wanted))
        if missing or unknown:
            raise ValueError(f"step inputs do not fit: missing {missing}, unknown {unknown}")
        batch = None
        for key, shape in wanted.items():
            got = tuple(inputs[key].shape)
            if got[1:] != shape or (batch is not None and got[0] is not None and got[0] != batch):
                raise ValueError(
                    f"step input {key!r} has shape {got}; expected [{batch or 'B'}, "
                    f"{', '.join(map(str, shape))}]"
                )
            batch = batch if batch is not None else got[0]

    @tracing.as_written
    def call(self, inputs):
        # `training` reaches the clip model's layers through Keras's call context (Model.__call__).
        self.check_inputs(inputs)
        x = tf.expand_dims(tf.convert_to_tensor(inputs["frame"], tf.float32), 1)
        # pylint: disable=protected-access
        usage = self.clip_model._tensor_usage_count
        first = str(id(self.clip_model.inputs[0]))
        computed = {first: [x] * usage[first]}
        new_state = {}
        for node in self._nodes:
            layer = node.layer
            args, kwargs = node.map_arguments(computed)
            if isinstance(layer, CausalTemporalLayer):
                keys = layer.state_shapes(args[0].shape[1:])
                state = {key: inputs[state_name(layer.name, key)] for key in keys}
                outputs, updated = layer(*args, state=state, **kwargs)
                for key, tensor in updated.items():
                    new_state[state_name(layer.name, key)] = tensor
            else:
                outputs = layer(*args, **kwargs)
            for x_id, y in zip(node.flat_output_ids, tf.nest.flatten(outputs)):
                computed[x_id] = [y] * usage[x_id]
        # pylint: enable=protected-access
        output = computed[str(id(self.clip_model.outputs[0]))].pop()
        return {self.output_name: output, **new_state}

    def get_config(self):
        raise NotImplementedError(
            "a StreamingStep is not serialised on its own: save the clip model and build the step from it, or "
            "export the step as a tf.function signature"
        )
