"""Tests for edge_ssl.models.temporal: each causal layer by hand, no look at the future, the generic step model."""

import numpy as np
import tensorflow as tf

from edge_ssl.keras import keras
from edge_ssl.models import complexity, temporal


def _random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


class TemporalLayersTest(tf.test.TestCase):

    def test_frame_difference_starts_at_zero(self):
        x = _random((2, 4, 3, 3, 3))
        y = temporal.FrameDifference()(x).numpy()
        self.assertAllEqual(y[:, 0], np.zeros_like(x[:, 0]))
        self.assertAllClose(y[:, 1:], x[:, 1:] - x[:, :-1])

    def test_add_frame_difference_adds_the_second_halfs_difference_to_the_first_half(self):
        x = _random((2, 4, 3, 3, 10))
        a, m = x[..., :5], x[..., 5:]
        y = temporal.AddFrameDifference()(x).numpy()
        self.assertEqual(y.shape, (2, 4, 3, 3, 5))
        self.assertAllClose(y[:, 0], a[:, 0])  # no difference before the second frame
        self.assertAllClose(y[:, 1:], a[:, 1:] + m[:, 1:] - m[:, :-1])
        with self.assertRaisesRegex(ValueError, "even number of channels"):
            temporal.AddFrameDifference()(_random((1, 3, 2, 2, 5)))

    def test_add_frame_difference_after_a_convolution_is_a_convolution_of_frame_and_difference(
        self,
    ):
        # conv_[Wa, Wm](x) then AddFrameDifference == conv_[Wa; Wm] of the frame and its difference concatenated.
        x = _random((2, 5, 8, 8, 3))
        kernel_a, kernel_m = _random((3, 3, 3, 4), seed=1), _random((3, 3, 3, 4), seed=2)
        halves = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)
        halves.build((None, 8, 8, 3))
        halves.set_weights([np.concatenate([kernel_a, kernel_m], axis=-1)])
        y = temporal.AddFrameDifference()(keras.layers.TimeDistributed(halves)(x))
        joint = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)
        joint.build((None, 8, 8, 6))
        joint.set_weights([np.concatenate([kernel_a, kernel_m], axis=2)])
        frames_and_differences = np.concatenate([x, temporal.FrameDifference()(x)], axis=-1)
        expected = keras.layers.TimeDistributed(joint)(frames_and_differences)
        self.assertAllClose(y, expected, atol=1e-5)

    def test_temporal_shift_moves_a_fraction_of_channels_from_the_past(self):
        x = _random((2, 5, 4, 4, 16))
        layer = temporal.TemporalShift(0.125)
        y = layer(x).numpy()
        self.assertEqual(layer.shifted_channels(16), 2)
        self.assertAllEqual(y[:, 0, ..., :2], np.zeros_like(x[:, 0, ..., :2]))
        self.assertAllEqual(y[:, 1:, ..., :2], x[:, :-1, ..., :2])
        self.assertAllEqual(y[..., 2:], x[..., 2:])

    def test_causal_conv_matches_a_direct_sum_and_starts_as_identity(self):
        x = _random((2, 6, 3, 5))
        layer = temporal.CausalTemporalConv(3)
        self.assertAllClose(layer(x), x)  # the identity kernel passes the current frame through
        kernel, bias = _random((3, 1, 5, 1), seed=1), _random((5,), seed=2)
        layer.set_weights([kernel, bias])
        padded = np.concatenate([np.zeros_like(x[:, :2]), x], axis=1)
        expected = sum(kernel[i, 0, :, 0] * padded[:, i : i + 6] for i in range(3)) + bias
        self.assertAllClose(layer(x), expected, atol=1e-5)

    def test_no_layer_looks_at_future_frames(self):
        x = _random((1, 6, 4, 4, 8))
        changed = x.copy()
        changed[:, 4:] += 1.0  # frames 4 and 5 change; outputs at frames 0..3 must not
        conv = temporal.CausalTemporalConv(3)
        conv.build(x.shape)
        conv.set_weights([_random((3, 1, 8, 1), seed=3), _random((8,), seed=4)])
        for layer in (
            temporal.FrameDifference(),
            temporal.AddFrameDifference(),
            temporal.TemporalShift(0.25),
            conv,
        ):
            with self.subTest(layer=type(layer).__name__):
                self.assertAllClose(layer(x)[:, :4], layer(changed)[:, :4])
                self.assertNotAllClose(layer(x)[:, 4:], layer(changed)[:, 4:])

    def test_window_mean_needs_the_clip_length(self):
        layer = temporal.TemporalWindowMean(4)
        self.assertAllClose(layer(np.ones((2, 4, 3), "float32")), np.ones((2, 3)))
        with self.assertRaisesRegex(ValueError, "averages clips of 4 frames, got 5"):
            layer(np.ones((2, 5, 3), "float32"))

    def test_bad_layer_arguments_are_errors(self):
        with self.assertRaisesRegex(ValueError, "shift fraction"):
            temporal.TemporalShift(0.75)
        with self.assertRaisesRegex(ValueError, "kernel_size >= 2"):
            temporal.CausalTemporalConv(1)
        with self.assertRaisesRegex(ValueError, "frames >= 1"):
            temporal.TemporalWindowMean(0)

    def test_configs_round_trip(self):
        for layer in (
            temporal.FrameDifference(name="d"),
            temporal.AddFrameDifference(name="a"),
            temporal.TemporalShift(0.25, name="s"),
            temporal.CausalTemporalConv(4, use_bias=False, name="c"),
            temporal.TemporalWindowMean(7, name="m"),
        ):
            clone = type(layer).from_config(layer.get_config())
            self.assertEqual(clone.get_config(), layer.get_config())

    def test_causal_conv_reports_its_multiply_adds(self):
        inputs = keras.Input((8, 4, 4, 6))
        model = keras.Model(inputs, temporal.CausalTemporalConv(3)(inputs))
        self.assertEqual(complexity.multiply_adds(model), 8 * 4 * 4 * 6 * 3)


