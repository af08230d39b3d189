"""What the synthetic world's actions ask of a network: the bounds every self-supervised claim is read against.

On one world size, generated in memory at each `--clutter` level, this prints for new performers of the seen actions
(the `test` split, 10-way) and for the held-out actions (never trained on, 5-way k-NN with the other cameras of a
clip's performance never voting):

1. **Pose oracle**: an MLP on the clip's 2D keypoints (centred and scaled per clip), trained with labels.
2. **Supervised RGB bounds**: each teacher's own RGB network trained with the seen actions' labels within the demo's
   pretraining budget (`--steps` x `--batch_size`): Cross and Learn's per-frame CaffeNet (`caffenet`), MoDist's
   Slow-only ResNet (`slowonly`), the Muscles paper's frame ResNet (`frame_resnet`). Per-frame networks classify a
   clip by the mean of its frames' logits and embed it by the mean of its frames' features. Training flips clips
   horizontally with their labels mirrored (`synthetic.ACTION_FLIP`: wave_left <-> wave_right, kick_left <->
   kick_right). Printed: accuracy on training clips, on new performers, the train-test gap, held-out k-NN.
3. `--shuffled_labels`: the same training with labels permuted across performances, a control that must stay at
   chance on new performers (a network that fits them is telling performances apart by appearance).
4. **Shortcut controls** (`--controls`): the per-frame CaffeNet trained on the same clips rendered without the
   person, and an MLP on per-clip colour histograms; both must stay at chance.
5. **Time order**: on the squat_down / stand_up pair (one is the other played backwards), the per-frame network's
   single-frame accuracy between the two (near 50%: a frame cannot tell them apart) against the clip network's.

Examples (the figures in benchmarks/README.md):
  ./run.sh python benchmarks/learnability.py --size=small --performances=2000,200,200 --shuffled_labels \
      --controls  # the default clutter, every network
  ./run.sh python benchmarks/learnability.py --size=small --performances=1000,200,200 --clutter=0,1,2,3 \
      --models=caffenet  # what clutter costs
"""

import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_enum("size", "small", ["tiny", "small"], "World and network size.")
flags.DEFINE_list(
    "performances",
    ["2000", "200", "200"],
    "Performances per split (pretrain,test,heldout), generated in memory.",
)
flags.DEFINE_list(
    "clutter", ["1"], "Clutter levels of the world to measure (0 flat .. 3 textures)."
)
flags.DEFINE_list(
    "models",
    ["caffenet", "slowonly", "frame_resnet"],
    "Supervised RGB networks: caffenet, slowonly, frame_resnet.",
)
flags.DEFINE_integer(
    "frames", 8, "Frames per clip fed to the networks (every other frame of the clip)."
)
flags.DEFINE_integer(
    "steps", 400, "Supervised training steps per network (the demo pretrains 400)."
)
flags.DEFINE_integer(
    "batch_size", 32, "Clips (per-frame networks: frames) per step (the demo's 32)."
)
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate (the peak, with --schedule=cosine).")
flags.DEFINE_enum(
    "schedule",
    "constant",
    ["constant", "cosine"],
    "Learning rate over the steps: constant, or a linear warm-up over 10% of them then cosine decay to 0 "
    "(edge_ssl.train.optim.warmup_cosine, what pretraining uses).",
)
flags.DEFINE_float(
    "caffenet_dropout",
    0.5,
    "Dropout before the CaffeNet's fc6 and fc7 (0.5: the paper's, and Cross and Learn's default).",
)
flags.DEFINE_integer("seed", 0, "World, initialisation and batch-order seed.")
flags.DEFINE_bool(
    "shuffled_labels", False, "Also train each network on labels permuted across performances."
)
flags.DEFINE_bool(
    "controls", False, "Also run the person-less and colour-histogram shortcut controls."
)

MODELS = ("caffenet", "slowonly", "frame_resnet")
PER_FRAME = ("caffenet", "frame_resnet")
PAIR = ("squat_down", "stand_up")


