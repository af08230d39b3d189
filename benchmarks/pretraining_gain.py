"""What self-supervised pretraining adds: each method's kept representation at initialisation, after one step, after
the demo's pretraining and after four times that, on the synthetic world's held-out actions.

For every method and run (`--runs`, steps:seed pairs; step 0 is the network as built, never trained), the pretraining
goes through `python -m edge_ssl.cli.pretrain` on the world's `pretrain` split (what ships), in
`--workdir/<method>/<steps>_<seed>` (reused when it already reached its steps), then each view is measured on the
held-out split (actions never seen in pretraining; chance 20%):
- video methods (Cross and Learn, MoDist, Muscles), every view the distiller uses (`edge_ssl.distill.teacher`:
  `visual` is the kept representation, `motion` the motion stream or pathway): leave-one-out k-NN by cosine (k = 1,
  5; the other cameras of a clip's performance never vote), 5-way 1- and 5-shot accuracy with a nearest-prototype
  head over `--episodes` seeded episodes (mean and 95% CI, the demo's protocol), spread and dead rows / units
  (`edge_ssl.fewshot.metrics.collapse`);
- CV-MIM, on the held-out split of the pose world it pretrains on (`edge_ssl.train.data.pose_world`: cameras all
  around the person): single-shot cross-view accuracy (`edge_ssl.fewshot.cross_view`: a temporal classifier trained
  on the frontal views' clips, tested on the side and back views') of the normalised z_p sequences, beside the raw
  normalised keypoints (the `raw keypoints` row), plus k-NN and episodes of the clip-mean z_p.

Every measured row is appended to `--output` (JSON lines) as soon as it exists, so a long run can be stopped and
continued; the table printed at the end covers every row in that file.

Example (the figures in benchmarks/README.md, "What pretraining adds"; hours on 2 cores, run it in the background;
`--table_only --output=FILE` prints a table of rows already measured):
  ./run.sh python benchmarks/pretraining_gain.py --data_dir=/tmp/tfds --workdir=/tmp/gain \\
      --output=/tmp/gain/rows.jsonl --methods=cross_and_learn,modist,muscles,cv_mim --runs=0:0,1:0,400:0,400:1,1600:0
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "data_dir", None, "TFDS data directory holding (or receiving) the synthetic world."
)
flags.DEFINE_string("workdir", None, "Root of the pretraining workdirs (kept and reused).")
flags.DEFINE_string(
    "output", None, "JSON lines file the rows are appended to (default: WORKDIR/rows.jsonl)."
)
flags.DEFINE_enum("size", "small", ["tiny", "small"], "World and config size.")
flags.DEFINE_list(
    "methods", ["cross_and_learn", "modist", "muscles", "cv_mim"], "Methods to measure."
)
flags.DEFINE_list(
    "runs", ["0:0", "1:0", "400:0", "400:1", "1600:0"], "steps:seed pairs (0 steps: as built)."
)
flags.DEFINE_integer("episodes", 100, "Seeded 5-way episodes per shot count.")
flags.DEFINE_integer("queries", 15, "Query clips per class in an episode.")
flags.DEFINE_integer("batch_size", 20, "Clips per forward pass.")
flags.DEFINE_multi_string(
    "config_override",
    [],
    "key=value overriding a config field in every run (a variant; needs --tag).",
)
flags.DEFINE_string(
    "tag", "", "Name of the variant --config_override makes; runs and rows are kept apart by it."
)
flags.DEFINE_bool("table_only", False, "Print the table of --output and measure nothing.")

SHOTS = (1, 5)
WAYS = 5


def _parse_runs() -> list[tuple[int, int]]:
    runs = []
    for item in FLAGS.runs:
        try:
            steps, seed = (int(v) for v in item.split(":"))
        except ValueError as e:
            raise app.UsageError(f"--runs: {item!r} is not steps:seed") from e
        if steps < 0:
            raise app.UsageError(f"--runs: {item!r} has negative steps")
        runs.append((steps, seed))
    return runs


def _pretrain(method: str, steps: int, seed: int, workdir: str) -> float:
    """Seconds the pretraining CLI ran (0 when the workdir already reached `steps`)."""
    from edge_ssl.train import loop  # pylint: disable=g-import-not-at-top

    done = os.path.join(workdir, "done.json")
    if os.path.exists(done):
        with open(done, encoding="utf-8") as f:
            return json.load(f)["seconds"]
    command = [
        sys.executable,
        "-m",
        "edge_ssl.cli.pretrain",
        f"--method={method}",
        f"--config={FLAGS.size}",
        f"--data_dir={FLAGS.data_dir}",
        f"--workdir={workdir}",
        f"--steps={steps}",
        f"--config_override=seed={seed}",
        *(f"--config_override={o}" for o in FLAGS.config_override),
        f"--checkpoint_every={steps}",
        f"--log_every={max(steps // 4, 1)}",
    ]
    start = time.time()
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "log.txt"), "w", encoding="utf-8") as log:
        status = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if status.returncode != 0 or not os.path.exists(os.path.join(workdir, loop.RUN_FILE)):
        raise RuntimeError(f"pretraining {method} {steps}:{seed} failed; see {workdir}/log.txt")
    seconds = time.time() - start
    with open(done, "w", encoding="utf-8") as f:
        json.dump({"seconds": seconds}, f)
    return seconds


def _heldout(keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    from edge_ssl.data.datasets import synthetic_world  # pylint: disable=g-import-not-at-top

    return synthetic_world.load_arrays(FLAGS.size, "heldout", FLAGS.data_dir, keys)


def _measures(features: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> dict:
    from edge_ssl.fewshot import metrics, runner  # pylint: disable=g-import-not-at-top

    collapse = metrics.collapse(features)
    return {
        "knn1": metrics.knn_accuracy(features, labels, groups, 1),
        "knn5": metrics.knn_accuracy(features, labels, groups, 5),
        **{
            f"{s}shot": runner.prototype_episodes(
                features, labels, s, FLAGS.episodes, WAYS, FLAGS.queries
            )
            for s in SHOTS
        },
        "spread": collapse.spread,
        "dead_rows": collapse.dead_rows,
        "dead_units": collapse.dead_units,
    }


def _batched(fn, inputs: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [
            np.asarray(fn(inputs[i : i + FLAGS.batch_size]))
            for i in range(0, len(inputs), FLAGS.batch_size)
        ]
    )


def _method(name: str, workdir: str | None, seed: int):
    """The method as pretrained in `workdir`, or (None) as built with `seed`."""
    from edge_ssl.configs import loader  # pylint: disable=g-import-not-at-top
    from edge_ssl.distill import teacher as teacher_lib  # pylint: disable=g-import-not-at-top
    from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top
    from edge_ssl.methods import registry  # pylint: disable=g-import-not-at-top

    if workdir is not None and name != "cv_mim":
        return teacher_lib.load_teacher(workdir).method
    keras.utils.set_random_seed(seed)
    config = loader.load(name, FLAGS.size, [*FLAGS.config_override, f"seed={seed}"])
    method = registry.get(name).build(config)
    if workdir is not None:  # CV-MIM: restore its encoder
        import tensorflow as tf  # pylint: disable=g-import-not-at-top

        latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
        tf.train.Checkpoint(**method.checkpoint_items()).restore(latest).expect_partial()
    return method


def _video_rows(name: str, method, data: dict) -> dict[str, dict]:
    from edge_ssl.distill import teacher as teacher_lib  # pylint: disable=g-import-not-at-top

    teacher = teacher_lib.from_method(method)
    rows = {}
    for view in teacher.views:
        features = _batched(lambda x, v=view: teacher.embed_clips(v, x), data["rgb"])
        rows[view] = _measures(features, data["label"], data["performance_id"])
    return rows


def _pose_heldout() -> dict[str, np.ndarray]:
    """The held-out split of the pose world CV-MIM pretrains on (cameras all around the person), with each clip's
    view: the quadrant of the camera's azimuth relative to the way the hips face (0 front, 1 and 3 the sides, 2 the
    back)."""
    from edge_ssl.data import keypoints, synthetic  # pylint: disable=g-import-not-at-top
    from edge_ssl.train import data  # pylint: disable=g-import-not-at-top

    out = synthetic.stack_examples(
        data.pose_world(FLAGS.size, "heldout").as_numpy_iterator(),
        ("pose2d", "pose3d", "view", "label", "performance_id"),
    )
    across = (
        out["pose3d"][:, 0, keypoints.INDEX["left_hip"]]
        - out["pose3d"][:, 0, keypoints.INDEX["right_hip"]]
    )
    relative = out["view"][:, 0] - np.arctan2(across[:, 2], -across[:, 0])
    out["quadrant"] = np.round(np.angle(np.exp(1j * relative)) / (np.pi / 2)).astype(int) % 4
    return out


def _pose_sequences(method, poses: np.ndarray) -> np.ndarray:
    """[N, T, dim(z_p)] L2-normalised per-frame z_p of pose sequences [N, T, K, 2]."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    from edge_ssl.data import pose  # pylint: disable=g-import-not-at-top

    n, t = poses.shape[:2]
    flat = pose.normalize(tf.constant(poses.reshape((n * t,) + poses.shape[2:]), tf.float32))
    z_p = method.backbone(flat, training=False).numpy()
    return z_p.reshape(n, t, -1)


