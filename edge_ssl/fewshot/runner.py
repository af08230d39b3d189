"""The few-shot runner: a labeled folder and an artifact directory in, a classifier and its evaluation out.

`run(RunConfig(...))` is what `python -m edge_ssl.cli.finetune` calls. In order:
1. checks everything a user can get wrong before any heavy work: the output folder, the model card, the modality,
   the engine and head, the folders, the classes (one class only, a class only in `eval_dir`), the shots;
2. embeds the clips on the chosen engine through the content-keyed cache, with a progress line;
3. fits the head (`prototype`, `linear` in LiteRT, or `finetune` in TensorFlow) and evaluates it: on `eval_dir`,
   on the clips `--shots` left over, or in `episodes` mode on N-way K-shot episodes of one folder;
4. measures how much moves in the training windows (video: `edge_ssl.data.motion.movement_statistics`), which the
   classifier carries so the recognizer can tell a still scene from the movements it was taught (its motion gate);
5. writes into `<output_dir>.partial`, renamed to `output_dir` only when complete: `classifier.tflite` (the
   exported embedding model with the head appended, int8 when the source is), `labels.txt`, `metrics.json`,
   `confusion.png` and `report.md`.

Imports no TensorFlow unless the `tf` engine or the `finetune` head is used.
"""

import dataclasses
import os
import shutil
import time

import numpy as np

from edge_ssl import files
from edge_ssl.data import episodes as episodes_lib
from edge_ssl.data import motion
from edge_ssl.data.folder_index import ClipUnreadable
from edge_ssl.fewshot import engines, heads, labeled, metrics, runner_report
from export.runtime import head_trainer, layout, machine

MODALITIES = ("video", "pose")
# The training clips whose windows are measured for the classifier's `movement` (a seeded sample beyond this).
MOVEMENT_CLIPS = 200


