"""Where a student's clip time goes in LiteRT: fp32 and int8 latency of the model cut after each stage of its graph.

For each cut point (every per-frame segment and temporal layer, the stem's frame difference among them, the pooled
head, the embedding) the whole-clip model up to that layer is converted to TFLite fp32 and to full int8
(calibrated on random clips: latency does not depend on the values) and timed on one thread at batch 1 on random
clips. The rows are cumulative: the cost of a part is the difference between its row and the row before. The
int8/fp32 ratio of each part says where int8 pays and where it does not (narrow, high-resolution layers and data
movement).

Example:
  ./run.sh python benchmarks/student_profile.py --variant=small --runs=30
"""

import numpy as np
from absl import app, flags

from benchmarks import litert_timing
from edge_ssl.keras import keras
from edge_ssl.models import student as student_lib
from edge_ssl.models import temporal

FLAGS = flags.FLAGS
flags.DEFINE_string("variant", "small", "Student variant.")
flags.DEFINE_integer("runs", 30, "Timed invocations per model.")
flags.DEFINE_integer("warmup", 3, "Untimed invocations first.")
flags.DEFINE_integer("calibration_clips", 4, "Random clips for int8 calibration.")


def _cut_points(model: keras.Model) -> list[str]:
    """The layers after which the graph is cut: every clip-level layer that changes the data's shape or mixes time."""
    names = []
    for layer in model.layers[1:]:
        if (
            isinstance(
                layer,
                (
                    keras.layers.TimeDistributed,
                    keras.layers.Concatenate,
                    temporal.CausalTemporalLayer,
                ),
            )
            or layer is model.layers[-1]
        ):
            names.append(layer.name)
    return names


def main(argv):
    del argv
    keras.utils.set_random_seed(0)
    student = student_lib.build_student(FLAGS.variant)
    model = student.model
    rng = np.random.default_rng(0)
    shape = (1, *model.input_shape[1:])
    clips = [
        rng.uniform(0.0, 1.0, shape).astype(np.float32) for _ in range(FLAGS.calibration_clips)
    ]
    print(f"student {FLAGS.variant}, clip {shape[1:]}, LiteRT 1 thread, median of {FLAGS.runs}")
    print("| model up to | fp32 ms | int8 ms | part fp32 ms | part int8 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    before = (0.0, 0.0)
    for name in _cut_points(model):
        cut = keras.Model(model.input, model.get_layer(name).output)
        fp32 = litert_timing.latency_ms(litert_timing.keras_tflite(cut), FLAGS.runs, FLAGS.warmup)
        int8 = litert_timing.latency_ms(
            litert_timing.keras_tflite(cut, clips), FLAGS.runs, FLAGS.warmup
        )
        print(
            f"| {name} | {fp32:.2f} | {int8:.2f} | {fp32 - before[0]:+.2f} | {int8 - before[1]:+.2f} |",
            flush=True,
        )
        before = (fp32, int8)


if __name__ == "__main__":
    app.run(main)
