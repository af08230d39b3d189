"""Held-out k-NN of a distillation's two ends: each view of a teacher, and students, on the world's held-out actions.

A student distilled from a teacher's embedding can learn at most what that embedding knows, so this prints, for the
synthetic world's held-out split (actions never seen in pretraining or distillation), the leave-one-out k-NN accuracy
by cosine (k = 1 and 5; the other cameras of a clip's performance never vote; chance 20%), 5-way 1- and 5-shot
accuracy of a nearest-prototype head over seeded episodes (the demo's protocol; mean and 95% CI), the spread of the
unit-normalised embeddings (1 - |their mean|^2 over the clips whose embedding is not all zero: near 0 when every clip
points almost one way, which is when cosine regression to them learns little) and the fractions of dead rows (clips
embedded as all zeros) and dead units (dimensions zero for every clip), `edge_ssl.fewshot.metrics.collapse`, of:
- each view of every `--teacher` pretraining workdir (`visual`, and `motion` where the method has one), built from
  each clip exactly as the distiller builds them (`edge_ssl.distill.teacher`), in inference mode;
- every `--student`: a distillation workdir (its `backbone`) or a student SavedModel.

Example (the figures in README.md, "The demo and its results"; about a minute per model on 2 cores):
  ./run.sh python benchmarks/heldout_knn.py --data_dir=/tmp/demo_d/tensorflow_datasets \\
      --teacher=/tmp/demo_cl/teacher/workdir --student=/tmp/demo_cl/student/workdir
"""

import functools
import os
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "TFDS data directory holding the synthetic world.")
flags.DEFINE_enum("size", "small", ["tiny", "small", "base"], "World size.")
flags.DEFINE_list("teacher", [], "Pretraining workdirs whose views to measure.")
flags.DEFINE_list("student", [], "Distillation workdirs or student SavedModels to measure.")
flags.DEFINE_integer("batch_size", 20, "Clips per forward pass.")
flags.DEFINE_integer(
    "episodes", 100, "Seeded 5-way episodes (15 queries per class) per shot count."
)
flags.mark_flag_as_required("data_dir")


def _heldout():
    from edge_ssl.data.datasets import synthetic_world  # pylint: disable=g-import-not-at-top

    data = synthetic_world.load_arrays(
        FLAGS.size, "heldout", FLAGS.data_dir, ("rgb", "label", "performance_id")
    )
    return data["rgb"], data["label"].astype(int), data["performance_id"].astype(int)


def _batched(fn, inputs: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [
            np.asarray(fn(inputs[i : i + FLAGS.batch_size]))
            for i in range(0, len(inputs), FLAGS.batch_size)
        ]
    )


def _line(name: str, features: np.ndarray, labels, groups, seconds: float) -> str:
    from edge_ssl.fewshot import metrics, runner  # pylint: disable=g-import-not-at-top

    knn = " / ".join(f"{metrics.knn_accuracy(features, labels, groups, k):.1%}" for k in (1, 5))
    shots = []
    for s in (1, 5):
        mean, ci = runner.prototype_episodes(features, labels, s, FLAGS.episodes)
        shots.append(f"{mean:.1%} ± {ci:.1%}")
    c = metrics.collapse(features)
    dead = f"{c.dead_rows:.1%} / {c.dead_units:.1%}"
    return f"| {name} | {knn} | {' | '.join(shots)} | {c.spread:.3f} | {dead} | {seconds:.0f} |"


def _teacher_lines(workdir: str, clips, labels, groups) -> list[str]:
    from edge_ssl.distill import teacher as teacher_lib  # pylint: disable=g-import-not-at-top

    teacher = teacher_lib.load_teacher(workdir)
    lines = []
    for name in teacher.views:
        start = time.time()
        features = _batched(functools.partial(teacher.embed_clips, name), clips)
        lines.append(
            _line(
                f"teacher {teacher.name} {name} ({os.path.basename(os.path.normpath(workdir))}, "
                f"{os.path.basename(teacher.checkpoint)})",
                features,
                labels,
                groups,
                time.time() - start,
            )
        )
    return lines


def _student_saved_model(path: str) -> str:
    """The student SavedModel at `path` (or in the distillation workdir `path`), or a usage error."""
    inside = os.path.join(path, "backbone")
    saved = inside if os.path.isdir(inside) else path
    if not os.path.exists(os.path.join(saved, "saved_model.pb")):
        raise app.UsageError(
            f"--student={path}: neither a distillation workdir nor a student SavedModel"
        )
    return saved


def _student_line(path: str, clips, labels, groups) -> str:
    from edge_ssl.models import student as student_lib  # pylint: disable=g-import-not-at-top

    model = student_lib.load_student(_student_saved_model(path)).model
    if tuple(model.input_shape[1:]) != clips.shape[1:]:
        raise app.UsageError(
            f"--student={path} takes clips of {tuple(model.input_shape[1:])}, the {FLAGS.size} world's are "
            f"{clips.shape[1:]}: pass the world size it was distilled on (--size)"
        )
    start = time.time()
    features = _batched(lambda x: model(x, training=False), clips)
    return _line(f"student ({path})", features, labels, groups, time.time() - start)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.teacher and not FLAGS.student:
        raise app.UsageError("nothing to measure: pass --teacher and/or --student")
    from edge_ssl.distill import teacher as teacher_lib  # pylint: disable=g-import-not-at-top

    for workdir in FLAGS.teacher:  # every path checked before the clips are loaded
        try:
            teacher_lib.read_run(workdir)
        except teacher_lib.TeacherError as e:
            raise app.UsageError(f"--teacher: {e}") from e
    for path in FLAGS.student:
        _student_saved_model(path)
    start = time.time()
    clips, labels, groups = _heldout()
    print(
        f"synthetic_world/{FLAGS.size} held-out: {len(clips)} clips of {clips.shape[1:]}, "
        f"{len(set(labels))} actions, {len(set(groups))} performances ({time.time() - start:.0f} s to load)"
    )
    print(
        "| model | held-out k-NN, k = 1 / 5 | 5-way 1-shot | 5-way 5-shot | spread | dead rows / units | seconds |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for workdir in FLAGS.teacher:
        for line in _teacher_lines(workdir, clips, labels, groups):
            print(line, flush=True)
    for path in FLAGS.student:
        print(_student_line(path, clips, labels, groups), flush=True)


if __name__ == "__main__":
    app.run(main)
