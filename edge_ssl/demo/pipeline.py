"""The end-to-end demo: synthetic world -> pretrained teacher -> distilled student -> exported artifacts -> few-shot
results, and a report.

Every stage goes through the same public entry points a user runs (the pretrain, distill, export and finetune CLIs in
subprocesses, so each stage also shows how to run it alone), and each is skipped when its output exists and its
inputs did not change (`edge_ssl.demo.stages`). Stages:
  world      the synthetic world as a TFDS dataset
  heldout    its held-out classes written as a video folder (what a user's labeled clips look like), with their
             2D keypoints beside them (a pose teacher's rows are measured on those)
  teacher    self-supervised pretraining (CV-MIM on the world's 2D keypoints by default, `DEFAULT_METHOD`)
  student    distillation into a streaming RGB-only student
  export     TFLite fp32 and int8, ONNX (and a TensorRT engine where TensorRT is installed)
  random     a randomly initialised student of the same size, exported the same way: the baseline
  fewshot    5-way 1-shot and 5-shot episodes for random init, the teacher, the student fp32 and int8; one runner
             run (5 shots, linear head) whose confusion matrix goes into the report
  latency    per-backend latency of the student artifact (export.benchmark)
  live       the recognizer on one long video of held-out clips back to back, scored against its truth
             (`edge_ssl.demo.live`)
  report     DIR/report/report.md with the results table and the plots
"""

import dataclasses
import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable

from edge_ssl import allocator, environment
from edge_ssl.demo import live as live_lib
from edge_ssl.demo import report, stages
from export.runtime import layout

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_STAGES = 13


# The default teacher is the one whose pretraining an RGB student inherits best: CV-MIM pretrained on the world's 2D
# keypoints, which teaches the student through the keypoints the world gives beside each clip (the student sees RGB
# alone). Muscles' frame encoder, pretrained on its body signals, and MoDist's visual pathway, pretrained against its
# luma differences, teach an RGB student too; Cross and Learn's RGB stream learns, but its student does not keep the
# gain. benchmarks/README.md ("What pretraining adds", "The demo with ...") has the figures.
DEFAULT_METHOD = "cv_mim"

# Every teacher was pretrained without action labels, so its student distils without them too (the distiller's logit
# term would group the teacher's embeddings by the seen actions' labels).
DISTILL_FLAGS = ("--config_override=weight_logits=0",)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How big each stage is. `QUICK` for a first look (and the tests), `DEFAULT` for the results table."""

    world: str
    config: str
    pretrain_steps: int
    student: str
    distill_steps: int
    episodes: int
    queries: int
    latency_runs: int
    export_flags: tuple[str, ...] = ()
    shots: tuple[int, ...] = (1, 5)
    ways: int = 5
    live: live_lib.LiveSettings = live_lib.LiveSettings()


QUICK = Settings(
    world="tiny",
    config="tiny",
    pretrain_steps=30,
    student="tiny",
    distill_steps=30,
    episodes=20,
    queries=5,
    latency_runs=10,
    export_flags=("--num_heldout=60",),
    # The tiny world's clips are 1 s: a 17 s video.
    live=live_lib.LiveSettings(
        segments_per_class=1, clips_per_segment=3, stills=1, still_seconds=2.0
    ),
)
DEFAULT = Settings(
    world="small",
    config="small",
    pretrain_steps=400,
    student="small",
    distill_steps=600,
    episodes=100,
    queries=15,
    latency_runs=30,
    export_flags=("--num_heldout=100",),
)


class DemoError(RuntimeError):
    """A stage failed; the message names it and where its log is."""


def check_output_dir(path: str) -> None:
    """Refuses an output folder the demo would litter: a file, or a non-empty folder that holds no earlier demo run.

    A new or empty folder starts a run; one with a stage folder of an earlier run (finished or interrupted) continues
    it, every stage whose inputs did not change being skipped.

    Raises:
      DemoError: with what the folder is and what to give instead.
    """
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise DemoError(f"--output_dir={path} is a file; give a new folder")
    entries = sorted(os.listdir(path))
    for entry in entries:
        for marker in (stages.MARKER, stages.STARTED):
            if os.path.exists(os.path.join(path, entry, marker)):
                return
    if entries:
        shown = ", ".join(entries[:5]) + (
            f" and {len(entries) - 5} more" if len(entries) > 5 else ""
        )
        raise DemoError(
            f"--output_dir={path} holds {shown} and no earlier demo run; give a new or empty folder, or the "
            "folder of an earlier run to continue it"
        )


def _keep_line(line: str) -> bool:
    """The lines of a stage's subprocess worth showing on the terminal (progress, results, errors)."""
    text = line.strip()
    return bool(text) and (
        text.startswith(
            ("step ", "error", "wrote", "accuracy", "5-way", "  fp32", "  int8", "  onnx")
        )
        or " ways" in text
        or "-way " in text
    )