def _cross_view(sequences: np.ndarray, data: dict) -> float:
    from edge_ssl.fewshot import cross_view  # pylint: disable=g-import-not-at-top

    labels = data["label"]
    result = cross_view.single_shot_cross_view(
        sequences.astype(np.float32),
        labels,
        data["quadrant"],
        num_classes=int(labels.max()) + 1,
        train_views=[0],
        filters=(32, 64),
        kernel=3,
        seed=1,
    )
    return result["mean"]


def _pose_rows(method, data: dict) -> dict[str, dict]:
    sequences = _pose_sequences(method, data["pose2d"])
    row = _measures(sequences.mean(axis=1), data["label"], data["performance_id"])
    row["cross_view"] = _cross_view(sequences, data)
    return {"z_p": row}


def _raw_pose_row(data: dict) -> dict:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    from edge_ssl.data import pose  # pylint: disable=g-import-not-at-top

    poses = data["pose2d"]
    n, t = poses.shape[:2]
    raw = pose.normalize(tf.constant(poses.reshape((n * t,) + poses.shape[2:]), tf.float32)).numpy()
    raw = raw.reshape(n, t, -1)
    row = _measures(raw.mean(axis=1), data["label"], data["performance_id"])
    row["cross_view"] = _cross_view(raw, data)
    return row


