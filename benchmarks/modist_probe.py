"""Does a MoDist tell its clips apart, and by what? Cosines of each InfoNCE term's positives and negatives.

MoDist's terms (L_vv, L_vm, L_mv, and L_mm where configured) score a query against its positive key and the queue's
keys from earlier batches. A loss near ln(K + 1) says that the positive is not found, not why. For `--batches`
batches of the method's own pretraining stream (`edge_ssl.train.data.make_dataset_fn` on the world's `pretrain`
split, as pretraining reads it), this prints per term and BatchNorm mode (`training`: batch statistics, as
pretraining computes queries and keys; `inference`: moving averages):
- the mean cosine of each query with its positive key, with the other keys of the same batch, and with the queue;
- InfoNCE and top-1 over the batch alone (the positive among the batch's keys; chance ln(B) and 1/B).
A positive no closer than the batch's other keys while both sit above the queue says that the term separates the
current batch from the queue (the keys of other batches, computed earlier), not the clip from other clips.

Example (figures in benchmarks/README.md, "What pretraining adds"; seconds on 2 cores):
  ./run.sh python benchmarks/modist_probe.py --data_dir=/tmp/tfds_time \\
      --workdir=/tmp/gain/modist/400_0,/tmp/gain/modist_adam/400_0 --initialisation
"""

import math

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "TFDS data directory holding the synthetic world.")
flags.DEFINE_list("workdir", [], "MoDist pretraining workdirs (their latest checkpoint is probed).")
flags.DEFINE_bool(
    "initialisation", False, "Also probe the `small` config as built (seed 0), never trained."
)
flags.DEFINE_multi_string(
    "config_override",
    [],
    "KEY=VALUE overrides of the `small` config probed at initialisation (as `edge_ssl.cli.pretrain` takes them).",
)
flags.DEFINE_integer("batches", 6, "Batches of the pretraining stream to average over.")
flags.DEFINE_integer("batch_size", 16, "Clips per batch (the `small` config's global batch).")
flags.mark_flag_as_required("data_dir")

TERMS = {  # name: (query network, its input, key network, its input, queue)
    "visual_visual": ("visual_query", "rgb1", "visual_key", "rgb2", "visual_queue"),
    "visual_motion": ("visual_query", "rgb1", "motion_key", "motion2", "motion_queue"),
    "motion_visual": ("motion_query", "motion1", "visual_key", "rgb2", "visual_queue"),
    "motion_motion": ("motion_query", "motion1", "motion_key", "motion2", "motion_queue"),
}


def _methods():
    # pylint: disable=g-import-not-at-top
    from edge_ssl.configs import loader
    from edge_ssl.distill import teacher as teacher_lib
    from edge_ssl.methods import registry

    # pylint: enable=g-import-not-at-top
    out = []
    if FLAGS.initialisation:
        config = loader.load("modist", "small", ["seed=0", *FLAGS.config_override])
        out.append(("initialisation", registry.get("modist").build(config)))
    for workdir in FLAGS.workdir:
        try:
            method = teacher_lib.load_teacher(workdir).method
        except teacher_lib.TeacherError as e:
            raise app.UsageError(f"--workdir: {e}") from e
        if method.name != "modist":
            raise app.UsageError(f"--workdir: {workdir!r} holds a {method.name!r} run, not modist")
        out.append((workdir, method))
    if not out:
        raise app.UsageError("nothing to probe: give --workdir or --initialisation")
    return out


def _term(query: np.ndarray, key: np.ndarray, queue: np.ndarray, temperature: float) -> dict:
    cosines = query @ key.T
    size = len(query)
    logits = cosines / temperature
    top = logits.max(axis=1, keepdims=True)
    log_softmax = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    return {
        "positive": float(np.mean(np.diag(cosines))),
        "batch": float(np.mean(cosines[~np.eye(size, dtype=bool)])),
        "queue": float(np.mean(query @ queue.T)),
        "nce": float(-np.mean(np.diag(log_softmax))),
        "top1": float(np.mean(np.argmax(cosines, axis=1) == np.arange(size))),
    }


def probe(method, batches) -> dict[tuple[str, str], dict]:
    """Mean figures per (term, BatchNorm mode) over `batches`."""
    terms = [t for t in TERMS if t != "motion_motion" or method.config.motion_motion]
    sums = {}
    for mode in ("training", "inference"):
        for batch in batches:
            # Each network once per batch and mode: it runs through BatchNorm with this batch's statistics in
            # training mode (which also moves the moving averages of the copy probed; nothing is saved).
            outputs = {}
            for name in terms:
                query, query_input, key, key_input, queue = TERMS[name]
                for net, inputs in ((query, query_input), (key, key_input)):
                    if (net, inputs) not in outputs:
                        model = getattr(method, net)
                        outputs[net, inputs] = model(batch[inputs], training=mode == "training")
                row = _term(
                    np.asarray(outputs[query, query_input]),
                    np.asarray(outputs[key, key_input]),
                    getattr(method, queue).keys.numpy(),
                    method.config.temperature,
                )
                acc = sums.setdefault((name, mode), {k: 0.0 for k in row})
                for k, v in row.items():
                    acc[k] += v / len(batches)
    return sums


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # pylint: disable=g-import-not-at-top
    import tensorflow as tf

    from edge_ssl.data.datasets import synthetic_world
    from edge_ssl.train import data as data_lib

    # pylint: enable=g-import-not-at-top
    methods = _methods()
    source = synthetic_world.load("small", "pretrain", data_dir=FLAGS.data_dir)
    size = FLAGS.batch_size
    print(
        f"{FLAGS.batches} batches of {size} clips; chance: batch InfoNCE ln({size}) = "
        f"{math.log(size):.2f}, top-1 {1 / size:.3f}"
    )
    print(
        "| run | term | BN | cos positive | cos batch | cos queue | batch InfoNCE | batch top-1 |\n"
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
    )
    for label, method in methods:
        stream = data_lib.make_dataset_fn(source, method)(tf.distribute.InputContext())
        batches = list(stream.batch(size, drop_remainder=True).take(FLAGS.batches))
        for (name, mode), row in probe(method, batches).items():
            print(
                f"| {label} | {name} | {mode} | {row['positive']:.3f} | {row['batch']:.3f} | "
                f"{row['queue']:.3f} | {row['nce']:.2f} | {row['top1']:.3f} |"
            )


if __name__ == "__main__":
    app.run(main)