def _toy_clip_model(frames=5):
    """Per-frame conv in TimeDistributed, every causal layer, a head after the mean."""
    clip = keras.Input((frames, 6, 6, 2), name="clip")
    x = temporal.FrameDifference(name="diff")(clip)
    x = keras.layers.Concatenate(name="cat")([clip, x])
    frame = keras.Sequential(
        [keras.Input((6, 6, 4)), keras.layers.Conv2D(8, 3, padding="same", activation="relu")],
        name="frame",
    )
    x = keras.layers.TimeDistributed(frame, name="frame_td")(x)
    y = temporal.TemporalShift(0.25, name="shift")(x)
    y = temporal.CausalTemporalConv(3, name="tconv")(y)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D(), name="pool")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = temporal.TemporalWindowMean(frames, name="mean")(x)
    x = keras.layers.Dense(3, name="out")(x)
    model = keras.Model(clip, x, name="toy")
    model.get_layer("tconv").set_weights([_random((3, 1, 8, 1), seed=5), _random((8,), seed=6)])
    return model


class StreamingStepTest(tf.test.TestCase):

    def test_streaming_a_clip_gives_the_clip_output(self):
        model = _toy_clip_model()
        step = temporal.StreamingStep(model)
        self.assertEqual(
            step.state_shapes,
            {
                "diff__previous": (1, 6, 6, 2),
                "diff__started": (1,),
                "shift__shifted": (1, 6, 6, 2),
                "tconv__frames": (2, 6, 6, 8),
                "mean__window": (4, 8),
            },
        )
        clip = _random((3, 5, 6, 6, 2), seed=7)
        state = step.initial_state(3)
        for t in range(5):
            outputs = step({"frame": clip[:, t], **state})
            output = outputs.pop("output")
            state = outputs
        self.assertAllClose(output, model(clip), atol=1e-5)

    def test_the_clip_model_graph_is_left_alone(self):
        model = _toy_clip_model()
        temporal.StreamingStep(model)
        temporal.StreamingStep(model)  # twice: layers stay single-use, shapes stay defined
        self.assertEqual(model.get_layer("tconv").output_shape, (None, 5, 6, 6, 8))

    def test_input_specs_fix_the_batch(self):
        step = temporal.StreamingStep(_toy_clip_model())
        specs = step.input_specs(batch_size=1)
        self.assertEqual(specs["frame"].shape, (1, 6, 6, 2))
        self.assertEqual(specs["mean__window"].shape, (1, 4, 8))
        self.assertTrue(all(s.dtype == tf.float32 for s in specs.values()))

    def test_unstreamable_models_are_errors(self):
        a, b = keras.Input((4, 3)), keras.Input((4, 3))
        with self.assertRaisesRegex(ValueError, "one input"):
            temporal.StreamingStep(keras.Model([a, b], keras.layers.Add()([a, b])))
        dynamic = keras.Input((None, 3))
        with self.assertRaisesRegex(ValueError, "static input"):
            temporal.StreamingStep(keras.Model(dynamic, keras.layers.Dense(2)(dynamic)))
        shared = keras.layers.Dense(3)
        x = keras.Input((4, 3))
        with self.assertRaisesRegex(ValueError, "used more than once"):
            temporal.StreamingStep(keras.Model(x, shared(shared(x))))

    def test_bad_step_inputs_are_errors(self):
        step = temporal.StreamingStep(_toy_clip_model())
        state = step.initial_state(2)
        with self.assertRaisesRegex(ValueError, r"missing \['frame'\]"):
            step.check_inputs(state)
        state["tconv__frames"] = tf.zeros((2, 3, 6, 6, 8))
        with self.assertRaisesRegex(ValueError, "'tconv__frames' has shape"):
            step.check_inputs({"frame": tf.zeros((2, 6, 6, 2)), **state})
        with self.assertRaisesRegex(ValueError, "clashes"):
            temporal.StreamingStep(_toy_clip_model(), output_name="frame")


if __name__ == "__main__":
    tf.test.main()