class RunnerError(ValueError):
    """A setting or input the run cannot use; raised before heavy work where possible. The message says what to do."""


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a run gives back: the figures a caller acts on, and everything `metrics.json` holds.

    Attributes:
      output_dir: the folder written (classifier.tflite, labels.txt, metrics.json, confusion.png, report.md).
      classifier: the path of its `classifier.tflite`.
      classes: class names, in the classifier's order.
      mode: what the accuracy was measured on: "eval_dir", "held_out" (clips `--shots` left over), "train_only"
        (nothing: `accuracy` is None) or "episodes" (`accuracy` is the mean over them, `ci95` its interval).
      accuracy: the fraction right, or None when nothing was evaluated.
      ci95: the half-width of the episodes' 95% confidence interval (episodes only).
      num_train: clips the head was fitted on.
      num_evaluated: clips evaluated (0 in episodes mode).
      num_skipped: inputs that could not be read, counted and listed in `metrics["skipped"]`.
      engine: the engine that embedded the clips (litert, onnxruntime, tensorrt, tf).
      engine_file: the file it ran.
      precision: the form it ran (fp32, fp16, int8).
      precision_choice: why that form (`--precision=auto`), or None.
      cross_view: pose with `cross_view`: the single-shot cross-view protocol's mean accuracy, else None.
      metrics: everything `metrics.json` holds (per-class figures, confusion matrix, timings, the training clips).
    """

    output_dir: str
    classifier: str
    classes: list[str]
    mode: str
    accuracy: float | None
    ci95: float | None
    num_train: int
    num_evaluated: int
    num_skipped: int
    engine: str
    engine_file: str
    precision: str
    precision_choice: str | None
    cross_view: float | None
    metrics: dict

    def summary(self) -> str:
        """One line for the terminal: the accuracy and how it was measured."""
        if self.mode == "episodes":
            m = self.metrics
            text = (
                f"{m['ways']}-way {m['shots']}-shot over {m['episodes']} episodes: "
                f"{self.accuracy:.1%} ± {self.ci95:.1%} (95% CI)"
            )
        elif self.accuracy is None:
            text = "not evaluated (no --eval_dir and no clips left over by --shots)"
        else:
            text = f"accuracy {self.accuracy:.1%} on {self.num_evaluated} clips"
        if self.cross_view is not None:
            text += f"; single-shot cross-view mean accuracy {self.cross_view:.1%}"
        return text

    @classmethod
    def from_metrics(cls, output_dir: str, metrics: dict) -> "RunResult":
        """The result of a run from the `metrics.json` it wrote."""
        return cls(
            output_dir=output_dir,
            classifier=os.path.join(output_dir, layout.CLASSIFIER),
            classes=list(metrics["classes"]),
            mode=metrics["mode"],
            accuracy=metrics.get("accuracy"),  # in episode mode, their mean
            ci95=metrics.get("ci95"),  # episode mode only
            num_train=int(metrics["num_train"]),
            num_evaluated=int(metrics.get("num_evaluated", 0)),
            num_skipped=int(metrics["num_skipped"]),
            engine=metrics["engine"],
            engine_file=metrics["engine_file"],
            precision=metrics["precision"],
            precision_choice=metrics.get("precision_choice"),
            cross_view=(metrics.get("cross_view") or {}).get("mean"),
            metrics=metrics,
        )


@dataclasses.dataclass
class RunConfig:
    """The runner's settings (the CLI's flags)."""

    model: str
    train_dir: str
    output_dir: str
    eval_dir: str | None = None
    modality: str | None = None  # None: the model card's
    engine: str = "auto"
    precision: str = "auto"
    head: str = "linear"
    shots: int | None = None
    epochs: int = 100
    learning_rate: float = 0.01
    weight_decay: float = 1e-4
    batch_size: int = 0  # 0: the whole support set per step
    seed: int = 0
    num_threads: int | None = None
    clips_per_video: int = 1
    stride: int = 1
    episodes: int = 0  # > 0: episodic evaluation on train_dir
    ways: int = 5
    queries: int = 15
    cache_dir: str | None = None  # None: no embedding cache
    overwrite: bool = False
    cross_view: bool = False  # pose: CV-MIM's single-shot cross-view protocol on train_dir
    sequence_length: int = 32  # pose: frames the temporal classifier sees


def _check_settings(config: RunConfig) -> dict:
    """Every check that needs no data read; returns the model card."""
    if os.path.exists(config.output_dir) and not config.overwrite:
        raise RunnerError(
            f"--output_dir={config.output_dir} exists; choose a new folder or pass --overwrite to replace it"
        )
    try:
        card = layout.ArtifactDir(config.model).read_card()
    except layout.ArtifactError as e:
        raise RunnerError(str(e)) from e
    model_modality = card.get("modality", "video")
    modality = config.modality or model_modality
    if modality not in MODALITIES:
        raise RunnerError(f"--modality must be one of {MODALITIES}, got {modality!r}")
    if modality != model_modality:
        raise RunnerError(
            f"--modality={modality} does not match the model: {config.model} embeds {model_modality} "
            f"(its model card says so)"
        )
    config.modality = modality
    if config.head not in heads.HEADS:
        raise RunnerError(f"--head must be one of {heads.HEADS}, got {config.head!r}")
    if config.head == "finetune" and modality == "video":
        if config.engine not in ("auto", "tf"):
            raise RunnerError(
                f"--head=finetune trains the model's last block in TensorFlow: use --engine=tf (or auto), not "
                f"--engine={config.engine}"
            )
        config.engine = "tf"
    if (config.head == "finetune" or config.cross_view) and not engines.installed("tf"):
        raise RunnerError(
            "--head=finetune and --cross_view train in TensorFlow, which is not installed here; use "
            "--head=prototype or --head=linear (they train in LiteRT)"
        )
    if config.cross_view and modality != "pose":
        raise RunnerError(
            "--cross_view is CV-MIM's protocol for pose folders; the model embeds video"
        )
    for name, value, low in (
        ("epochs", config.epochs, 1),
        ("clips_per_video", config.clips_per_video, 1),
        ("stride", config.stride, 1),
        ("batch_size", config.batch_size, 0),
        ("episodes", config.episodes, 0),
        ("sequence_length", config.sequence_length, 1),
    ):
        if value < low:
            raise RunnerError(f"--{name} must be >= {low}, got {value}")
    if config.num_threads is not None and config.num_threads < 1:
        raise RunnerError(
            f"--num_threads must be >= 1 (or unset: the engine's default), got {config.num_threads}"
        )
    if config.learning_rate <= 0 or config.weight_decay < 0:
        raise RunnerError(
            f"--learning_rate must be > 0 and --weight_decay >= 0, got {config.learning_rate}, "
            f"{config.weight_decay}"
        )
    if config.episodes:
        if config.eval_dir:
            raise RunnerError(
                "episodic evaluation draws support and queries from --train_dir; drop --eval_dir"
            )
        if config.shots is None:
            raise RunnerError("--episodes needs --shots (support clips per class in each episode)")
        if config.head == "finetune":
            raise RunnerError(
                "--episodes works with --head=prototype or linear (finetune trains per run)"
            )
    try:
        engines.choose(config.model, config.engine, config.precision)
    except engines.EngineError as e:
        raise RunnerError(str(e)) from e
    return card


def _check_classes(train: "labeled.FolderIndex", evaluation, config: RunConfig) -> None:
    counts = train.clips_per_class()
    usable = [name for name, n in counts.items() if n > 0]
    if len(usable) < 2:
        raise RunnerError(
            f"{config.train_dir} has {len(usable)} class with readable clips ({', '.join(usable) or 'none'}); "
            "a classifier needs at least 2"
        )
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        raise RunnerError(
            f"class(es) {', '.join(repr(e) for e in empty)} in {config.train_dir} have no readable clip "
            f"({len(train.skipped)} entries skipped; see the data doctor)"
        )
    if evaluation is not None:
        extra = sorted(set(evaluation.classes) - set(train.classes))
        if extra:
            raise RunnerError(
                f"class(es) {', '.join(repr(e) for e in extra)} are in --eval_dir but not in --train_dir: the "
                "classifier cannot predict a class it never saw"
            )
    if config.episodes:
        try:
            episodes_lib.check_episode_settings(
                [c.label for c in train.clips],
                config.ways,
                config.shots,
                config.queries,
                train.classes,
            )
        except ValueError as e:
            raise RunnerError(f"{config.train_dir}: {e}") from e


def _embedding_head(config, trainer, source_tflite: str | None = None) -> heads.LinearMap:
    """The `prototype` or `linear` head of the run's settings."""
    return heads.LinearMap(config.head, source_tflite, trainer, config)


