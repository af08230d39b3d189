"""What the synthetic world's actions ask of a network: supervised bounds and a hand-made motion feature.

Self-supervised results on the world only mean something beside what is learnable at all. On one world size this
prints, for the held-out actions (never in the training split):

1. k-NN accuracy (k = 1 and 5; the other cameras of a clip's performance never vote) of a hand-made motion-energy
   feature: mean absolute frame difference per pixel, in 3 time segments x an 8 x 8 grid.
2. For the teacher's Slow-only ResNet, fed RGB and fed absolute frame differences: trained with the seen actions'
   labels (Adam, random horizontal flips), at initialisation and at three points of training: accuracy on training
   clips, on the `test` split (new performers of the seen actions), and held-out k-NN of its pooled features.
3. With `--shuffled_labels`, a control for each input kind: the same training with the labels permuted across
   performances (the cameras of one performance keep one label), so no label says anything about the action. A
   network that fits these as fast as the true labels is telling performances apart by their appearance, not learning
   actions.

The world comes from the TFDS data directory, or with `--performances` is generated in memory with those numbers of
performances per split (the tiny world's TFDS build has only 40 training performances).

Examples (the figures in benchmarks/README.md):
  ./run.sh python benchmarks/learnability.py --data_dir=/tmp/edge_ssl_tfds --size=small --steps=600  # ~12 min
  ./run.sh python benchmarks/learnability.py --size=tiny --frames=4 --performances=2000,60,60 \
      --steps=2000 --shuffled_labels  # ~4 min
"""

import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "data_dir", None, "TFDS data directory holding (or receiving) the synthetic world."
)
flags.DEFINE_enum("size", "small", ["tiny", "small"], "World and ResNet size.")
flags.DEFINE_integer(
    "frames", 8, "Frames per clip fed to the network (every other frame of the clip)."
)
flags.DEFINE_integer("steps", 600, "Supervised training steps per input kind.")
flags.DEFINE_integer("batch_size", 16, "Clips per step.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_list("inputs", ["rgb", "absdiff"], "Input kinds to train: rgb, absdiff.")
flags.DEFINE_integer("seed", 0, "Initialisation and batch-order seed.")
flags.DEFINE_list(
    "performances",
    [],
    "Performances per split (pretrain,test,heldout): generate the world in memory instead of reading --data_dir.",
)
flags.DEFINE_bool(
    "shuffled_labels", False, "Also train each input kind on labels permuted across performances."
)


def _performances() -> tuple[int, int, int] | None:
    if not FLAGS.performances:
        return None
    try:
        counts = tuple(int(n) for n in FLAGS.performances)
    except ValueError:
        counts = ()
    if len(counts) != 3 or min(counts) < 1:
        raise app.UsageError(
            f"--performances takes three positive counts (pretrain,test,heldout), got {FLAGS.performances}"
        )
    return counts


def _examples(split: str):
    if _performances() is None:
        import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

        from edge_ssl.data.datasets import synthetic_world  # pylint: disable=g-import-not-at-top

        return tfds.as_numpy(synthetic_world.load(FLAGS.size, split, data_dir=FLAGS.data_dir))
    from edge_ssl.data import synthetic  # pylint: disable=g-import-not-at-top

    world = synthetic.get_config(FLAGS.size, performances=_performances())
    return (synthetic.to_contract(example) for example in synthetic.generate(world, split))


def _load(split: str):
    clips, labels, groups = [], [], []
    for example in _examples(split):
        clips.append(np.asarray(example["rgb"], np.float32)[::2][: FLAGS.frames])
        labels.append(int(example["label"]))
        groups.append(int(example["performance_id"]))
    return np.stack(clips), np.array(labels), np.array(groups)


def _absdiff(clips: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros_like(clips[:, :1]), np.abs(np.diff(clips, axis=1))], axis=1)


