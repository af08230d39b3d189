"""Tests for edge_ssl.models.student: streaming equals the whole clip, pinned sizes, edge-safe layers, saving."""

import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from edge_ssl.keras import keras
from edge_ssl.models import complexity, student, temporal

# Every layer class a student may contain (nested models and TimeDistributed included): 2D/depthwise convolutions,
# Dense, BN, ReLU6, adds, concatenation, pooling per frame and the causal temporal layers.
EDGE_SAFE_LAYERS = {
    "InputLayer",
    "Functional",
    "TimeDistributed",
    "Conv2D",
    "StandardizedConv2D",
    "DepthwiseConv2D",
    "Dense",
    "BatchNormalization",
    "ReLU",
    "Add",
    "Concatenate",
    "GlobalAveragePooling2D",
    "L2Normalize",
    "FrameDifference",
    "AddFrameDifference",
    "TemporalShift",
    "CausalTemporalConv",
    "TemporalWindowMean",
}
# Small spatial sizes for the streaming test of the larger variants (same layers, a multiple of the total stride).
STREAMING_SIZES = {"tiny": 32, "small": 32, "base": 32}


def _layer_classes(layer) -> set[str]:
    classes = {type(layer).__name__}
    if isinstance(layer, keras.Model):
        for sub in layer.layers:
            classes |= _layer_classes(sub)
    elif isinstance(layer, keras.layers.TimeDistributed):
        classes |= _layer_classes(layer.layer)
    return classes


def _randomise_temporal_and_bn(model: keras.Model, seed: int) -> None:
    """Random temporal kernels and BN statistics, so that every temporal path changes the output.

    Temporal convolutions start as the identity, which would let a broken state buffer go unnoticed.
    """
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        name = weight.name
        if "temporal" in name and "kernel" in name:
            weight.assign(rng.normal(0.0, 0.6, weight.shape).astype("float32"))
        elif "moving_mean" in name:
            weight.assign(rng.normal(0.0, 0.1, weight.shape).astype("float32"))
        elif "moving_variance" in name:
            weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
        elif "gamma" in name:
            weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))


def _clip(batch, frames, size, seed=0):
    """Noise over a colour that changes from frame to frame and clip to clip (so pooled features differ too)."""
    rng = np.random.default_rng(seed)
    colour = rng.uniform(0.0, 0.7, size=(batch, frames, 1, 1, 3))
    noise = rng.uniform(0.0, 0.3, size=(batch, frames, size, size, 3))
    return (colour + noise).astype("float32")


def _stream(model: student.Student, clip):
    state = model.init_state(clip.shape[0])
    for t in range(clip.shape[1]):
        embedding, state = model.step(clip[:, t], state)
    return embedding, state