def _performances() -> tuple[int, int, int]:
    try:
        counts = tuple(int(n) for n in FLAGS.performances)
    except ValueError:
        counts = ()
    if len(counts) != 3 or min(counts) < 1:
        raise app.UsageError(
            f"--performances takes three positive counts (pretrain,test,heldout), got {FLAGS.performances}"
        )
    return counts


def _clutter_levels() -> list[int]:
    from edge_ssl.data import synthetic  # pylint: disable=g-import-not-at-top

    try:
        levels = [int(c) for c in FLAGS.clutter]
    except ValueError:
        levels = [-1]
    if not levels or any(c not in synthetic.CLUTTER_LEVELS for c in levels):
        raise app.UsageError(
            f"--clutter takes levels from {synthetic.CLUTTER_LEVELS}, got {FLAGS.clutter}"
        )
    return levels


class Split:
    """One split in memory: uint8 clips [N, T, H, W, 3], keypoints [N, T, 17, 2], labels, performances."""

    def __init__(self, examples, frames: int):
        clips, poses, labels, groups = [], [], [], []
        for example in examples:
            clips.append(example["rgb"][::2][:frames])
            poses.append(example["pose2d"])
            labels.append(int(example["label"]))
            groups.append(int(example["performance_id"]))
        self.clips = np.stack(clips)
        self.poses = np.stack(poses)
        self.labels = np.array(labels, np.int32)
        self.groups = np.array(groups)

    def __len__(self) -> int:
        return len(self.labels)


def _world(clutter: int, person: bool = True) -> dict[str, Split]:
    from edge_ssl.data import synthetic  # pylint: disable=g-import-not-at-top

    world = synthetic.get_config(FLAGS.size, performances=_performances(), clutter=clutter)
    return {
        split: Split(synthetic.generate(world, split, seed=FLAGS.seed, person=person), FLAGS.frames)
        for split in ("pretrain", "test", "heldout")
    }


def _knn(features, split: Split) -> str:
    from edge_ssl.fewshot import metrics  # pylint: disable=g-import-not-at-top

    return " / ".join(
        f"{metrics.knn_accuracy(features, split.labels, split.groups, k):.1%}" for k in (1, 5)
    )


