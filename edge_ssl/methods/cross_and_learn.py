"""Cross and Learn: cross-modal self-supervision between an RGB frame and a motion stack.

Sayed, Brattoli and Ommer, "Cross and Learn: Cross-Modal Self-Supervision", GCPR 2018 (arXiv 1811.03879). Two encoders
that share no weights, an appearance net on one RGB frame and a motion net on a 10-frame optical-flow stack (20
channels) or on 4 frame differences (12 channels, the paper's cheap "cod" alternative), are trained so that paired
features agree (L_cross) while features of the same modality from different videos differ (L_div); see
`edge_ssl.losses.cross_modal`.

Data, as in the paper: a window is drawn with probability proportional to its summed motion ("high-motion sampling"),
the RGB input is the window's centre frame, RGB and motion share one crop and flip, the motion stack is reversed in
time (and flow negated) with probability 0.5, and RGB gets channel splitting (one random channel copied into all
three; the backbone averages the channels at test time).

Weight decay is coupled L2 on every trainable variable (BN's included), as the authors' PyTorch SGD applies it: 5e-4 * w
added to the gradient before the momentum (`optim.apply_gradients`), not Keras's decoupled form, which is ~10x weaker
under momentum 0.9.

Differences from the paper: per-frame motion magnitude for the sampling is computed from the clip at hand (flow or
differences) rather than precomputed over the whole video; by default the motion input's per-channel spatial mean is
subtracted (`subtract_motion_mean`; the original subtracts none) and differences keep their three colour channels
(`differences="grey"` takes the luma's differences instead). Two options depart from the paper's data: `tuples_from`
(tuples of two moments of one clip) and `rgb_crop="independent"` (a crop of its own for the RGB frame).
benchmarks/README.md ("What pretraining adds") has what each choice learns on the synthetic world.
"""

import dataclasses

import tensorflow as tf

from edge_ssl import tracing
from edge_ssl.data import augment
from edge_ssl.data import motion as motion_lib
from edge_ssl.keras import keras
from edge_ssl.losses import cross_modal, distributed
from edge_ssl.methods import base, views
from edge_ssl.models import caffenet, layers
from edge_ssl.train import optim

MODALITY = "video"  # what the method learns from (base.MODALITIES)
MOTIONS = ("flow", "diff")
NEGATIVES = ("tuple", "batch")
RGB_CROPS = ("shared", "independent")
TUPLES_FROM = ("videos", "moments")
ENCODERS = ("caffenet", "vgg16")