def run_module(module: str, args: list[str], log_path: str, printer: Callable[[str], None]) -> None:
    """`python -m module args` with the package importable; its output goes to `log_path`, the progress lines to
    `printer`. Raises DemoError naming the log when it fails."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env = allocator.preload_environment(
        env
    )  # tcmalloc where installed: edge_ssl/allocator.py says why
    command = [sys.executable, "-m", module, *args]
    with open(log_path, "a", encoding="utf-8") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT
        )
        tail: list[str] = []
        for line in process.stdout:
            log.write(line)
            tail = (tail + [line.rstrip()])[-15:]
            if _keep_line(line):
                printer("      " + line.rstrip())
        status = process.wait()
    if status != 0:
        raise DemoError(
            f"`python -m {module}` failed with status {status}; its output is in {log_path}. Last lines:\n"
            + "\n".join(tail)
        )


@dataclasses.dataclass
class Demo:
    """One demo run: where it writes, how big it is, which method teaches, and where the world lives."""

    output_dir: str
    settings: Settings
    method: str = DEFAULT_METHOD
    data_dir: str | None = None
    printer: Callable[[str], None] = print

    def __post_init__(self):
        self.data_dir = self.data_dir or self.default_data_dir
        self.pipeline = stages.Pipeline(self.output_dir, NUM_STAGES, self.printer)

    @property
    def default_data_dir(self) -> str:
        """Where the world goes without --data_dir: inside the output directory."""
        return os.path.join(self.output_dir, "tensorflow_datasets")

    @property
    def distill_flags(self) -> tuple[str, ...]:
        """Extra flags of the distillation stage (`DISTILL_FLAGS`, the same for every teacher method)."""
        return DISTILL_FLAGS

    @property
    def command_line(self) -> str:
        """The `python -m edge_ssl.cli.demo` command that runs this demo, for the report."""
        args = [f"--output_dir={self.output_dir}"]
        if self.settings == QUICK:
            args.append("--quick")
        if self.method != DEFAULT_METHOD:
            args.append(f"--method={self.method}")
        if self.data_dir != self.default_data_dir:
            args.append(f"--data_dir={self.data_dir}")
        return " ".join(["python -m edge_ssl.cli.demo", *args])

    def _module(self, folder: str, module: str, *args: str) -> None:
        run_module(module, list(args), os.path.join(folder, "log.txt"), self.printer)

    # The stages, in order. Each returns the JSON-ready result stored in its stage.json.

    def world(self, folder: str) -> dict:
        from edge_ssl.data import synthetic  # pylint: disable=g-import-not-at-top
        from edge_ssl.data.datasets import synthetic_world  # pylint: disable=g-import-not-at-top

        del folder
        builder = synthetic_world.SyntheticWorld(config=self.settings.world, data_dir=self.data_dir)
        builder.download_and_prepare()
        return {
            "name": f"synthetic_world/{self.settings.world}",
            "data_dir": self.data_dir,
            "splits": {name: split.num_examples for name, split in builder.info.splits.items()},
            "seen_classes": list(synthetic.SEEN_ACTIONS),
            "heldout_classes": list(synthetic.HELDOUT_ACTIONS),
        }

    def heldout(self, folder: str) -> dict:
        import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

        from edge_ssl.data import world_folder  # pylint: disable=g-import-not-at-top
        from edge_ssl.data.datasets import synthetic_world  # pylint: disable=g-import-not-at-top

        ds = synthetic_world.load(self.settings.world, "heldout", data_dir=self.data_dir)
        # The clips' 2D keypoints beside them, under the same names: what a pose teacher's rows are measured on.
        counts = world_folder.write_folders(tfds.as_numpy(ds), folder, pose=True)
        return {
            "folder": os.path.join(folder, "video"),
            "pose_folder": os.path.join(folder, "pose"),
            "clips_per_class": counts,
        }

    def teacher(self, folder: str, steps: int | None = None) -> dict:
        """Pretrains the teacher (`steps`, default the settings'; the control teacher takes one step)."""
        steps = self.settings.pretrain_steps if steps is None else steps
        self._module(
            folder,
            "edge_ssl.cli.pretrain",
            f"--method={self.method}",
            f"--config={self.settings.config}",
            "--data=synthetic",
            f"--data_dir={self.data_dir}",
            f"--workdir={os.path.join(folder, 'workdir')}",
            f"--steps={steps}",
            f"--log_every={max(1, steps // 20)}",
        )
        return {"workdir": os.path.join(folder, "workdir")}

    def student(self, folder: str, teacher_workdir: str) -> dict:
        self._module(
            folder,
            "edge_ssl.cli.distill",
            f"--teacher={teacher_workdir}",
            f"--student={self.settings.student}",
            "--data=synthetic",
            f"--data_dir={self.data_dir}",
            f"--workdir={os.path.join(folder, 'workdir')}",
            f"--steps={self.settings.distill_steps}",
            f"--log_every={max(1, self.settings.distill_steps // 20)}",
            *self.distill_flags,
        )
        return {"workdir": os.path.join(folder, "workdir")}

    def export(self, folder: str, student_workdir: str) -> dict:
        formats = ["tflite_fp32", "tflite_int8", "onnx"]
        if environment.package_version("tensorrt") != "not installed":
            formats.append("tensorrt_fp16")
        artifact = os.path.join(folder, "artifact")
        self._module(
            folder,
            "export",
            f"--model={student_workdir}",
            f"--output_dir={artifact}",
            f"--formats={','.join(formats)}",
            f"--data_dir={self.data_dir}",
            *self.settings.export_flags,
        )
        card = layout.ArtifactDir(artifact).read_card()
        return {"artifact": artifact, "formats": formats, "parity": _parity(card)}

    def _export_fp32(self, folder: str, model: str) -> dict:
        """Exports `model` (a workdir or SavedModel) as TFLite fp32 only, for a baseline row of the results."""
        artifact = os.path.join(folder, "artifact")
        self._module(
            folder,
            "export",
            f"--model={model}",
            f"--output_dir={artifact}",
            "--formats=tflite_fp32",
            f"--data_dir={self.data_dir}",
        )
        return {"artifact": artifact}

    def random(self, folder: str) -> dict:
        from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top
        from edge_ssl.models import student as student_lib  # pylint: disable=g-import-not-at-top

        keras.utils.set_random_seed(0)
        saved = os.path.join(folder, "saved_model")
        student_lib.build_student(self.settings.student).save(saved)
        return self._export_fp32(folder, saved)

    def control(self, folder: str, control_student_workdir: str) -> dict:
        return self._export_fp32(folder, control_student_workdir)

    def fewshot(
        self,
        folder: str,
        heldout_result: dict,
        teacher_workdir: str,
        artifact: str,
        random_artifact: str,
        control_artifact: str,
    ) -> dict:
        heldout = heldout_result["folder"]
        rows = {"random init": {}, "control student": {}, "student fp32": {}, "student int8": {}}
        cache = os.path.join(self.output_dir, "embedding_cache")
        # The teacher's visual embedding is its representation; its motion embedding, where it has one, is the other
        # view its student distils, so the report shows both.
        teacher_data = self._teacher_embeddings(heldout_result, teacher_workdir, artifact)
        rows.update({row: {} for row in teacher_data})
        for shots in self.settings.shots:
            episodes = [
                f"--episodes={self.settings.episodes}",
                f"--ways={self.settings.ways}",
                f"--shots={shots}",
                f"--queries={self.settings.queries}",
                "--head=prototype",
                "--engine=litert",
                f"--cache_dir={cache}",
            ]
            for row, model, precision in (
                ("random init", random_artifact, "fp32"),
                ("control student", control_artifact, "fp32"),
                ("student fp32", artifact, "fp32"),
                ("student int8", artifact, "int8"),
            ):
                out = os.path.join(folder, f"{row.replace(' ', '_')}_{shots}shot")
                self._module(
                    folder,
                    "edge_ssl.cli.finetune",
                    f"--model={model}",
                    f"--train_dir={heldout}",
                    f"--output_dir={out}",
                    f"--precision={precision}",
                    *episodes,
                )
                rows[row][f"{shots}-shot"] = _read_episodes(out)
            for row, data in teacher_data.items():
                rows[row][f"{shots}-shot"] = self._teacher_episodes(data, shots)
        runner_out = os.path.join(folder, "runner_5shot_linear")
        self._module(
            folder,
            "edge_ssl.cli.finetune",
            f"--model={artifact}",
            f"--train_dir={heldout}",
            f"--output_dir={runner_out}",
            "--shots=5",
            "--head=linear",
            "--engine=litert",
            "--precision=int8",
            f"--cache_dir={cache}",
        )
        runner = layout.ClassifierDir(runner_out).read_metrics()
        return {"rows": rows, "runner": runner_out, "runner_accuracy": runner["accuracy"]}

    def _teacher_embeddings(self, heldout: dict, teacher_workdir: str, artifact: str) -> dict:
        """Each teacher view's embedding of every held-out clip (in Keras, inference mode), by report row:
        `teacher` for its visual view, `teacher motion` for its motion view where it has one. A pose teacher
        embeds the clips' 2D keypoints (the pose folder beside the videos, clip for clip), a video teacher the
        clips as the student reads them (its view resizes them)."""
        from edge_ssl.distill import teacher as teacher_lib  # pylint: disable=g-import-not-at-top
        from edge_ssl.fewshot import labeled  # pylint: disable=g-import-not-at-top

        card = layout.ArtifactDir(artifact).read_card()
        teacher = teacher_lib.load_teacher(teacher_workdir)
        modality = "pose" if teacher.needs_pose else "video"
        root = heldout["pose_folder"] if teacher.needs_pose else heldout["folder"]
        index = labeled.index_folder(root, modality)
        if teacher.needs_pose:
            _check_same_clips(index, labeled.index_folder(heldout["folder"], "video"))
        out = {}
        for view_name in teacher.views:
            if teacher.needs_pose:
                embed = functools.partial(_embed_pose_clip, teacher, view_name)
            else:
                embed = functools.partial(teacher.embed_clips, view_name)
            out[report.teacher_row(view_name)] = labeled.embed_clips(
                root,
                index.classes,
                index.clips,
                modality,
                embed,
                f"teacher:{view_name}:" + teacher.checkpoint,
                card,
                None,
                what=f"embedding held-out clips with the teacher ({view_name})",
            )
        return out

    def _teacher_episodes(self, data, shots: int) -> dict:
        """The teacher's accuracy in the same seeded episodes as the students'."""
        from edge_ssl.fewshot import runner  # pylint: disable=g-import-not-at-top

        mean, ci95 = runner.prototype_episodes(
            data.embeddings,
            data.labels,
            shots,
            self.settings.episodes,
            self.settings.ways,
            self.settings.queries,
        )
        return {"mean_accuracy": mean, "ci95": ci95}

    def latency(self, folder: str, artifact: str, teacher_workdir: str) -> dict:
        out = os.path.join(folder, "latency.json")
        self._module(
            folder,
            "export.benchmark",
            f"--artifact_dir={artifact}",
            "--backends=litert,onnxruntime,tensorrt",
            "--threads=2",
            f"--runs={self.settings.latency_runs}",
            f"--output_json={out}",
        )
        with open(out, encoding="utf-8") as f:
            rows = json.load(f)
        return {"rows": rows, "complexity": _complexity(artifact, teacher_workdir)}

    def live(self, folder: str, heldout: str, runner: str) -> dict:
        """The recognizer on one long video of held-out clips, scored against its truth (`edge_ssl.demo.live`)."""
        with open(os.path.join(folder, "log.txt"), "a", encoding="utf-8") as log:
            try:
                result = live_lib.run(folder, runner, heldout, self.settings.live, log)
            except live_lib.LiveError as e:
                raise DemoError(f"the live stage failed: {e}; its log is {log.name}") from e
        self.printer("      " + live_lib.headline(result))
        return result

    def run(self) -> dict:
        """Runs (or skips) every stage; returns the report's path and the results table."""
        s = dataclasses.asdict(self.settings)
        p = self.pipeline
        world = p.run(
            "world",
            f"the synthetic world ({self.settings.world})",
            {"world": s["world"]},
            self.world,
        )
        heldout = p.run(
            "heldout",
            "held-out classes as a video folder (and their 2D keypoints)",
            {"world": world.key, "pose": True},
            self.heldout,
        )
        teacher = p.run(
            "teacher",
            f"pretraining {self.method}/{self.settings.config}, {self.settings.pretrain_steps} steps",
            {
                "world": world.key,
                "method": self.method,
                "config": s["config"],
                "steps": s["pretrain_steps"],
            },
            self.teacher,
            resumable=True,
        )
        teacher_workdir = teacher.result["workdir"]
        student = p.run(
            "student",
            f"distilling the {self.settings.student} student, {self.settings.distill_steps} steps",
            {
                "teacher": teacher.key,
                "student": s["student"],
                "steps": s["distill_steps"],
                "flags": self.distill_flags,
            },
            lambda f: self.student(f, teacher_workdir),
            resumable=True,
        )
        export = p.run(
            "export",
            "export: TFLite fp32 and int8, ONNX (TensorRT where installed), with parity",
            {"student": student.key, "flags": s["export_flags"]},
            lambda f: self.export(f, student.result["workdir"]),
        )
        random = p.run(
            "random",
            "baseline: a randomly initialised student, exported",
            {"student": s["student"], "world": world.key},
            self.random,
        )
        # The control: the same student distilled the same way from the teacher after one pretraining step, so the
        # gap between it and the student is what pretraining added, not what distilling any network gives.
        control_teacher = p.run(
            "control_teacher",
            f"control: pretraining {self.method}/{self.settings.config}, 1 step",
            {"world": world.key, "method": self.method, "config": s["config"], "steps": 1},
            lambda f: self.teacher(f, steps=1),
            resumable=True,
        )
        control_student = p.run(
            "control_student",
            f"control: distilling the {self.settings.student} student from it, {self.settings.distill_steps} steps",
            {
                "teacher": control_teacher.key,
                "student": s["student"],
                "steps": s["distill_steps"],
                "flags": self.distill_flags,
            },
            lambda f: self.student(f, control_teacher.result["workdir"]),
            resumable=True,
        )
        control = p.run(
            "control",
            "control: the control student, exported",
            {"student": control_student.key},
            lambda f: self.control(f, control_student.result["workdir"]),
        )
        fewshot = p.run(
            "fewshot",
            f"few-shot on held-out classes: {self.settings.ways}-way {'/'.join(map(str, s['shots']))}-shot, "
            f"{self.settings.episodes} episodes",
            {
                "heldout": heldout.key,
                "teacher": teacher.key,
                "export": export.key,
                "random": random.key,
                "control": control.key,
                "episodes": s["episodes"],
                "queries": s["queries"],
                "shots": s["shots"],
            },
            lambda f: self.fewshot(
                f,
                heldout.result,
                teacher_workdir,
                export.result["artifact"],
                random.result["artifact"],
                control.result["artifact"],
            ),
        )
        latency = p.run(
            "latency",
            "latency per backend (export.benchmark, 2 threads)",
            {"export": export.key, "runs": s["latency_runs"]},
            lambda f: self.latency(f, export.result["artifact"], teacher_workdir),
        )
        live = p.run(
            "live",
            "live recognition: the recognizer on held-out clips back to back, scored",
            {
                "fewshot": fewshot.key,
                "heldout": heldout.key,
                "live": s["live"],
                "version": live_lib.VERSION,
            },
            lambda f: self.live(f, heldout.result["folder"], fewshot.result["runner"]),
        )
        final = p.run(
            "report",
            "report: results table and plots",
            {k: o.key for k, o in p.outcomes.items()} | {"version": report.VERSION},
            lambda f: report.write(f, self, p.outcomes),
        )
        del latency, fewshot, live
        return final.result


def _embed_pose_clip(teacher, view_name: str, keypoints):
    """A pose teacher's embedding [1, D] of one clip's keypoints [T, 17, 2] (`labeled.embed_clips` pools it)."""
    return teacher.embed_clips(view_name, poses=keypoints[None])


def _check_same_clips(index, videos) -> None:
    """The teacher's rows are read in the students' episodes only if they embed the same clips in the same order."""

    def names(i):
        return [(c.label, os.path.splitext(os.path.basename(c.path))[0]) for c in i.clips]

    if index.classes != videos.classes or names(index) != names(videos):
        raise DemoError(
            "the held-out pose folder does not hold the video folder's clips one for one; "
            "delete the heldout stage's folder and run again"
        )


def _parity(card: dict) -> dict:
    return {
        name: entry["parity"]
        for name, entry in card.get("artifacts", {}).items()
        if isinstance(entry, dict) and entry.get("parity")
    }


def _read_episodes(out: str) -> dict:
    metrics = layout.ClassifierDir(out).read_metrics()
    return {"mean_accuracy": metrics["mean_accuracy"], "ci95": metrics["ci95"]}


def _complexity(artifact: str, teacher_workdir: str) -> dict:
    """Parameters and multiply-adds per clip of the student and of the teacher's views (`teacher` is the visual one;
    `teacher motion` the motion one over its inputs for one clip, where the teacher has it)."""
    from edge_ssl.distill import teacher as teacher_lib  # pylint: disable=g-import-not-at-top
    from edge_ssl.models import complexity  # pylint: disable=g-import-not-at-top
    from edge_ssl.models import student as student_lib  # pylint: disable=g-import-not-at-top

    student = student_lib.load_student(layout.ArtifactDir(artifact).saved_model).model
    views = teacher_lib.load_teacher(teacher_workdir).views
    models = [("student", student)] + [
        (report.teacher_row(n), view.model) for n, view in views.items()
    ]
    return {
        name: {
            "params": int(model.count_params()),
            "macs_per_clip": int(complexity.multiply_adds(model)),
        }
        for name, model in models
    }
