"""The demo's report: `report.md` with the results table, and its plots (training curves, latency against accuracy,
a 2D projection of the student's embeddings coloured by class, the runner's confusion matrix, the live recognition
timeline)."""

import datetime
import glob
import os
import shutil

import numpy as np

from edge_ssl import environment, files
from export.runtime import layout

VERSION = 3  # bumped when the report's content changes, so a finished demo rewrites it


def teacher_row(view_name: str) -> str:
    """The results row of a teacher view: `teacher` for its visual view (its representation), `teacher <view>` else."""
    return "teacher" if view_name == "visual" else f"teacher {view_name}"


def _pyplot():
    import matplotlib  # pylint: disable=g-import-not-at-top

    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=g-import-not-at-top

    return pyplot


def read_scalars(logdir: str) -> dict[str, list[tuple[int, float]]]:
    """Scalar summaries of a TensorBoard folder: tag -> [(step, value)], in step order."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    series: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.HasField("tensor"):
                    number = float(tf.make_ndarray(value.tensor))
                elif value.HasField("simple_value"):
                    number = float(value.simple_value)
                else:
                    continue
                series.setdefault(value.tag, []).append((int(event.step), number))
    return {tag: sorted(points) for tag, points in series.items()}


def _training_curves(path: str, runs: dict[str, str]) -> bool:
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4), squeeze=False)
    drawn = False
    for ax, (title, logdir) in zip(axes[0], runs.items()):
        for tag, points in sorted(read_scalars(logdir).items()):
            if not tag.startswith("loss") or not points:
                continue
            steps, values = zip(*points)
            ax.plot(steps, values, label=tag.split("/", 1)[-1])
            drawn = True
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return drawn


def _latency_accuracy(path: str, points: list[tuple[str, float, float]]) -> None:
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(6, 4))
    for label, latency, accuracy in points:
        ax.scatter([latency], [accuracy * 100])
        ax.annotate(
            label, (latency, accuracy * 100), textcoords="offset points", xytext=(5, 5), fontsize=8
        )
    ax.set_xlabel("latency per clip, p50 (ms)")
    ax.set_ylabel("5-way 5-shot accuracy (%)")
    ax.set_title("student: latency against accuracy after quantization")
    ax.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _projection(path: str, embeddings: np.ndarray, labels: np.ndarray, classes: list[str]) -> None:
    """The first two principal components of the embeddings, one colour per class."""
    plt = _pyplot()
    centred = embeddings - embeddings.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    figure, ax = plt.subplots(figsize=(6, 5))
    for c, name in enumerate(classes):
        ax.scatter(xy[labels == c, 0], xy[labels == c, 1], s=10, label=name)
    ax.set_title("student int8 embeddings of held-out clips (PCA)")
    ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


NO_ACTION_COLOUR = (0.86, 0.86, 0.86, 1.0)


def _runs(frames: list[tuple[float, str | None]]) -> list[tuple[float, float, str | None]]:
    """Consecutive frames of one label as (start, end, label); each frame lasts until the next (the last one as
    long as the median step)."""
    if not frames:
        return []
    times = [t for t, _ in frames]
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    runs = []
    for k, (t, label) in enumerate(frames):
        end = times[k + 1] if k + 1 < len(times) else t + step
        if runs and runs[-1][2] == label and abs(runs[-1][1] - t) < 1e-6:
            runs[-1] = (runs[-1][0], end, label)
        else:
            runs.append((t, end, label))
    return runs


def _timeline(
    path: str,
    truth: list[dict],
    frames: list[tuple[float, str | None]],
    events: list[dict],
    classes: list[str],
) -> None:
    """Three bands over time, coloured by class: the true action, the recognised one per decided frame (at the time
    each decision describes; blank while the model warms up), and the events."""
    plt = _pyplot()
    from matplotlib import patches  # pylint: disable=g-import-not-at-top

    colours = {name: plt.get_cmap("tab10")(k % 10) for k, name in enumerate(classes)}
    colours[None] = NO_ACTION_COLOUR
    bands = [
        ("truth", [(s["start"], s["end"], s["label"]) for s in truth]),
        ("recognised\n(per frame)", _runs(frames)),
        ("events", [(e["start"], e["end"], e["label"]) for e in events]),
    ]
    end = max([s["end"] for s in truth] + [e["end"] for e in events] + [0.0])
    figure, ax = plt.subplots(figsize=(12, 2.8))
    for y, (_, spans) in enumerate(bands):
        for start, stop, label in spans:
            ax.broken_barh(
                [(start, stop - start)],
                (y - 0.38, 0.76),
                facecolors=colours.get(label, NO_ACTION_COLOUR),
                edgecolor="black" if y == 2 else "none",
                linewidth=0.5,
            )
    ax.set_yticks(range(len(bands)), [name for name, _ in bands])
    ax.invert_yaxis()
    ax.set_xlim(0, end)
    ax.set_xlabel("time in the video (s)")
    ax.set_title("live recognition: true action against recognised action")
    handles = [patches.Patch(color=colours[name], label=name) for name in classes]
    handles.append(patches.Patch(color=NO_ACTION_COLOUR, label="no action"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def live_json(live: dict) -> dict:
    """results.json's `live` entry: the live stage's headline figures (fractions; seconds; frames per second)."""
    f = live["figures"]
    return {
        "frame_accuracy": f["frame_accuracy"],
        "action_frame_accuracy": f["action_frame_accuracy"],
        "no_action_frame_accuracy": f["no_action_frame_accuracy"],
        "action_frame_argmax_accuracy": f["action_frame_argmax_accuracy"],
        "event_precision": f["precision"],
        "event_recall": f["recall"],
        "events": f["events"],
        "true_segments": f["true_segments"],
        "median_boundary_error_s": f["median_abs_boundary_error"],
        "fps_end_to_end": f["fps_end_to_end"],
        "model_fps": f["model_fps"],
        "seconds_of_video": live["seconds_of_video"],
    }


RESULTS_JSON = "results.json"
# results.json's model names for the rows of the results table.
RESULT_ROWS = {
    "random_student": "random init",
    "control_student": "control student",
    "teacher": teacher_row("visual"),
    "teacher_motion": teacher_row("motion"),
    "student_fp32": "student fp32",
    "student_int8": "student int8",
}


def results_json(rows: dict, settings, outcomes: dict) -> dict:
    """`{"rows": {model: {"1shot": [mean, ci95], ...}}, "seconds": N, "live": {...}}`, accuracies as fractions
    (`live` from `live_json`, when the live stage ran).

    `seconds` adds up every stage's time as it was measured when it ran (a stage reused from an earlier run counts
    the time it took then), so it is what the whole demo costs from an empty folder.
    """
    out = {}
    for name, row in RESULT_ROWS.items():
        if row not in rows:
            continue  # a teacher without a motion view
        out[name] = {
            f"{shots}shot": [
                rows[row][f"{shots}-shot"]["mean_accuracy"],
                rows[row][f"{shots}-shot"]["ci95"],
            ]
            for shots in settings.shots
            if f"{shots}-shot" in rows[row]
        }
    seconds = sum(o.seconds for name, o in outcomes.items() if name != "report")
    results = {"rows": out, "seconds": round(seconds, 1)}
    if "live" in outcomes:
        results["live"] = live_json(outcomes["live"].result)
    return results


def _fmt(entry: dict | None) -> str:
    if not entry:
        return "-"
    return f"{entry['mean_accuracy']:.1%} ± {entry['ci95']:.1%}"


def _live_timeline(folder: str, live: dict) -> str:
    """Draws the live stage's timeline into `folder`; returns the file's name."""
    import json  # pylint: disable=g-import-not-at-top

    from edge_ssl.recognize import evaluate  # pylint: disable=g-import-not-at-top

    with open(live["truth"], encoding="utf-8") as f:
        truth = json.load(f)
    frames = [(r["centre"], r["label"]) for r in evaluate.read_jsonl(live["frames"]) if r["warm"]]
    name = "live_timeline.png"
    _timeline(
        os.path.join(folder, name),
        truth["segments"],
        frames,
        evaluate.read_jsonl(live["events"]),
        truth["classes"],
    )
    return name


def _live_section(live: dict) -> list[str]:
    """report.md's lines on the live stage."""
    from edge_ssl.demo.live import percent  # pylint: disable=g-import-not-at-top

    f = live["figures"]

    def seconds(key):
        return "-" if f[key] is None else f"{f[key]:.2f} s"

    def of(hits, total):
        return f" ({hits} of {total})" if total else ""

    return [
        "## Live recognition",
        "",
        f"The recognizer (`python -m edge_ssl.cli.recognize`'s `pipeline.run`, default decisions, "
        f"{live['engine']} {live['precision']}) on one {live['seconds_of_video']:.0f} s video of held-out clips "
        f"back to back ({f['true_segments']} action segments, {live['stills']} still stretches; `live/truth.json`), "
        f"{live['model_frames']} model frames. Frames are scored from the first full window on, at the time each "
        "decision describes; an event matches an unmatched true segment of its label at temporal IoU >= 0.5. "
        f"Note: {live['runner_clips']['note']}. Still stretches hold a frame with fresh camera noise on every frame. "
        + _gate_sentence(live),
        "",
        "| figure | value |",
        "| --- | ---: |",
        f"| frame accuracy (no action a class) | {percent(f['frame_accuracy'])} |",
        f"| frame accuracy, action frames | {percent(f['action_frame_accuracy'])} |",
        f"| frame accuracy, still frames (no action) | {percent(f['no_action_frame_accuracy'])} |",
        "| the classifier alone (most probable class, no threshold or smoothing), action frames | "
        f"{percent(f['action_frame_argmax_accuracy'])} |",
        f"| event precision | {percent(f['precision'])}{of(f['matched'], f['events'])} |",
        f"| event recall | {percent(f['recall'])}{of(f['matched'], f['true_segments'])} |",
        f"| median boundary error of matched events: start / end / both | {seconds('median_abs_start_error')} / "
        f"{seconds('median_abs_end_error')} / {seconds('median_abs_boundary_error')} |",
        f"| frames per second, end to end / model only | {f['fps_end_to_end']:.0f} / "
        + ("-" if f["model_fps"] is None else f"{f['model_fps']:.0f}")
        + " |",
        "",
    ]