@dataclasses.dataclass(frozen=True)
class CrossAndLearnConfig(base.MethodConfig):
    method: str = "cross_and_learn"
    preset: str = "tiny"
    encoder: str = "caffenet"  # "caffenet" (variant below) or "vgg16" (224 px)
    variant: str = "tiny"  # CaffeNet variant: paper | small | tiny
    motion: str = (
        "diff"  # "flow" (flow_frames x 2 channels) or "diff" (num_differences x 3 channels)
    )
    flow_frames: int = 10
    num_differences: int = 4
    # "colour": each difference keeps the three colour channels (today's default); "grey": differences of the frames'
    # luma, one channel each, so the motion stream sees no colour the RGB frame shows on the same pixels.
    differences: str = "colour"
    # The motion input's per-channel spatial mean is subtracted (the original subtracts none from its flow or
    # differences; the mean of a flow stack is camera motion).
    subtract_motion_mean: bool = True
    feature_layer: str = "fc6"
    dropout: float = 0.5
    weight_cross: float = 0.5
    epsilon: float = 1e-4
    negatives: str = (
        "tuple"  # "tuple": the faithful two-pair tuple; "batch": every other item is a negative
    )
    # Where a tuple's two pairs come from: "videos", two videos (the paper's); "moments", two windows of one clip
    # apart in time, under one crop and flip, so L_div cannot be met by what the person wears or the room they are in
    # and must be met by their pose and motion at each moment (a departure from the paper, measured in
    # benchmarks/README.md, "What pretraining adds"). Each example then holds a whole tuple.
    tuples_from: str = "videos"
    # "sgd": momentum SGD, the paper's; "adam": Adam at `learning_rate` with the same step decay (a departure,
    # measured in benchmarks/README.md, "Cross and Learn on Adam").
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    # Coupled L2, as PyTorch's SGD: weight_decay * w is added to every gradient (optim.apply_gradients).
    weight_decay: float = 5e-4
    decay_at: float = 0.75  # the learning rate drops 10x at this fraction of `steps`
    high_motion: bool = True
    channel_split: bool = True
    time_flip: bool = True
    # "shared": the RGB frame and the motion stack share one crop (the paper's); "independent": each has its own, so
    # where the person stands in the crop is no longer a cue both streams see (a departure from the paper, measured
    # in benchmarks/README.md, "What pretraining adds").
    rgb_crop: str = "shared"
    scale_size: int | None = (
        None  # resize frames to this square size before the random crop (None: no resize)
    )
    eval_frames: int = 8  # frames per clip the backbone averages over
    global_batch_size: int = 60  # pairs (the paper: 30 tuples)

    def __post_init__(self):
        super().__post_init__()
        checks = (
            (self.encoder in ENCODERS, f"encoder must be one of {ENCODERS}"),
            (
                self.variant in caffenet.CAFFENET_VARIANTS,
                f"variant must be one of {sorted(caffenet.CAFFENET_VARIANTS)}",
            ),
            (self.motion in MOTIONS, f"motion must be one of {MOTIONS}"),
            (
                self.differences in motion_lib.DIFFERENCES,
                f"differences must be one of {motion_lib.DIFFERENCES}",
            ),
            (self.negatives in NEGATIVES, f"negatives must be one of {NEGATIVES}"),
            (self.rgb_crop in RGB_CROPS, f"rgb_crop must be one of {RGB_CROPS}"),
            (self.tuples_from in TUPLES_FROM, f"tuples_from must be one of {TUPLES_FROM}"),
            (
                self.tuples_from == "videos" or self.negatives == "tuple",
                'tuples_from="moments" needs negatives="tuple"',
            ),
            (
                self.feature_layer in caffenet.FEATURE_LAYERS,
                f"feature_layer must be one of {caffenet.FEATURE_LAYERS}",
            ),
            (0.0 <= self.weight_cross <= 1.0, "weight_cross must be in [0, 1]"),
            (
                self.flow_frames >= 1 and self.num_differences >= 1,
                "flow_frames and num_differences must be >= 1",
            ),
            (0.0 < self.decay_at <= 1.0, "decay_at must be in (0, 1]"),
            (self.learning_rate > 0, "learning_rate must be positive"),
            (self.optimizer in optim.OPTIMIZERS, f"optimizer must be one of {optim.OPTIMIZERS}"),
            (
                self.global_batch_size >= 2 and self.global_batch_size % 2 == 0,
                "global_batch_size must be even",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"cross_and_learn config: {message}")

    @property
    def input_size(self) -> int:
        return (
            224 if self.encoder == "vgg16" else caffenet.CAFFENET_VARIANTS[self.variant].input_size
        )

    @property
    def window(self) -> int:
        """Frames per sampled window: the motion stack's frames plus the one it starts from."""
        return (self.flow_frames if self.motion == "flow" else self.num_differences) + 1

    @property
    def motion_channels(self) -> int:
        if self.motion == "flow":
            return 2 * self.flow_frames
        return (1 if self.differences == "grey" else 3) * self.num_differences


def _encoder(
    config: CrossAndLearnConfig, in_channels: int, modality: str, name: str
) -> keras.Model:
    kwargs = dict(
        in_channels=in_channels,
        modality=modality,
        feature_layer=config.feature_layer,
        dropout=config.dropout,
        name=name,
        subtract_mean=config.subtract_motion_mean,
    )
    if config.encoder == "vgg16":
        return caffenet.vgg16_bn(**kwargs)
    return caffenet.caffenet_bn(config.variant, **kwargs)


def _window_start(
    motion_per_frame: tf.Tensor,
    window: int,
    high_motion: bool,
    seed: tf.Tensor,
    away_from: tf.Tensor | None = None,
) -> tf.Tensor:
    """A window start in [0, T - window], drawn in proportion to the window's summed motion (or uniformly).

    With `away_from` (another window's start), starts whose motion frames overlap that window's are left out, and
    when the clip is too short for that, only `away_from` itself is.
    """
    count = tf.shape(motion_per_frame)[0] - window + 1
    tf.debugging.assert_positive(count, message=f"clip shorter than the {window}-frame window")
    if high_motion:
        # Motion into frames start+1 .. start+window-1 (frame `start` only anchors the stack).
        sums = tf.signal.frame(motion_per_frame[1:], window - 1, 1)  # [count, window - 1]
        weights = tf.reduce_sum(sums, axis=1) + 1e-6  # no motion anywhere -> uniform
    else:
        weights = tf.ones([count])
    if away_from is not None:
        distance = tf.abs(tf.range(count) - away_from)
        apart = distance >= window - 1
        allowed = tf.cond(tf.reduce_any(apart), lambda: apart, lambda: distance > 0)
        weights = tf.where(allowed, weights, 0.0)
    logits = tf.math.log(weights)[None, :]
    return tf.cast(tf.random.stateless_categorical(logits, 1, seed)[0, 0], tf.int32)


class CrossAndLearn(base.Method):
    """Two streams, one objective; `backbone` is the RGB stream averaged over a clip's frames."""

    name = "cross_and_learn"
    modality = MODALITY

    def __init__(self, config: CrossAndLearnConfig):
        super().__init__(config)
        self.input_keys = ("rgb", "flow") if config.motion == "flow" else ("rgb",)
        self.rgb_net = _encoder(config, 3, "rgb", "rgb_net")
        self.motion_net = _encoder(config, config.motion_channels, config.motion, "motion_net")
        size = config.input_size
        clip = keras.Input((config.eval_frames, size, size, 3), name="clip")
        x = layers.ChannelMean(name="channel_mean")(clip) if config.channel_split else clip
        x = keras.layers.TimeDistributed(self.rgb_net, name="per_frame")(x)
        x = layers.MeanOverTime(name="mean_over_time")(x)
        self._backbone = keras.Model(
            clip, layers.L2Normalize(name="embedding")(x), name="cross_and_learn_backbone"
        )
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            [max(int(config.decay_at * config.steps), 1)],
            [config.learning_rate, config.learning_rate * 0.1],
        )
        if config.optimizer == "adam":
            optimizer = keras.optimizers.Adam(schedule)
        else:
            optimizer = keras.optimizers.SGD(schedule, momentum=config.momentum)
        self._optimizer = optim.loss_scaled(optimizer, config.precision)  # decay: see train_step

    @property
    def encoders(self):
        return {"rgb": self.rgb_net, "motion": self.motion_net}

    def teacher_views(self) -> dict[str, views.View]:
        """The RGB stream averaged over the window's frames, and the motion stream averaged over
        `views.MOTION_STACKS` flow or difference stacks spread over the window."""
        c = self.config

        def motion(window):
            ex = views.motion_window(window, c.input_size)
            if c.motion == "flow":
                return views.motion_stacks(ex["flow"], c.flow_frames, views.MOTION_STACKS)
            differences = motion_lib.frame_differences(ex["rgb"], grey=c.differences == "grey")
            return views.motion_stacks(differences, c.num_differences, views.MOTION_STACKS)

        return {
            "visual": views.visual(self.backbone, c.input_size, c.eval_frames),
            "motion": views.View(views.stack_mean(self.motion_net, views.MOTION_STACKS), motion),
        }

    @property
    def backbone(self):
        return self._backbone

    @property
    def optimizers(self):
        return {self.config.optimizer: self._optimizer}

    @tracing.as_written
    def prepare(self, example, seed):
        """One pair (the RGB centre frame and its motion stack), or with `tuples_from="moments"` a tuple of two
        pairs of the same clip [2, ...], the second window away from the first."""
        c = self.config
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 6))
        ex = {k: tf.convert_to_tensor(example[k], tf.float32) for k in self.input_keys}
        if c.motion == "flow":
            flow = ex["flow"]
            per_frame = tf.reduce_mean(tf.norm(flow, axis=-1), axis=[1, 2])
        else:
            rgb = ex["rgb"]
            per_frame = tf.concat(
                [[0.0], tf.reduce_mean(tf.abs(rgb[1:] - rgb[:-1]), axis=[1, 2, 3])], 0
            )
        start = _window_start(per_frame, c.window, c.high_motion, seeds[0])
        if c.tuples_from == "videos":
            return self._pair({k: v[start : start + c.window] for k, v in ex.items()}, seeds[1:])
        other_start, other_split = tf.unstack(tf.random.experimental.stateless_split(seeds[5], 2))
        other = _window_start(per_frame, c.window, c.high_motion, other_start, away_from=start)
        pairs = [
            self._pair({k: v[s : s + c.window] for k, v in ex.items()}, seeds[1:4] + [split])
            for s, split in ((start, seeds[4]), (other, other_split))
        ]
        return {k: tf.stack([p[k] for p in pairs]) for k in pairs[0]}

    def _pair(self, ex: dict[str, tf.Tensor], seeds: list[tf.Tensor]) -> dict[str, tf.Tensor]:
        """A window [window, H, W, C] -> its RGB centre frame and motion stack, augmented with `seeds` (crop, flip,
        time flip, channel split)."""
        c = self.config
        if c.scale_size:
            ex = augment.resize(ex, (c.scale_size, c.scale_size))

        # One crop per call; the flip and the time flip are the same for both streams.
        def geometry(example, crop_seed):
            example = augment.random_crop(example, (c.input_size, c.input_size), crop_seed)
            example = augment.random_flip(example, seeds[1])
            return augment.random_reversal(example, seeds[2]) if c.time_flip else example

        if c.rgb_crop == "independent":
            crop_seed, rgb_seed = tf.unstack(tf.random.experimental.stateless_split(seeds[0], 2))
            frames = geometry({"rgb": ex["rgb"]}, rgb_seed)["rgb"]
            ex = geometry(ex, crop_seed)
        else:
            ex = geometry(ex, seeds[0])
            frames = ex["rgb"]
        rgb = ex["rgb"]
        if c.motion == "flow":
            stack = ex["flow"][1:]  # [F, H, W, 2]: motion into each frame after the first
            motion = tf.concat(tf.unstack(stack, num=c.flow_frames, axis=0), axis=-1)
        else:
            motion = motion_lib.difference_stack(
                rgb, c.num_differences, grey=c.differences == "grey"
            )
        frame = {"rgb": frames[c.window // 2]}
        if c.channel_split:
            frame = augment.channel_split(frame, seeds[3])
        return {"rgb": frame["rgb"], "motion": motion}

    def losses(self, batch, global_batch_size, training=True):
        """The named losses of `batch`, each this replica's share of the global mean."""
        c = self.config
        rgb, motion = batch["rgb"], batch["motion"]
        if (
            c.tuples_from == "moments"
        ):  # [B, 2, ...]: each example a tuple; interleaved, pairs (2i, 2i + 1) again
            rgb = tf.reshape(rgb, [-1, *rgb.shape[2:]])
            motion = tf.reshape(motion, [-1, *motion.shape[2:]])
        r = optim.f32(self.rgb_net(rgb, training=training))
        o = optim.f32(self.motion_net(motion, training=training))
        if c.negatives == "tuple":
            # Tuples are adjacent items (2i, 2i + 1), so splitting an even global batch over replicas into even
            # shares keeps every tuple on one replica and the loss does not depend on the split.
            per = cross_modal.tuple_losses(
                r[0::2], o[0::2], r[1::2], o[1::2], c.weight_cross, c.epsilon
            )
            count = global_batch_size if c.tuples_from == "moments" else global_batch_size // 2
        else:
            per = cross_modal.batch_losses(r, o, c.weight_cross, c.epsilon)
            count = global_batch_size
        return {name: distributed.global_mean(value, count) for name, value in per.items()}

    @tracing.as_written
    def train_step(self, batch, global_batch_size):
        variables = self.rgb_net.trainable_variables + self.motion_net.trainable_variables
        with tf.GradientTape() as tape:
            losses = self.losses(batch, global_batch_size)
        optim.apply_gradients(
            self._optimizer,
            losses["total"],
            tape,
            variables,
            self.config.clip_norm,
            weight_decay=self.config.weight_decay,
        )
        return losses


def build(config: CrossAndLearnConfig) -> CrossAndLearn:
    """Cross and Learn from its config (see edge_ssl/configs/cross_and_learn_*.py)."""
    with optim.precision_policy(config.precision):
        return CrossAndLearn(config)