def _append(row: dict) -> None:
    with open(FLAGS.output, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def _done() -> set[tuple]:
    if not os.path.exists(FLAGS.output):
        return set()
    with open(FLAGS.output, encoding="utf-8") as f:
        return {
            (r["method"], r.get("tag", ""), r["steps"], r["seed"])
            for r in map(json.loads, f)
            if r.get("size") == FLAGS.size
        }


def _ci(value) -> str:
    mean, ci = value
    return f"{100 * mean:.1f} ± {100 * ci:.1f}"


def _table() -> None:
    with open(FLAGS.output, encoding="utf-8") as f:
        rows = [r for r in map(json.loads, f) if r.get("size") == FLAGS.size]
    print(
        "| method | view | run | k-NN k = 1 / 5 | 5-way 1-shot | 5-way 5-shot | cross-view | spread | dead rows / units |"
        " pretraining s |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in sorted(rows, key=lambda r: (r["method"], r.get("tag", ""), r["steps"], r["seed"])):
        run = (
            "raw keypoints"
            if r["steps"] < 0
            else (
                "initialisation"
                if r["steps"] == 0
                else f"{r['steps']} step{'s' if r['steps'] > 1 else ''}"
            )
        )
        if r["steps"] >= 0:
            run += f", seed {r['seed']}"
        for view, m in r["views"].items():
            cross = f"{100 * m['cross_view']:.1f}" if "cross_view" in m else ""
            print(
                f"| {r['method']}{' ' + r['tag'] if r.get('tag') else ''} | {view} | {run} | {100 * m['knn1']:.1f} / {100 * m['knn5']:.1f} | "
                f"{_ci(m['1shot'])} | {_ci(m['5shot'])} | {cross} | {m['spread']:.3f} | "
                f"{100 * m['dead_rows']:.0f}% / {100 * m['dead_units']:.0f}% | {r['seconds']:.0f} |"
            )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.table_only:
        if not FLAGS.output and not FLAGS.workdir:
            raise app.UsageError("--table_only prints --output (or WORKDIR/rows.jsonl): give one")
        FLAGS.output = FLAGS.output or os.path.join(FLAGS.workdir, "rows.jsonl")
        if not os.path.isfile(FLAGS.output):
            raise app.UsageError(f"no rows at {FLAGS.output!r}")
        _table()
        return
    if not FLAGS.data_dir or not FLAGS.workdir:
        raise app.UsageError("--data_dir and --workdir are required to measure")
    FLAGS.output = FLAGS.output or os.path.join(FLAGS.workdir, "rows.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    if FLAGS.config_override and not FLAGS.tag:
        raise app.UsageError("--config_override makes a variant: name it with --tag")
    runs = _parse_runs()
    done = _done()
    video, pose_data = None, None
    for name in FLAGS.methods:
        if name == "cv_mim" and pose_data is None:
            pose_data = _pose_heldout()
            if ("cv_mim", FLAGS.tag, -1, 0) not in done:
                _append(
                    {
                        "method": name,
                        "tag": FLAGS.tag,
                        "size": FLAGS.size,
                        "steps": -1,
                        "seed": 0,
                        "seconds": 0,
                        "views": {"raw": _raw_pose_row(pose_data)},
                    }
                )
        elif name != "cv_mim" and video is None:
            video = _heldout(("rgb", "label", "performance_id"))
        for steps, seed in runs:
            if (name, FLAGS.tag, steps, seed) in done:
                continue
            workdir = None
            seconds = 0.0
            if steps:
                workdir = os.path.join(
                    FLAGS.workdir, name + (f"_{FLAGS.tag}" if FLAGS.tag else ""), f"{steps}_{seed}"
                )
                seconds = _pretrain(name, steps, seed, workdir)
            method = _method(name, workdir, seed)
            views = (
                _pose_rows(method, pose_data)
                if name == "cv_mim"
                else _video_rows(name, method, video)
            )
            _append(
                {
                    "method": name,
                    "tag": FLAGS.tag,
                    "size": FLAGS.size,
                    "steps": steps,
                    "seed": seed,
                    "seconds": seconds,
                    "views": views,
                }
            )
    _table()


if __name__ == "__main__":
    app.run(main)