def _shuffled(labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Labels permuted across performances: the cameras of one performance keep one (now meaningless) label."""
    performances = np.unique(groups)
    own = np.array([labels[groups == g][0] for g in performances])
    taken = dict(zip(performances, np.random.default_rng(FLAGS.seed).permutation(own)))
    return np.array([taken[g] for g in groups], np.int32)


def _network(kind: str, num_classes: int):
    """(backbone taking [B, S, S, 3] frames or [B, T, S, S, 3] clips to features, logits head)."""
    from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top
    from edge_ssl.models import (  # pylint: disable=g-import-not-at-top
        caffenet,
        frame_resnet,
        video_resnet,
    )

    if kind == "caffenet":
        net = caffenet.caffenet_bn(FLAGS.size, dropout=FLAGS.caffenet_dropout, feature_layer="fc6")
    elif kind == "frame_resnet":
        resnet = frame_resnet.frame_resnet(FLAGS.size)
        net = keras.Model(resnet.inputs, resnet.outputs[0])
    else:
        net = video_resnet.video_resnet(FLAGS.size, frames=FLAGS.frames)
    return net, keras.layers.Dense(num_classes)


def _train(kind: str, train_clips: np.ndarray, labels: np.ndarray, flip: bool):
    """Trains `kind` with labels; returns (features(clips) -> [N, D], logits(clips) -> [N, C] or [N, T, C])."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    from edge_ssl.data import synthetic  # pylint: disable=g-import-not-at-top
    from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top

    keras.utils.set_random_seed(FLAGS.seed)
    net, head = _network(kind, synthetic.NUM_ACTIONS)
    learning_rate = FLAGS.learning_rate
    if FLAGS.schedule == "cosine":
        from edge_ssl.train import optim  # pylint: disable=g-import-not-at-top

        learning_rate = optim.warmup_cosine(FLAGS.learning_rate, FLAGS.steps, 0.1)
    optimizer = keras.optimizers.Adam(learning_rate)
    per_frame = kind in PER_FRAME

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = head(net(x, training=True))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        variables = net.trainable_variables + head.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    rng = np.random.default_rng(FLAGS.seed)
    n, t = train_clips.shape[:2]
    for _ in range(FLAGS.steps):
        batch = rng.choice(n, FLAGS.batch_size, replace=False)
        y = labels[batch]
        x = (
            train_clips[batch, rng.integers(t, size=len(batch))]
            if per_frame
            else train_clips[batch]
        )
        if flip and rng.random() < 0.5:
            x, y = x[..., ::-1, :], synthetic.ACTION_FLIP[y]
        step(tf.constant(x, tf.float32) / 255.0, tf.constant(y))

    @tf.function
    def embed(x):
        if per_frame:
            b = tf.shape(x)[0]
            frames = tf.reshape(x, [-1, *x.shape[2:]])
            features = net(frames, training=False)
            per = tf.reshape(features, [b, -1, features.shape[-1]])
            logits = tf.reshape(head(features), [b, -1, synthetic.NUM_ACTIONS])
            return tf.reduce_mean(per, axis=1), logits
        features = net(x, training=False)
        return features, head(features)

    def run(clips):
        outs = [
            embed(tf.constant(clips[i : i + 32], tf.float32) / 255.0)
            for i in range(0, len(clips), 32)
        ]
        return np.concatenate([o[0].numpy() for o in outs]), np.concatenate(
            [o[1].numpy() for o in outs]
        )

    return run


def _clip_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    if logits.ndim == 3:  # per-frame logits: the clip's decision is their mean
        logits = logits.mean(axis=1)
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def _pair_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy between the two actions of PAIR on their clips (per frame for per-frame logits)."""
    from edge_ssl.data import synthetic  # pylint: disable=g-import-not-at-top

    ids = [synthetic.ACTIONS.index(a) for a in PAIR]
    keep = np.isin(labels, ids)
    two = logits[keep][..., ids]
    truth = (labels[keep] == ids[1]).astype(int)
    if two.ndim == 3:
        truth = np.repeat(truth[:, None], two.shape[1], axis=1)
    return float(np.mean(np.argmax(two, axis=-1) == truth))


def _report_network(name: str, kind: str, world: dict[str, Split], labels: np.ndarray, flip: bool):
    start = time.time()
    run = _train(kind, world["pretrain"].clips, labels, flip)
    train_n = min(600, len(world["pretrain"]))
    _, train_logits = run(world["pretrain"].clips[:train_n])
    train_acc = _clip_accuracy(train_logits, labels[:train_n])
    _, test_logits = run(world["test"].clips)
    test_acc = _clip_accuracy(test_logits, world["test"].labels)
    features, _ = run(world["heldout"].clips)
    pair = _pair_accuracy(test_logits, world["test"].labels)
    print(
        f"  {name:26s} train {train_acc:6.1%}  test {test_acc:6.1%}  gap {100 * (train_acc - test_acc):5.1f}  "
        f"held-out k-NN (k=1 / 5) {_knn(features, world['heldout'])}  "
        f"{'/'.join(PAIR)} {'per frame' if kind in PER_FRAME else 'per clip'} {pair:.0%}  "
        f"({time.time() - start:.0f} s)",
        flush=True,
    )


def _mlp_accuracy(train_x, train_y, test_x, test_y, steps: int = 1500) -> tuple[float, float]:
    """(train, test) accuracy of a one-hidden-layer MLP trained with Adam on standardised features."""
    from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top

    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    keras.utils.set_random_seed(FLAGS.seed)
    model = keras.Sequential(
        [
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(int(max(train_y.max(), test_y.max())) + 1),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    epochs = max(1, steps * 64 // len(train_x))
    model.fit(train_x, train_y, batch_size=64, epochs=epochs, verbose=0)
    return tuple(
        float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))
        for x, y in ((train_x, train_y), (test_x, test_y))
    )


def _pose_features(split: Split) -> np.ndarray:
    """Keypoints centred on the clip's mean hip point and scaled by its mean torso length, flattened."""
    from edge_ssl.data import keypoints  # pylint: disable=g-import-not-at-top

    idx = keypoints.INDEX
    poses = split.poses.astype(np.float64)
    hips = 0.5 * (poses[:, :, idx["left_hip"]] + poses[:, :, idx["right_hip"]])
    shoulders = 0.5 * (poses[:, :, idx["left_shoulder"]] + poses[:, :, idx["right_shoulder"]])
    torso = np.linalg.norm(shoulders - hips, axis=-1).mean(axis=1)
    centred = (poses - hips.mean(axis=1)[:, None, None, :]) / torso[:, None, None, None]
    return centred.reshape(len(split), -1).astype(np.float32)


def _histograms(split: Split, bins: int = 4) -> np.ndarray:
    """Per-clip joint RGB histograms (bins^3 cells), as fractions of the clip's pixels."""
    q = (split.clips.astype(np.int32) * bins) // 256
    cells = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    flat = cells.reshape(len(split), -1)
    return (
        np.stack([np.bincount(row, minlength=bins**3) for row in flat]).astype(np.float32)
        / flat.shape[1]
    )


def main(argv):
    del argv
    _performances()  # bad flags are usage errors before anything loads
    levels = _clutter_levels()
    unknown = sorted(set(FLAGS.models) - set(MODELS))
    if unknown:
        raise app.UsageError(f"unknown --models {unknown}; choose from {', '.join(MODELS)}")
    from edge_ssl.data import synthetic  # pylint: disable=g-import-not-at-top

    available = (synthetic.SIZES[FLAGS.size]["num_frames"] + 1) // 2
    if FLAGS.frames > available:
        raise app.UsageError(
            f"the {FLAGS.size} world's clips have {available} frames at every other frame; pass --frames<={available}"
        )
    for clutter in levels:
        start = time.time()
        world = _world(clutter)
        print(
            f"\nsynthetic_world/{FLAGS.size}, clutter {clutter}: {len(world['pretrain'])} training, "
            f"{len(world['test'])} test, {len(world['heldout'])} held-out clips of {world['pretrain'].clips.shape[1:]} "
            f"({time.time() - start:.0f} s to render); chance: test 10%, held-out 20%",
            flush=True,
        )
        train_acc, test_acc = _mlp_accuracy(
            _pose_features(world["pretrain"]),
            world["pretrain"].labels,
            _pose_features(world["test"]),
            world["test"].labels,
        )
        print(
            f"  {'pose oracle (keypoint MLP)':26s} train {train_acc:6.1%}  test {test_acc:6.1%}",
            flush=True,
        )
        train = world["pretrain"]
        for kind in FLAGS.models:
            _report_network(kind, kind, world, train.labels, flip=True)
            if FLAGS.shuffled_labels:
                _report_network(
                    f"{kind}, shuffled labels",
                    kind,
                    world,
                    _shuffled(train.labels, train.groups),
                    flip=False,
                )
        if FLAGS.controls:
            train_acc, test_acc = _mlp_accuracy(
                _histograms(world["pretrain"]),
                world["pretrain"].labels,
                _histograms(world["test"]),
                world["test"].labels,
            )
            print(
                f"  {'colour histograms (MLP)':26s} train {train_acc:6.1%}  test {test_acc:6.1%}",
                flush=True,
            )
            del world
            _report_network(
                "caffenet, no person", "caffenet", _world(clutter, person=False), train.labels, True
            )


if __name__ == "__main__":
    app.run(main)