def evaluate_episodes(config: RunConfig, data: labeled.Embedded, trainer) -> dict:
    """Mean accuracy and its 95% CI over seeded N-way K-shot episodes, plus per-class figures pooled over them."""
    drawn = episodes_lib.sample_episodes(
        data.labels,
        config.episodes,
        config.ways,
        config.shots,
        config.queries,
        config.seed,
        data.classes,
    )
    accuracies, fit_seconds = [], []
    num_classes = len(data.classes)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for episode in drawn:
        head = _embedding_head(config, trainer)
        head.fit_arrays(data.embeddings[episode.support], episode.support_labels, config.ways)
        fit_seconds.append(head.seconds)
        predicted = head.predict_arrays(data.embeddings[episode.query])
        accuracies.append(float(np.mean(predicted == episode.query_labels)))
        np.add.at(confusion, (episode.classes[episode.query_labels], episode.classes[predicted]), 1)
    mean, ci95 = metrics.mean_with_ci95(accuracies)
    return {
        "mode": "episodes",
        "episodes": config.episodes,
        "ways": config.ways,
        "shots": config.shots,
        "queries": config.queries,
        "mean_accuracy": mean,
        "ci95": ci95,
        "accuracy": mean,
        "episode_accuracies": accuracies,
        "fit_seconds_mean": float(np.mean(fit_seconds)),
        **runner_report.per_class(confusion, data.classes),
    }