class StudentTest(tf.test.TestCase, parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Each variant at its real input size, built once (building is cheap; nothing here runs them).
        cls.real_size = {v: student.build_student(v) for v in student.VARIANTS}

    @parameterized.parameters("tiny", "small", "base")
    def test_streaming_matches_whole_clip(self, variant):
        model = student.build_student(variant, input_size=STREAMING_SIZES[variant])
        _randomise_temporal_and_bn(model.model, seed=1)
        clip = _clip(2, model.frames, model.input_size)
        whole = model(clip).numpy()
        streamed, _ = _stream(model, clip)
        self.assertAllClose(streamed, whole, atol=1e-5, rtol=0)
        # Not trivially equal: the two clips give different embeddings.
        self.assertGreater(np.abs(whole[0] - whole[1]).max(), 1e-3)

    def test_streaming_depends_on_frame_order(self):
        # The temporal layers see order: reversing the clip changes the embedding (a per-frame average would not).
        model = student.build_student("tiny")
        _randomise_temporal_and_bn(model.model, seed=2)
        clip = _clip(1, model.frames, model.input_size, seed=3)
        forward = model(clip).numpy()
        backward = model(clip[:, ::-1]).numpy()
        self.assertGreater(np.abs(forward - backward).max(), 1e-3)

    def test_parameter_counts_and_multiply_adds_are_pinned(self):
        # At each variant's real input size: tiny 8x32x32, small 16x112x112, base 16x128x128. Counts include BN
        # moving statistics, as Keras's count_params does.
        expected = {
            "tiny": (10_792, 3_093_248),
            "small": (521_352, 124_981_504),
            "base": (3_221_032, 1_396_600_832),
        }
        for variant, (params, macs) in expected.items():
            model = self.real_size[variant]
            with self.subTest(variant=variant):
                self.assertEqual(model.model.count_params(), params)
                self.assertEqual(complexity.multiply_adds(model.model), macs)
        small = self.real_size["small"]
        self.assertEqual(small.model.input_shape, (None, 16, 112, 112, 3))
        self.assertEqual(small.model.output_shape, (None, 128))

    def test_multiply_adds_count_the_temporal_convolutions(self):
        model = student.build_student("tiny")
        layer = model.model.get_layer("student_head1_temporal")  # 8 frames x 32 channels x kernel 3
        self.assertEqual(complexity._macs(layer), 8 * 32 * 3)  # pylint: disable=protected-access

    @parameterized.parameters("tiny", "small", "base")
    def test_only_edge_safe_layers(self, variant):
        classes = _layer_classes(self.real_size[variant].model)
        self.assertEmpty(classes - EDGE_SAFE_LAYERS)
        difference = {"output": "AddFrameDifference", "input": "FrameDifference"}[
            student.VARIANTS[variant].stem_difference
        ]
        self.assertContainsSubset(
            {difference, "TemporalShift", "CausalTemporalConv", "DepthwiseConv2D"}, classes
        )

    def test_both_stem_forms_are_one_function(self):
        # The frame difference taken on the stem's output equals the stem convolution of frame and difference
        # concatenated when the kernels match: [W_x | W_d] on output channels against [W_x ; W_d] on input channels.
        output_form = student.build_student(
            student.student_config("tiny", stem_difference="output")
        )
        input_form = student.build_student(student.student_config("tiny", stem_difference="input"))
        _randomise_temporal_and_bn(output_form.model, seed=10)
        stems = {}
        for model in (output_form.model, input_form.model):
            for layer in model.layers:
                if isinstance(layer, keras.layers.TimeDistributed):
                    for sub in layer.layer.layers:
                        if sub.name == "student_stem":
                            stems[model] = sub
        self.assertLen(stems, 2)
        for source, target in zip(output_form.model.weights, input_form.model.weights, strict=True):
            self.assertEqual(source.name, target.name)
            if "student_stem/" not in source.name:
                target.assign(source)
        kernel = stems[output_form.model].kernel.numpy()  # [3, 3, 3, 2C]
        width = kernel.shape[-1] // 2
        stems[input_form.model].kernel.assign(
            np.concatenate([kernel[..., :width], kernel[..., width:]], axis=2)
        )
        clip = _clip(2, 8, 32, seed=11)
        self.assertAllClose(input_form(clip), output_form(clip), atol=1e-5)
        self.assertAllClose(_stream(input_form, clip)[0], output_form(clip), atol=1e-5)

    def test_embedding_is_l2_normalised_float32(self):
        model = student.build_student("tiny")
        embedding = model(_clip(3, 8, 32))
        self.assertEqual(embedding.dtype, tf.float32)
        self.assertEqual(embedding.shape, (3, 16))
        self.assertAllClose(tf.norm(embedding, axis=-1), np.ones(3), atol=1e-6)
        streamed, _ = _stream(model, _clip(3, 8, 32))
        self.assertEqual(streamed.dtype, tf.float32)
        self.assertAllClose(tf.norm(streamed, axis=-1), np.ones(3), atol=1e-6)

    def test_state_shapes_are_fixed_and_float32(self):
        model = student.build_student("tiny")
        self.assertEqual(
            model.state_shapes,
            {
                "student_stem_difference__previous": (1, 16, 16, 8),
                "student_stem_difference__started": (1,),
                "student_stage2_block2_shift__shifted": (1, 8, 8, 2),
                "student_stage3_block2_temporal__frames": (2, 4, 4, 16),
                "student_head1_temporal__frames": (2, 32),
                "student_mean__window": (7, 32),
            },
        )
        state = model.init_state(2)
        for _ in range(3):
            _, new_state = model.step(_clip(2, 1, 32)[:, 0], state)
            self.assertEqual(list(new_state), list(state))
            for key, tensor in new_state.items():
                self.assertEqual(tensor.dtype, tf.float32, key)
                self.assertEqual(tuple(tensor.shape), (2, *model.state_shapes[key]), key)
            state = new_state
        specs = model.step_specs(batch_size=1)
        self.assertEqual(list(specs), ["frame", *model.state_shapes])
        self.assertEqual(specs["frame"].shape, (1, 32, 32, 3))
        # The small student keeps the previous frame's stem map (28 x 28, 16 channels: a third of a 112 x 112 RGB
        # frame's values) and the last 15 pooled features.
        small = self.real_size["small"]
        self.assertEqual(small.state_shapes["student_stem_difference__previous"], (1, 28, 28, 16))
        self.assertEqual(small.state_shapes["student_mean__window"], (15, 384))

    def test_a_longer_stream_keeps_its_shapes_and_stays_normalised(self):
        model = student.build_student("tiny")
        clip = _clip(1, 20, 32, seed=4)
        embedding, state = _stream(model, clip)
        self.assertEqual(set(state), set(model.state_shapes))
        self.assertAllClose(tf.norm(embedding, axis=-1), [1.0], atol=1e-6)

    def test_save_and_load_round_trip(self):
        model = student.build_student("tiny")
        _randomise_temporal_and_bn(model.model, seed=5)
        clip = _clip(2, 8, 32, seed=6)
        path = os.path.join(self.get_temp_dir(), "student")
        model.save(path)
        loaded = student.load_student(path)
        self.assertIsInstance(loaded.model, keras.Model)
        self.assertAllClose(loaded(clip), model(clip), atol=1e-6)
        streamed, _ = _stream(loaded, clip)
        self.assertAllClose(streamed, model(clip), atol=1e-5, rtol=0)
        self.assertEqual(complexity.multiply_adds(loaded.model), 3_093_248)
        # The file alone (no Keras, no edge_ssl layers) streams through its `step` signature.
        signatures = tf.saved_model.load(path).signatures
        self.assertAllClose(
            signatures["serving_default"](clip=tf.constant(clip))["embedding"],
            model(clip),
            atol=1e-6,
        )
        state = {k: v for k, v in model.init_state(2).items()}
        for t in range(8):
            state = signatures["step"](frame=tf.constant(clip[:, t]), **state)
            embedding = state.pop("embedding")
        self.assertAllClose(embedding, model(clip), atol=1e-5, rtol=0)

    def test_config_round_trip(self):
        model = student.build_student("tiny")
        _randomise_temporal_and_bn(model.model, seed=7)
        clone = keras.Model.from_config(model.model.get_config())
        clone.set_weights(model.model.get_weights())
        clip = _clip(2, 8, 32, seed=8)
        self.assertAllClose(clone(clip, training=False), model(clip), atol=1e-6)

    def test_every_trainable_weight_gets_a_gradient(self):
        model = student.build_student("tiny")
        clip = _clip(2, 8, 32, seed=9)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(clip, training=True)[:, 0])
        grads = tape.gradient(loss, model.model.trainable_variables)
        missing = [v.name for v, g in zip(model.model.trainable_variables, grads) if g is None]
        self.assertEmpty(missing)

    def test_variants_and_overrides(self):
        config = student.student_config("small", frames=8, input_size=64)
        self.assertEqual((config.frames, config.input_size), (8, 64))
        self.assertEqual(config.stages, student.VARIANTS["small"].stages)
        self.assertEqual(student.VARIANTS["small"].total_stride, 16)
        self.assertEqual(student.VARIANTS["base"].total_stride, 32)
        model = student.build_student("tiny", frames=4, embedding_dim=8)
        self.assertEqual(model.model.output_shape, (None, 8))
        self.assertEqual(model.frames, 4)

    def test_bad_arguments_are_clear_errors(self):
        with self.assertRaisesRegex(ValueError, "unknown student variant 'huge'"):
            student.build_student("huge")
        with self.assertRaisesRegex(ValueError, "multiple of the total stride 16"):
            student.build_student("small", input_size=100)
        with self.assertRaisesRegex(ValueError, "unknown student config fields"):
            student.student_config("tiny", depth=3)
        with self.assertRaisesRegex(ValueError, "at least 2 frames"):
            student.build_student("tiny", frames=1)
        with self.assertRaisesRegex(ValueError, "unknown stem_difference 'middle'"):
            student.student_config("tiny", stem_difference="middle")
        with self.assertRaisesRegex(ValueError, "unknown temporal mode"):
            student.student_config(
                "tiny", stages=(student.StudentStage(1, 8, 1, 1, "bidirectional"),)
            )
        with self.assertRaisesRegex(ValueError, "models time in residual blocks but has none"):
            student.student_config("tiny", stages=(student.StudentStage(3, 16, 1, 2, "conv"),))

        model = student.build_student("tiny")
        with self.assertRaisesRegex(ValueError, r"clips \[B, 8, 32, 32, 3\]"):
            model(_clip(1, 4, 32))
        state = model.init_state(1)
        with self.assertRaisesRegex(ValueError, "'frame' has shape"):
            model.step(np.zeros((1, 16, 16, 3), "float32"), state)
        del state["student_mean__window"]
        with self.assertRaisesRegex(ValueError, r"missing \['student_mean__window'\]"):
            model.step(np.zeros((1, 32, 32, 3), "float32"), state)
        with self.assertRaisesRegex(ValueError, "batch_size must be positive"):
            model.init_state(0)

    def test_step_model_is_a_keras_model_sharing_the_weights(self):
        model = student.build_student("tiny")
        self.assertIsInstance(model.step_model, temporal.StreamingStep)
        self.assertIsInstance(model.step_model, keras.Model)
        step_weights = {id(w) for w in model.step_model.weights}
        self.assertEqual(step_weights, {id(w) for w in model.model.weights})


if __name__ == "__main__":
    tf.test.main()