def _gate_sentence(live: dict) -> str:
    """What the motion gate was."""
    gate = live["motion_gate"]
    return "Motion gate: " + (
        f"{gate:.4f} of the pixels moving ({live['motion_gate_note']})."
        if gate is not None
        else f"{live['motion_gate_note']}."
    )


def _latency_rows(rows: list[dict]) -> dict[str, dict]:
    return {("onnx" if r["backend"] == "onnxruntime" else r["form"]): r for r in rows}


def write(folder: str, demo, outcomes: dict) -> dict:
    """Writes `report.md` and the plots into `folder`; returns the paths and the headline figures."""
    from edge_ssl.fewshot import engines, labeled  # pylint: disable=g-import-not-at-top

    settings = demo.settings
    few = outcomes["fewshot"].result
    latency = outcomes["latency"].result
    by_form = _latency_rows(latency["rows"])
    cx = latency["complexity"]
    plots = {}

    runs = {
        f"pretraining ({demo.method})": os.path.join(
            outcomes["teacher"].result["workdir"], "tensorboard"
        ),
        "distillation": os.path.join(outcomes["student"].result["workdir"], "tensorboard"),
    }
    if _training_curves(os.path.join(folder, "training_curves.png"), runs):
        plots["training_curves"] = "training_curves.png"

    five = f"{settings.shots[-1]}-shot"
    points = []
    for label, form, row in (
        ("LiteRT fp32", "fp32", "student fp32"),
        ("LiteRT int8", "int8", "student int8"),
        ("ONNX Runtime fp32", "onnx", "student fp32"),
    ):
        if form in by_form and few["rows"][row].get(five):
            points.append((label, by_form[form]["p50_ms"], few["rows"][row][five]["mean_accuracy"]))
    if points:
        _latency_accuracy(os.path.join(folder, "latency_vs_accuracy.png"), points)
        plots["latency_vs_accuracy"] = "latency_vs_accuracy.png"

    artifact = outcomes["export"].result["artifact"]
    heldout = outcomes["heldout"].result["folder"]
    card = layout.ArtifactDir(artifact).read_card()
    engine = engines.open_engine(artifact, card, "litert", "int8")
    index = labeled.index_folder(heldout, "video")
    data = labeled.embed_clips(
        heldout,
        index.classes,
        index.clips,
        "video",
        engine.embed,
        engine.digest,
        card,
        os.path.join(demo.output_dir, "embedding_cache"),
        what="embedding held-out clips for the projection",
    )
    _projection(
        os.path.join(folder, "embeddings_pca.png"), data.embeddings, data.labels, index.classes
    )
    plots["embeddings"] = "embeddings_pca.png"
    confusion = layout.ClassifierDir(few["runner"]).confusion_png
    if os.path.exists(confusion):
        shutil.copyfile(confusion, os.path.join(folder, "confusion_matrix.png"))
        plots["confusion_matrix"] = "confusion_matrix.png"
    live = outcomes["live"].result if "live" in outcomes else None
    if live is not None:
        plots["live_timeline"] = _live_timeline(folder, live)

    env = environment.describe()
    one, five_label = f"{settings.shots[0]}-shot", five
    lines = [
        "# edge_ssl demo report",
        "",
        f"- command: `{demo.command_line}`",
        f"- date: {datetime.date.today().isoformat()}; machine: {os.cpu_count()} CPU cores, "
        f"TensorFlow {env.get('tensorflow', '?')}, GPU: {env.get('gpus', 'none') or 'none'}",
        f"- world: synthetic_world/{settings.world}; teacher: {demo.method}/{settings.config}, "
        f"{settings.pretrain_steps} steps; student: {settings.student}, {settings.distill_steps} distillation steps"
        + (f" ({' '.join(demo.distill_flags)})" if demo.distill_flags else ""),
        f"- few-shot protocol: {settings.ways}-way, {settings.queries} queries per class, {settings.episodes} "
        "seeded episodes on the held-out classes (never seen in pretraining or distillation), prototype head on "
        "L2-normalised embeddings; mean accuracy ± 95% CI",
        "",
        "## Results",
        "",
        f"| model | {settings.ways}-way {one} | {settings.ways}-way {five_label} | params | MMACs per clip | "
        "p50 latency per clip, 2 threads |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]

    def lat(form):
        return (
            f"{by_form[form]['p50_ms']:.2f} ms ({'LiteRT' if form != 'onnx' else 'ONNX Runtime'})"
            if form in by_form
            else "-"
        )

    student_cx = f"{cx['student']['params']:,} | {cx['student']['macs_per_clip'] / 1e6:.1f}"
    rows = few["rows"]
    lines += [
        f"| random init student (fp32) | {_fmt(rows['random init'].get(one))} | "
        f"{_fmt(rows['random init'].get(five_label))} | {student_cx} | {lat('fp32')} |",
        f"| control student: distilled from the teacher after 1 pretraining step (fp32) | "
        f"{_fmt(rows['control student'].get(one))} | {_fmt(rows['control student'].get(five_label))} | "
        f"{student_cx} | {lat('fp32')} |",
        *(
            f"| teacher ({demo.method}, {view}, Keras) | {_fmt(rows[row].get(one))} | "
            f"{_fmt(rows[row].get(five_label))} | {cx[row]['params']:,} | "
            f"{cx[row]['macs_per_clip'] / 1e6:.1f} | - |"
            for view in ("visual", "motion")
            if (row := teacher_row(view)) in rows and row in cx
        ),
        f"| student fp32 (TFLite) | {_fmt(rows['student fp32'].get(one))} | "
        f"{_fmt(rows['student fp32'].get(five_label))} | {student_cx} | {lat('fp32')} |",
        f"| student int8 (TFLite) | {_fmt(rows['student int8'].get(one))} | "
        f"{_fmt(rows['student int8'].get(five_label))} | {student_cx} | {lat('int8')} |",
        f"| student fp32 (ONNX) | - | - | {student_cx} | {lat('onnx')} |",
        "",
        f"The runner (`edge_ssl.cli.finetune`, 5 shots per class, linear head trained in LiteRT, int8) scored "
        f"{few['runner_accuracy']:.1%} on the held-out clips its shots left over.",
        "",
        *(_live_section(live) if live is not None else []),
        "## Export parity (student against its Keras model, held-out clips)",
        "",
        f"Export flags: `{' '.join(settings.export_flags) or 'the defaults'}`. Few-shot accuracy: each held-out "
        "clip classified by the nearest class mean of the artifact's own embeddings of the other clips; int8 "
        "fails the export when its drop from the Keras model's is significantly above 3 points.",
        "",
        "| artifact | max abs | mean cosine | top-1 agreement | few-shot accuracy (drop) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, figures in outcomes["export"].result["parity"].items():
        agreement = "-" if figures.get("agreement") is None else f"{figures['agreement']:.1%}"
        accuracy = (
            "-"
            if figures.get("candidate_accuracy") is None
            else f"{figures['candidate_accuracy']:.1%} ({figures['accuracy_drop']:+.1%} ± "
            f"{figures['accuracy_drop_ci95']:.1%})"
        )
        lines.append(
            f"| {name} | {figures['max_abs']:.2e} | {figures['mean_cosine']:.5f} | {agreement} | {accuracy} |"
        )
    lines += ["", "## Stages", "", "| stage | seconds | this run |", "| --- | ---: | --- |"]
    for name, outcome in outcomes.items():
        lines.append(
            f"| {name} | {outcome.seconds:.0f} | {'skipped (done earlier)' if outcome.skipped else 'ran'} |"
        )
    lines += ["", "## Plots", ""]
    titles = {
        "training_curves": "Training curves",
        "latency_vs_accuracy": "Latency against accuracy",
        "embeddings": "Student embeddings of the held-out classes",
        "confusion_matrix": "Runner confusion matrix (5 shots, linear head, int8)",
        "live_timeline": "Live recognition: true against recognised action",
    }
    for key, file in plots.items():
        lines += [f"### {titles[key]}", "", f"![{titles[key]}]({file})", ""]
    with open(os.path.join(folder, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    files.write_json_atomic(
        os.path.join(folder, RESULTS_JSON), results_json(rows, settings, outcomes)
    )
    return {
        "report": os.path.join(folder, "report.md"),
        "plots": plots,
        "table": {row: values for row, values in rows.items()},
    }