def prototype_episodes(
    embeddings: np.ndarray,
    labels: np.ndarray,
    shots: int,
    episodes: int = 100,
    ways: int = 5,
    queries: int = 15,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean accuracy and 95% CI of a nearest-prototype head over seeded N-way K-shot episodes of embedded clips:
    the demo's protocol, for embeddings that come from anywhere (a teacher's view, a student in Keras).

    Args:
      embeddings: float [N, D].
      labels: int [N], any class ids.
    """
    classes = sorted(set(np.asarray(labels).tolist()))
    data = labeled.Embedded(
        classes=[str(c) for c in classes],
        paths=[""] * len(labels),
        labels=np.array([classes.index(l) for l in np.asarray(labels).tolist()]),
        embeddings=np.asarray(embeddings, np.float32),
        frame_embeddings=None,
        views=[None] * len(labels),
        skipped=[],
    )
    config = RunConfig(
        model="",
        train_dir="",
        output_dir="",
        head="prototype",
        episodes=episodes,
        ways=ways,
        shots=shots,
        queries=queries,
        seed=seed,
    )
    result = evaluate_episodes(config, data, None)
    return result["mean_accuracy"], result["ci95"]


def _evaluate(
    predicted: np.ndarray | None, data: labeled.Embedded | None, classes: list[str]
) -> dict:
    """Accuracy, per-class accuracy and confusion of `predicted` (indices into `classes`) on `data`."""
    if data is None or len(data.labels) == 0:
        return {
            "accuracy": None,
            "evaluated_on": "nothing (no --eval_dir and no clips left over by --shots)",
        }
    labels = np.array([classes.index(data.classes[l]) for l in data.labels])
    confusion = np.zeros((len(classes), len(classes)), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "num_evaluated": int(len(labels)),
        **runner_report.per_class(confusion, classes),
    }


def run(config: RunConfig) -> RunResult:
    """Runs the few-shot fine-tuning and evaluation; returns the result (`metrics.json`'s content in `metrics`).

    Raises:
      RunnerError: a bad setting or input, with what to do about it; nothing is written then.
    """
    started = time.perf_counter()
    card = _check_settings(config)
    try:
        train_index = labeled.index_folder(config.train_dir, config.modality)
        eval_index = (
            labeled.index_folder(config.eval_dir, config.modality) if config.eval_dir else None
        )
    except labeled.LabeledDataError as e:
        raise RunnerError(str(e)) from e
    _check_classes(train_index, eval_index, config)
    try:
        support, left_over = (
            (list(train_index.clips), [])
            if config.episodes
            else labeled.select_shots(train_index, config.shots, config.seed)
        )
    except labeled.LabeledDataError as e:
        raise RunnerError(str(e)) from e
    classes = train_index.classes
    trainer = None
    if config.head == "linear":
        try:
            trainer = heads.head_trainer(
                config.model, int(card["embedding_dim"]), len(classes), config.cache_dir
            )
        except head_trainer.HeadError as e:
            raise RunnerError(str(e)) from e
    try:
        engine = engines.open_engine(
            config.model, card, config.engine, config.precision, config.num_threads
        )
    except engines.EngineError as e:
        raise RunnerError(str(e)) from e

    def embed(index, clips, what):
        return labeled.embed_clips(
            index.root,
            index.classes,
            clips,
            config.modality,
            engine.embed,
            engine.digest,
            card,
            config.cache_dir,
            config.clips_per_video,
            config.stride,
            what,
        )

    timings = {}
    start = time.perf_counter()
    train = embed(train_index, support, "embedding training clips")
    evaluation = None
    if eval_index is not None:
        evaluation = embed(eval_index, eval_index.clips, "embedding evaluation clips")
    elif left_over:
        evaluation = embed(train_index, left_over, "embedding held-out clips")
    timings["embed_seconds"] = time.perf_counter() - start
    skipped = train.skipped + (evaluation.skipped if evaluation else [])
    skipped += list(train_index.skipped) + (list(eval_index.skipped) if eval_index else [])

    results: dict = {
        "model": os.path.abspath(config.model),
        "engine": engine.name,
        "engine_file": os.path.basename(engine.path),
        "precision": engine.precision,
        "precision_choice": engine.choice,
        "modality": config.modality,
        "head": config.head,
        "classes": classes,
        "num_train": int(len(train.labels)),
        # Which clips the head was fitted on, so a later evaluation (the demo's live video) can leave them out.
        "train_clips": [os.path.relpath(c.path, train_index.root) for c in support],
        "num_skipped": len(skipped),
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
        "cached_embeddings": train.cached + (evaluation.cached if evaluation else 0),
        "settings": {
            k: v for k, v in dataclasses.asdict(config).items() if k not in ("model", "output_dir")
        },
    }
    partial = config.output_dir.rstrip("/") + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    out = layout.ClassifierDir(partial)
    try:
        if config.episodes:
            results.update(evaluate_episodes(config, train, trainer))
            # The delivered classifier is still fitted on every clip of the folder.
        head = _make_head(config, card, engine, trainer, partial)
        head.fit(train, classes)
        timings["fit_seconds"] = head.seconds
        if evaluation is not None:
            evaluation = head.prepare(evaluation)
        predict = head.predict
        if not config.episodes:
            results.update(
                _evaluate(predict(evaluation) if evaluation else None, evaluation, classes)
            )
            results["mode"] = (
                "eval_dir" if eval_index is not None else "held_out" if left_over else "train_only"
            )
        results["train_accuracy"] = float(np.mean(predict(train) == train.labels))
        results["loss_history"] = head.history
        if config.cross_view:
            from edge_ssl.fewshot import sequence_head  # pylint: disable=g-import-not-at-top

            try:
                results["cross_view"] = sequence_head.cross_view_protocol(
                    config, train, config.sequence_length
                )
            except ValueError as e:
                raise RunnerError(f"{config.train_dir}: {e}") from e
        frame_rate, frame_rate_source = _frame_rate(support, card, config.stride)
        movement = _movement(train.clips, card, config)
        if movement is not None:
            results["movement"] = movement
        info = {
            "modality": config.modality,
            "input": card["input"],
            "preprocessing": card.get("preprocessing"),
            "frame_rate": frame_rate,
            "frame_rate_source": frame_rate_source,
            "movement": movement,
            "precision": head.precision,
            "backbone": head.backbone,
            "artifact_dir": os.path.abspath(config.model),
        }
        with open(out.classifier, "wb") as f:
            f.write(head.export(classes, info))
        head.cleanup()
        results["classifier"] = {
            "file": layout.CLASSIFIER,
            "source": head.source,
            "outputs": ["embedding", "logits", "probabilities"],
            "input": (
                {"keypoints": [1, config.sequence_length, 17, 2]}
                if head.sequence
                else card["input"]
            ),
            "per_frame": config.modality == "pose" and not head.sequence,
            "frame_rate": frame_rate,
            "frame_rate_source": frame_rate_source,
        }
        out.write_labels(classes)
        timings["total_seconds"] = time.perf_counter() - started
        results["timings"] = timings
        results["peak_memory_mib"] = machine.peak_memory_mib()
        results["outputs"] = runner_report.write(partial, results)
        files.write_json_atomic(out.metrics, results)
    except BaseException:
        # Never leave a folder that could pass for a result.
        shutil.rmtree(partial, ignore_errors=True)
        raise
    files.replace_directory(partial, config.output_dir)
    return RunResult.from_metrics(config.output_dir, results)


def _make_head(config: RunConfig, card: dict, engine, trainer, workdir: str) -> heads.Head:
    """The head `config.head` asks for (`heads.Head`): a linear map on the artifact's embeddings, or the `finetune`
    head of the modality (TensorFlow is imported only for it)."""
    if config.head != "finetune":
        return _embedding_head(config, trainer, _classifier_source(config.model, engine))
    if config.modality == "pose":
        from edge_ssl.fewshot import sequence_head  # pylint: disable=g-import-not-at-top

        return sequence_head.SequenceHead(config, workdir, config.sequence_length)
    from edge_ssl.fewshot import finetuned_student  # pylint: disable=g-import-not-at-top

    return finetuned_student.FinetunedStudent(config, card, workdir)


def _frame_rate(clips, card: dict, stride: int) -> tuple[float | None, str | None]:
    """(frames per second, where it comes from) of the windows the head was fitted on: the training clips' median
    frame rate over the window stride, else the model card's (the rate the student learned at), else unknown.

    The recognizer resamples a camera to this rate, so a window it streams spans the time a training window did.
    """
    rates = [clip.fps for clip in clips if getattr(clip, "fps", 0) > 0]
    if rates:
        return float(np.median(rates)) / stride, "the training clips (median frame rate / --stride)"
    if card.get("frame_rate"):
        return float(card["frame_rate"]), "the model card (the rate the student was trained at)"
    return None, None


def _movement(clips, card: dict, config: RunConfig) -> dict | None:
    """How much moves in the training windows (`motion.movement_statistics`, at most `MOVEMENT_CLIPS` clips, read as
    the embedding read them); None for pose. A clip that cannot be read now was counted when it was embedded.
    """
    if config.modality != "video":
        return None
    clips = list(clips)
    if len(clips) > MOVEMENT_CLIPS:
        chosen = np.random.default_rng(config.seed).choice(
            len(clips), MOVEMENT_CLIPS, replace=False
        )
        clips = [clips[i] for i in sorted(chosen)]
    frames, size = int(card["input"]["clip"][0]), int(card["input"]["clip"][1])
    windows = []
    for clip in clips:
        try:
            windows.extend(
                labeled.read_video_inputs(clip, frames, size, config.clips_per_video, config.stride)
            )
        except (ClipUnreadable, OSError):
            continue
    return motion.movement_statistics(windows) if windows else None


def _classifier_source(artifact_dir: str, engine: engines.Engine) -> str:
    """The `.tflite` the head is appended to: the engine's own when it runs LiteRT, else the one of its precision."""
    if engine.name == "litert":
        return engine.path
    try:
        return engines.tflite_file(artifact_dir, engine.precision)
    except engines.EngineError:
        return engines.tflite_file(artifact_dir, "auto")
