"""Students against their teachers: parameters, multiply-adds per clip, and LiteRT fp32 latency on one CPU thread,
per clip (whole-clip model) and per streamed frame (the step model with its state), next to a per-frame
MobileNetV3-Small (keras.applications, random weights, no top, average pooling) at the same input size.

Teachers are counted as the distiller runs them (`Method.teacher_views`): every view of the method's
`small` and `paper` configs (MoDist's visual and motion pathways, Cross and Learn's RGB stream and its motion stream
over the stacks of one clip, Muscles' frame encoder), random weights, then each teacher's views together with the
`small` student's share of their multiply-adds (the target: at most 1/10).

Latency is the median of --runs invocations after --warmup, batch 1, `ai_edge_litert` with `num_threads=1`, models
converted with the TFLite converter (fp32, builtin ops). Views above --max_timed_gmacs are counted, not timed.

Example:
  ./run.sh python benchmarks/students.py --runs=30
"""

import tensorflow as tf
from absl import app, flags

from benchmarks import litert_timing
from edge_ssl.configs import loader
from edge_ssl.keras import keras
from edge_ssl.methods import registry
from edge_ssl.models import complexity
from edge_ssl.models import student as student_lib

FLAGS = flags.FLAGS
flags.DEFINE_list("variants", ["tiny", "small", "base"], "Student variants.")
flags.DEFINE_integer("runs", 30, "Timed invocations per model.")
flags.DEFINE_integer("warmup", 3, "Untimed invocations first.")
flags.DEFINE_list(
    "teacher_sizes", ["small", "paper"], "Teacher configs to count (none: an empty list)."
)
flags.DEFINE_float(
    "max_timed_gmacs",
    2.0,
    "Teacher views above this many GMACs per clip are not timed (MoDist's paper R50 is 45.5).",
)

TEACHER_NAMES = {"modist": "MoDist", "cross_and_learn": "Cross and Learn", "muscles": "Muscles"}
VIEW_NAMES = {
    "modist": {"visual": "visual pathway", "motion": "motion pathway"},
    "cross_and_learn": {"visual": "RGB stream", "motion": "motion stream, mean over stacks"},
    "muscles": {"visual": "frame encoder"},
}


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
    totals = []
    for size in FLAGS.teacher_sizes:
        for method_name in registry.VIDEO_METHODS:
            method = registry.get(method_name).build(loader.load(method_name, size))
            params = macs = 0
            for view_name, view in method.teacher_views().items():
                model = view.model
                gmacs = complexity.multiply_adds(model) / 1e9
                params += model.count_params()
                macs += gmacs
                shape = " x ".join(str(d) for d in model.input_shape[1:])
                timed = gmacs <= FLAGS.max_timed_gmacs
                _row(
                    f"teacher: {TEACHER_NAMES[method_name]} {size}, "
                    f"{VIEW_NAMES[method_name][view_name]} ({shape})",
                    model.count_params(),
                    gmacs,
                    _latency_ms(litert_timing.keras_tflite(model)) if timed else None,
                    None,
                )
            totals.append((f"{TEACHER_NAMES[method_name]} {size}", params, macs))
            keras.backend.clear_session()
    if totals:
        small = complexity.multiply_adds(student_lib.build_student("small").model) / 1e9
        print()
        print("| teacher, every view | params | GMACs per clip | `small` student's share |")
        print("| --- | ---: | ---: | ---: |")
        for name, params, macs in totals:
            print(f"| {name} | {params:,} | {macs:.4f} | {100 * small / macs:.1f}% |", flush=True)


if __name__ == "__main__":
    app.run(main)
