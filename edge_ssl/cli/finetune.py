"""The few-shot runner: fine-tune an action classifier on a handful of labeled clips, on the device.

Example (an artifact directory from `python -m export`, class folders of clips):
  python -m edge_ssl.cli.finetune --model=out/artifacts --train_dir=my_actions/train --eval_dir=my_actions/test \\
      --output_dir=out/classifier --head=linear --shots=5 --engine=litert --num_threads=2

Episodic evaluation on one folder (mean accuracy and its 95% CI over seeded N-way K-shot episodes):
  python -m edge_ssl.cli.finetune --model=out/artifacts --train_dir=my_actions/all --output_dir=out/episodes \\
      --episodes=100 --ways=5 --shots=5 --queries=15

Writes `classifier.tflite`, `labels.txt`, `metrics.json`, `confusion.png` and `report.md` into `--output_dir`, which
must not exist (or pass --overwrite). With `--engine=litert` it runs where TensorFlow is not installed: LiteRT embeds
the clips and trains the head. Exit status 2 for a bad flag or input, with the reason.
"""

import os
import sys

from absl import app, flags

from edge_ssl.fewshot import engines, heads, runner

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Artifact directory written by `python -m export`.")
flags.DEFINE_string("train_dir", None, "Labeled folder ROOT/<class>/<clip> the head is trained on.")
flags.DEFINE_string(
    "eval_dir", None, "Labeled folder to evaluate on (its classes must be in --train_dir)."
)
flags.DEFINE_string(
    "output_dir", None, "Folder for the classifier and its report (must not exist)."
)
flags.DEFINE_bool("overwrite", False, "Replace --output_dir when it exists.")
flags.DEFINE_enum(
    "modality", None, list(runner.MODALITIES), "video or pose; default: the model card's."
)
flags.DEFINE_enum("engine", "auto", list(engines.ENGINES), "Runtime that embeds the clips.")
flags.DEFINE_enum(
    "precision",
    "auto",
    list(engines.PRECISIONS),
    "Which exported model to run; auto: on LiteRT the fastest form on this machine (timed once, cached), on "
    "TensorRT int8 then fp16.",
)
flags.DEFINE_enum(
    "head",
    "linear",
    list(heads.HEADS),
    "prototype (class means), linear (softmax regression trained in LiteRT), finetune (last block too; tf engine).",
)
flags.DEFINE_integer(
    "shots", None, "Clips per class used from --train_dir (all when unset); K in episodes."
)
flags.DEFINE_integer("epochs", 100, "Passes over the training clips (linear and finetune heads).")
flags.DEFINE_float("learning_rate", 0.01, "Adam step size of the head.")
flags.DEFINE_float("weight_decay", 1e-4, "L2 penalty of the head's weights.")
flags.DEFINE_integer("batch_size", 0, "Clips per head training step; 0: all of them.")
flags.DEFINE_integer("seed", 0, "Seed of shot selection, episodes and head training.")
flags.DEFINE_integer("num_threads", None, "CPU threads of the engine (its default when unset).")
flags.DEFINE_integer(
    "clips_per_video", 1, "Windows per video whose embeddings are averaged (test-time averaging)."
)
flags.DEFINE_integer("stride", 1, "Frame stride inside a window.")
flags.DEFINE_integer(
    "episodes", 0, "Episodic evaluation on --train_dir with this many episodes (0: off)."
)
flags.DEFINE_integer("ways", 5, "Classes per episode.")
flags.DEFINE_integer("queries", 15, "Query clips per class and episode.")
flags.DEFINE_string(
    "cache_dir",
    None,
    "Embedding cache, keyed by clip content and model; default: ~/.cache/edge_ssl/embeddings.",
)
flags.DEFINE_bool(
    "cross_view",
    False,
    "Pose: CV-MIM's single-shot cross-view protocol on --train_dir (views from file names or views.csv).",
)
flags.DEFINE_integer(
    "sequence_length",
    32,
    "Pose: frames per sequence for the temporal classifier (--head=finetune).",
)
flags.DEFINE_bool("no_cache", False, "Embed every clip again, ignoring and not writing the cache.")


def _default_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "edge_ssl", "embeddings")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    config = runner.RunConfig(
        model=FLAGS.model,
        train_dir=FLAGS.train_dir,
        output_dir=FLAGS.output_dir,
        eval_dir=FLAGS.eval_dir,
        modality=FLAGS.modality,
        engine=FLAGS.engine,
        precision=FLAGS.precision,
        head=FLAGS.head,
        shots=FLAGS.shots,
        epochs=FLAGS.epochs,
        learning_rate=FLAGS.learning_rate,
        weight_decay=FLAGS.weight_decay,
        batch_size=FLAGS.batch_size,
        seed=FLAGS.seed,
        num_threads=FLAGS.num_threads,
        clips_per_video=FLAGS.clips_per_video,
        stride=FLAGS.stride,
        episodes=FLAGS.episodes,
        ways=FLAGS.ways,
        queries=FLAGS.queries,
        cache_dir=None if FLAGS.no_cache else (FLAGS.cache_dir or _default_cache()),
        overwrite=FLAGS.overwrite,
        cross_view=FLAGS.cross_view,
        sequence_length=FLAGS.sequence_length,
    )
    try:
        result = runner.run(config)
    except runner.RunnerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if result.precision_choice:
        print(f"precision {result.precision_choice}")
    print(
        f"{result.summary()}; {result.num_skipped} inputs skipped; wrote {result.output_dir} "
        f"(engine {result.engine}, {result.engine_file})"
    )
    return 0


if __name__ == "__main__":
    flags.mark_flags_as_required(["model", "train_dir", "output_dir"])
    app.run(main)
