"""Students against their teachers: parameters, multiply-adds per clip, and LiteRT fp32 latency on one CPU thread,
per clip (whole-clip model) and per streamed frame (the step model with its state), next to a per-frame
MobileNetV3-Small (keras.applications, random weights, no top, average pooling) at the same input size.

Latency is the median of --runs invocations after --warmup, batch 1, `ai_edge_litert` with `num_threads=1`, models
converted with the TFLite converter (fp32, builtin ops).

Example:
  ./run.sh python benchmarks/students.py --runs=30
"""

import tensorflow as tf
from absl import app, flags

from benchmarks import litert_timing
from edge_ssl.configs import cross_and_learn_small, modist_small, muscles_small
from edge_ssl.keras import keras
from edge_ssl.methods import cross_and_learn, modist, muscles
from edge_ssl.models import complexity
from edge_ssl.models import student as student_lib

FLAGS = flags.FLAGS
flags.DEFINE_list("variants", ["tiny", "small", "base"], "Student variants.")
flags.DEFINE_integer("runs", 30, "Timed invocations per model.")
flags.DEFINE_integer("warmup", 3, "Untimed invocations first.")
flags.DEFINE_bool("teachers", True, "Also measure the small teachers' backbones.")


def _step_tflite(student: student_lib.Student) -> bytes:
    specs = student.step_specs(1)
    function = tf.function(
        lambda inputs: student.step_model(inputs, training=False)
    ).get_concrete_function(specs)
    return litert_timing.tflite(function, student.step_model)


def _latency_ms(model: bytes) -> float:
    """Median milliseconds per invocation on one thread, inputs random (state inputs too)."""
    return litert_timing.latency_ms(model, FLAGS.runs, FLAGS.warmup)


def _row(name, params, gmacs, clip_ms, frame_ms):
    frame = f"{frame_ms:.2f}" if frame_ms is not None else "-"
    clip = f"{clip_ms:.1f}" if clip_ms is not None else "-"
    print(f"| {name} | {params:,} | {gmacs:.4f} | {clip} | {frame} |", flush=True)


def main(argv):
    del argv
    print("| model | params | GMACs per clip | LiteRT fp32 ms per clip | ms per streamed frame |")
    print("| --- | ---: | ---: | ---: | ---: |")
    sizes = set()
    for variant in FLAGS.variants:
        student = student_lib.build_student(variant)
        model = student.model
        sizes.add((student.input_size, student.frames))
        _row(
            f"student {variant} ({student.frames} x {student.input_size} px)",
            model.count_params(),
            complexity.multiply_adds(model) / 1e9,
            _latency_ms(litert_timing.keras_tflite(model)),
            _latency_ms(_step_tflite(student)),
        )
    for size, frames in sorted(sizes):
        mobile = keras.applications.MobileNetV3Small(
            input_shape=(size, size, 3), weights=None, include_top=False, pooling="avg"
        )
        per_frame = complexity.multiply_adds(mobile) / 1e9
        _row(
            f"MobileNetV3-Small per frame ({size} px; x{frames} frames per clip)",
            mobile.count_params(),
            per_frame * frames,
            None,
            _latency_ms(litert_timing.keras_tflite(mobile)),
        )
    if FLAGS.teachers:
        teachers = (
            ("MoDist small visual pathway", modist.build(modist_small.get_config())),
            (
                "Cross and Learn small RGB stream",
                cross_and_learn.build(cross_and_learn_small.get_config()),
            ),
            ("Muscles small frame encoder", muscles.build(muscles_small.get_config())),
        )
        for name, method in teachers:
            backbone = method.backbone
            shape = backbone.input_shape
            _row(
                f"teacher: {name} ({shape[1]} x {shape[2]} px)",
                backbone.count_params(),
                complexity.multiply_adds(backbone) / 1e9,
                _latency_ms(litert_timing.keras_tflite(backbone)),
                None,
            )


if __name__ == "__main__":
    app.run(main)