def _motion_energy(clips: np.ndarray) -> np.ndarray:
    """[N, 3 * 8 * 8]: mean |frame difference| of the grey frames in 3 time segments x an 8 x 8 grid."""
    grey = clips.mean(axis=-1)
    diff = np.abs(np.diff(grey, axis=1))
    segments = np.array_split(diff, 3, axis=1)
    out = []
    for segment in segments:
        mean = segment.mean(axis=1)
        n, h, w = mean.shape
        out.append(
            mean[:, : h // 8 * 8, : w // 8 * 8].reshape(n, 8, h // 8, 8, w // 8).mean(axis=(2, 4))
        )
    features = np.stack(out, axis=1).reshape(len(clips), -1)
    return features - features.mean(axis=0)


def _knn(features, labels, groups) -> str:
    from edge_ssl.fewshot import metrics  # pylint: disable=g-import-not-at-top

    return " / ".join(f"{metrics.knn_accuracy(features, labels, groups, k):.1%}" for k in (1, 5))


def _shuffled(train):
    """`train` with its labels permuted across performances (a random permutation of the performances' labels)."""
    clips, labels, groups = train
    performances = np.unique(groups)
    own = np.array([labels[groups == g][0] for g in performances])
    taken = dict(zip(performances, np.random.default_rng(FLAGS.seed).permutation(own)))
    return clips, np.array([taken[g] for g in groups]), groups


def _supervised(kind: str, train, test, heldout, name: str | None = None) -> None:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top
    from edge_ssl.models import video_resnet  # pylint: disable=g-import-not-at-top

    prepare = _absdiff if kind == "absdiff" else (lambda x: x)
    keras.utils.set_random_seed(FLAGS.seed)
    net = video_resnet.video_resnet(
        FLAGS.size, frames=FLAGS.frames, modality="diff" if kind == "absdiff" else "rgb", name=kind
    )
    head = keras.layers.Dense(int(train[1].max()) + 1)
    optimizer = keras.optimizers.Adam(FLAGS.learning_rate)
    variables = net.trainable_variables + head.trainable_variables

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = head(net(x, training=True))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def features(clips):
        return np.concatenate(
            [
                net(prepare(clips[i : i + 32]), training=False).numpy()
                for i in range(0, len(clips), 32)
            ]
        )

    def accuracy(clips, labels):
        return float(np.mean(np.argmax(head(features(clips)).numpy(), axis=1) == labels))

    def report(done: int, loss: float | None, seconds: float) -> None:
        fit = f"loss {loss:.3f}, " if loss is not None else ""
        print(
            f"  {name or kind:8s} step {done:5d}: {fit}train {accuracy(train[0][:400], train[1][:400]):.1%}, "
            f"test {accuracy(*test[:2]):.1%}, held-out k-NN (k=1 / 5) {_knn(features(heldout[0]), *heldout[1:])}"
            f" ({seconds:.0f} s)",
            flush=True,
        )

    report(0, None, 0.0)
    reports = {FLAGS.steps * k // 3 for k in (1, 2, 3)}
    rng = np.random.default_rng(FLAGS.seed)
    start, losses = time.time(), []
    for i in range(FLAGS.steps):
        batch = rng.choice(len(train[0]), FLAGS.batch_size, replace=False)
        x = prepare(train[0][batch])
        if rng.random() < 0.5:
            x = x[:, :, :, ::-1]
        losses.append(float(step(x, train[1][batch].astype(np.int32))))
        if i + 1 in reports:
            report(i + 1, float(np.mean(losses[-50:])), time.time() - start)


def main(argv):
    del argv
    _performances()  # a bad --performances is a usage error before anything loads
    from edge_ssl.data import synthetic  # pylint: disable=g-import-not-at-top

    available = (synthetic.SIZES[FLAGS.size]["num_frames"] + 1) // 2
    if FLAGS.frames > available:
        raise app.UsageError(
            f"the {FLAGS.size} world's clips have {available} frames at every other frame; "
            f"pass --frames<={available}"
        )
    for kind in FLAGS.inputs:
        if kind not in ("rgb", "absdiff"):
            raise app.UsageError(f"unknown input kind {kind!r}; choose rgb or absdiff")
    start = time.time()
    train, test, heldout = (_load(split) for split in ("pretrain", "test", "heldout"))
    print(
        f"synthetic_world/{FLAGS.size}: {len(train[0])} training, {len(test[0])} test, {len(heldout[0])} held-out "
        f"clips of {train[0].shape[1:]} ({time.time() - start:.0f} s to load)"
    )
    print(
        f"motion energy, held-out k-NN (k=1 / 5): {_knn(_motion_energy(heldout[0]), *heldout[1:])} (chance 20%)"
    )
    print(
        f"supervised on the {int(train[1].max()) + 1} seen actions (test chance {1 / (train[1].max() + 1):.0%}):"
    )
    for kind in FLAGS.inputs:
        _supervised(kind, train, test, heldout)
        if FLAGS.shuffled_labels:
            _supervised(kind, _shuffled(train), test, heldout, name=f"{kind}, shuffled labels")


if __name__ == "__main__":
    app.run(main)
