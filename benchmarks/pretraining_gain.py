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
- CV-MIM: single-shot cross-view accuracy (`edge_ssl.fewshot.cross_view`: a temporal classifier trained on one camera's
  clips, tested on the other cameras', averaged over the training camera) of the normalised z_p sequences, beside the
  raw normalised keypoints (the `raw keypoints` row), plus k-NN and episodes of the clip-mean z_p.

Every measured row is appended to `--output` (JSON lines) as soon as it exists, so a long run can be stopped and
continued; the table printed at the end covers every row in that file.

Example (the figures in README.md, "What pretraining adds"; hours on 2 cores, run it in the background):
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
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    from edge_ssl.data.datasets import synthetic_world  # pylint: disable=g-import-not-at-top

    out = {k: [] for k in keys}
    for example in tfds.as_numpy(
        synthetic_world.load(FLAGS.size, "heldout", data_dir=FLAGS.data_dir)
    ):
        for k in keys:
            out[k].append(np.asarray(example[k]))
    return {k: np.stack(v) for k, v in out.items()}


def _episodes(embeddings: np.ndarray, labels: np.ndarray, shots: int) -> tuple[float, float]:
    """Mean accuracy and 95% CI of nearest-prototype 5-way episodes, as the demo's teacher rows."""
    from edge_ssl.fewshot import labeled, runner  # pylint: disable=g-import-not-at-top

    classes = [str(c) for c in sorted(set(labels.tolist()))]
    data = labeled.Embedded(
        classes=classes,
        paths=[""] * len(labels),
        labels=np.array([classes.index(str(l)) for l in labels]),
        embeddings=embeddings.astype(np.float32),
        frame_embeddings=None,
        views=[None] * len(labels),
        skipped=[],
    )
    config = runner.RunConfig(
        model="",
        train_dir="",
        output_dir="",
        head="prototype",
        episodes=FLAGS.episodes,
        ways=WAYS,
        shots=shots,
        queries=FLAGS.queries,
    )
    result = runner.evaluate_episodes(config, data, None)
    return result["mean_accuracy"], result["ci95"]


def _measures(features: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> dict:
    from edge_ssl.fewshot import metrics  # pylint: disable=g-import-not-at-top

    collapse = metrics.collapse(features)
    return {
        "knn1": metrics.knn_accuracy(features, labels, groups, 1),
        "knn5": metrics.knn_accuracy(features, labels, groups, 5),
        **{f"{s}shot": _episodes(features, labels, s) for s in SHOTS},
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
    method = registry.get(name).build(loader.load(name, FLAGS.size, [f"seed={seed}"]))
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
        data["camera_id"],
        num_classes=int(labels.max()) + 1,
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
            (r["method"], r["steps"], r["seed"])
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
    for r in sorted(rows, key=lambda r: (r["method"], r["steps"], r["seed"])):
        run = (
            "raw keypoints"
            if r["steps"] < 0
            else ("initialisation" if r["steps"] == 0 else f"{r['steps']} steps")
        )
        if r["steps"] >= 0:
            run += f", seed {r['seed']}"
        for view, m in r["views"].items():
            cross = f"{100 * m['cross_view']:.1f}" if "cross_view" in m else ""
            print(
                f"| {r['method']} | {view} | {run} | {100 * m['knn1']:.1f} / {100 * m['knn5']:.1f} | "
                f"{_ci(m['1shot'])} | {_ci(m['5shot'])} | {cross} | {m['spread']:.3f} | "
                f"{100 * m['dead_rows']:.0f}% / {100 * m['dead_units']:.0f}% | {r['seconds']:.0f} |"
            )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    FLAGS.output = FLAGS.output or os.path.join(FLAGS.workdir, "rows.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    if FLAGS.table_only:
        _table()
        return
    runs = _parse_runs()
    done = _done()
    video, pose_data = None, None
    for name in FLAGS.methods:
        if name == "cv_mim" and pose_data is None:
            pose_data = _heldout(("pose2d", "label", "performance_id", "camera_id"))
            if ("cv_mim", -1, 0) not in done:
                _append(
                    {
                        "method": name,
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
            if (name, steps, seed) in done:
                continue
            workdir = None
            seconds = 0.0
            if steps:
                workdir = os.path.join(FLAGS.workdir, name, f"{steps}_{seed}")
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
                    "size": FLAGS.size,
                    "steps": steps,
                    "seed": seed,
                    "seconds": seconds,
                    "views": views,
                }
            )
    _table()


if __name__ == "__main__":
    flags.mark_flags_as_required(["data_dir", "workdir"])
    app.run(main)
