"""MoDist: motion distillation for self-supervised video representations.

Xiao, Tighe and Modolo, "MoDist: Motion Distillation for Self-supervised Video Representation Learning" (arXiv
2106.09703; ECCV 2022 as "MaCLR"). A visual pathway (Slow-only 3D ResNet on RGB clips) and a motion pathway (the same
network at 1/8 width with per-frame kernels, on optical flow) each end in a 2-layer projection head to 128-d codes and
have momentum (key) copies and queues of past keys. With q/k the query and key codes of two clips (views) of one
video, NCE the InfoNCE of `edge_ssl.losses.contrastive`, and queues Q_v, Q_m:

    L = lambda_visual NCE(q_v, k_v, Q_v) + lambda_flow [NCE(q_v, k_m, Q_m) + NCE(q_m, k_v, Q_v) (+ NCE(q_m, k_m, Q_m))]

The cross-modal terms distil motion into the RGB network; only the visual pathway is kept as the representation.
Weight decay is coupled L2 on every trainable variable but BatchNorm's, as the authors' SlowFast-based PyTorch SGD
applies it (`BN.WEIGHT_DECAY` 0): 1e-4 * w added to the gradient before the momentum (`optim.apply_gradients`), not
Keras's decoupled form, which is ~10x weaker under momentum 0.9.

Differences from the paper: no shuffle-BN (one device, or per-replica BN under a strategy); temporal shifts between
views are bounded by the clip length of the data at hand; with `motion="diff"` frame differences stand in for flow
(a deviation the paper's authors discuss, cheaper to compute), in colour or of the luma alone (`differences`). The
`small` and `tiny` configs build the motion pathway at 1/2 and full width of their narrower visual pathways
(`motion_width_divisor`), so that it keeps the paper's 8-channel stem; at 1/8 it had 2 and 1 channels.

An option the paper lacks, off by default: `moment_negatives`, views of other moments of the query's own clip (the
same person, clothes, room and camera in another pose) as negatives of that query in every term, beside the queues.
The key view then shows the query's own frames (its own crop and colours), so that a positive is never another
moment; the moments are keyed in the same pass as the positives, so that batch statistics mark neither.
"""

import dataclasses

import tensorflow as tf

from edge_ssl import tracing
from edge_ssl.data import augment
from edge_ssl.data import motion as motion_lib
from edge_ssl.keras import keras
from edge_ssl.losses import contrastive, distributed
from edge_ssl.methods import base, momentum, views
from edge_ssl.models import layers, video_resnet
from edge_ssl.train import optim

MODALITY = "video"  # what the method learns from (base.MODALITIES)
MOTIONS = ("flow", "diff")
NEGATIVES = ("queue", "batch")
CROSS_MODAL_KEYS = ("other", "same")


@dataclasses.dataclass(frozen=True)
class MoDistConfig(base.MethodConfig):
    method: str = "modist"
    preset: str = "tiny"
    variant: str = "tiny"  # video ResNet variant: paper (R50) | small | tiny
    frames: int = 8  # visual clip frames
    stride: int = 8  # visual sampling stride
    flow_frames: int = 16  # motion clip frames, spanning the same time as the visual clip
    flow_stride: int = 4
    motion: str = "flow"  # "flow" (2 channels) or "diff" (3 channels; 1 with `differences="grey"`)
    # With motion="diff": "colour" differences keep each channel; "grey" differences of the luma carry no clothing
    # colour, only where the brightness changes (a departure measured in benchmarks/README.md).
    differences: str = "colour"
    proj_hidden: int = 2048
    proj_dim: int = 128
    # BatchNorm in the projection heads (MoCo v3's heads; `layers.projection_head`) departs from the paper's
    # MoCo v2 heads: it centres the codes on the batch, where a random encoder's codes of different clips point the
    # same way (cosine ~0.8), so that the differences between clips are what the InfoNCE terms see.
    head_batch_norm: bool = False
    queue_size: int = 65536
    # Where each InfoNCE term's negatives come from: "queue", the paper's (MoCo: the keys of earlier batches);
    # "batch" departs from it (MoCo v3: the other keys of the same global batch; the queues are still filled, not
    # read), so that a query cannot tell its positive from the negatives by the batch it was computed in: with batch
    # statistics in BatchNorm and no shuffled BN (one device), the current batch's keys share a signature the
    # queue's lack (benchmarks/modist_probe.py; benchmarks/README.md, "What pretraining adds").
    negatives: str = "queue"
    # Which keys the cross-modal terms find: "other", the paper's (the other view's keys: another time and crop of
    # the clip), or "same", a departure (the keys of the query's own view, the same frames and crop), which leaves
    # the RGB query only the motion of its own frames to match.
    cross_modal_keys: str = "other"
    # Views of this many other moments of the query's clip, each starting at least `moment_gap` frames from the
    # query's view, as negatives of that query beside the queues (a departure; the module docstring). With them the
    # key view shows the query's own frames. 0, the paper's: the queues only.
    moment_negatives: int = 0
    moment_gap: int = 4
    temperature: float = 0.1
    key_momentum: float = 0.999
    # The motion pathway's widths are the visual pathway's divided by this: the paper's 8 gives R50's motion pathway
    # an 8-channel stem and 256 features; the small and tiny variants, 4x and 8x narrower already, keep its 8-channel
    # stem with 2 and 1 (at 8 their motion pathways had 2- and 1-channel stems).
    motion_width_divisor: int = 8
    flow_weight: float = 1.0
    # The weight of L_vv. 0 leaves the cross-modal terms alone: the visual pathway learns only what it shares with
    # the motion pathway (an ablation measured in benchmarks/README.md, "What pretraining adds").
    visual_weight: float = 1.0
    motion_motion: bool = False  # the optional L_mm term
    learning_rate: float = 0.1
    # "sgd" (Nesterov, `momentum`), the authors'; "adam" (Adam's own moments; `momentum` unused) departs from the
    # paper, for measuring whether the optimiser is what a short run lacks (benchmarks/README.md).
    optimizer: str = "sgd"
    momentum: float = 0.9
    # Coupled L2, as PyTorch's SGD: weight_decay * w is added to every gradient but BN's (optim.apply_gradients).
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    jitter_prob: float = 0.8
    grayscale_prob: float = 0.2
    scale_size: int | None = (
        None  # resize before the random crop (None: crop from the frames as they are)
    )
    global_batch_size: int = 256
    # Clips the teacher's views (and the benchmarks) average over a window, each `frames` frames at `stride` (the
    # motion pathway's: `flow_frames` at `flow_stride`) as in training, their starts spread over the window: the
    # paper's multi-clip testing. 1: one clip in the window's middle.
    eval_clips: int = 1

    def __post_init__(self):
        super().__post_init__()
        checks = (
            (
                self.variant in video_resnet.VARIANTS,
                f"variant must be one of {sorted(video_resnet.VARIANTS)}",
            ),
            (self.motion in MOTIONS, f"motion must be one of {MOTIONS}"),
            (
                self.differences in motion_lib.DIFFERENCES,
                f"differences must be one of {motion_lib.DIFFERENCES}",
            ),
            (self.optimizer in optim.OPTIMIZERS, f"optimizer must be one of {optim.OPTIMIZERS}"),
            (self.negatives in NEGATIVES, f"negatives must be one of {NEGATIVES}"),
            (
                self.cross_modal_keys in CROSS_MODAL_KEYS,
                f"cross_modal_keys must be one of {CROSS_MODAL_KEYS}",
            ),
            (
                min(self.frames, self.stride, self.flow_frames, self.flow_stride) >= 1,
                "frames and strides >= 1",
            ),
            (self.queue_size >= 1 and self.proj_dim >= 1, "queue_size and proj_dim must be >= 1"),
            (self.eval_clips >= 1, "eval_clips must be >= 1"),
            (
                self.moment_negatives >= 0 and self.moment_gap >= 1,
                "moment_negatives must be >= 0 and moment_gap >= 1",
            ),
            (
                not self.moment_negatives
                or (self.negatives == "queue" and self.cross_modal_keys == "other"),
                'moment_negatives needs negatives="queue" and cross_modal_keys="other" (its key view '
                "already shows the query's frames)",
            ),
            (self.motion_width_divisor >= 1, "motion_width_divisor must be >= 1"),
            (self.temperature > 0, "temperature must be positive"),
            (
                self.visual_weight >= 0 and self.flow_weight >= 0,
                "visual_weight and flow_weight must be >= 0",
            ),
            (
                self.visual_weight + self.flow_weight > 0,
                "visual_weight and flow_weight cannot both be 0",
            ),
            (0.0 <= self.key_momentum < 1.0, "key_momentum must be in [0, 1)"),
            (self.learning_rate > 0, "learning_rate must be positive"),
            (0.0 <= self.warmup_fraction < 1.0, "warmup_fraction must be in [0, 1)"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"modist config: {message}")

    @property
    def input_size(self) -> int:
        return video_resnet.VARIANTS[self.variant].input_size

    @property
    def span(self) -> int:
        """Raw frames one view covers (the visual and motion clips cover the same time)."""
        return max((self.frames - 1) * self.stride, (self.flow_frames - 1) * self.flow_stride) + 1


def _with_head(
    encoder: keras.Model, hidden: int, dim: int, name: str, batch_norm: bool
) -> keras.Model:
    return keras.Model(
        encoder.input,
        layers.projection_head(encoder.output, hidden, dim, f"{name}_head", batch_norm),
        name=f"{name}_query",
    )


class MoDist(base.Method):
    """Visual and motion pathways with momentum keys and queues; `backbone` is the visual pathway."""

    name = "modist"
    modality = MODALITY

    def __init__(self, config: MoDistConfig):
        super().__init__(config)
        c = config
        self.input_keys = ("rgb", "flow") if c.motion == "flow" else ("rgb",)
        motion_channels = 2 if c.motion == "flow" else (1 if c.differences == "grey" else 3)
        self.visual = video_resnet.video_resnet(c.variant, frames=c.frames, name="visual")
        self.motion = video_resnet.motion_resnet(
            c.variant,
            frames=c.flow_frames,
            in_channels=motion_channels,
            width_divisor=c.motion_width_divisor,
            name="motion",
        )
        self.visual_query = _with_head(
            self.visual, c.proj_hidden, c.proj_dim, "visual", c.head_batch_norm
        )
        self.motion_query = _with_head(
            self.motion, c.proj_hidden, c.proj_dim, "motion", c.head_batch_norm
        )
        self.visual_key = momentum.key_copy(self.visual_query, "visual_key")
        self.motion_key = momentum.key_copy(self.motion_query, "motion_key")
        self._momentum_pairs = [
            momentum.momentum_targets(self.visual_query, self.visual_key),
            momentum.momentum_targets(self.motion_query, self.motion_key),
        ]
        self.visual_queue = contrastive.KeyQueue(
            c.queue_size, c.proj_dim, seed=c.seed, name="visual_queue"
        )
        self.motion_queue = contrastive.KeyQueue(
            c.queue_size, c.proj_dim, seed=c.seed + 1, name="motion_queue"
        )
        self._backbone = keras.Model(
            self.visual.input,
            layers.L2Normalize(name="embedding")(self.visual.output),
            name="modist_backbone",
        )
        schedule = optim.warmup_cosine(c.learning_rate, c.steps, c.warmup_fraction)
        if c.optimizer == "adam":
            optimizer = keras.optimizers.Adam(schedule)
        else:
            optimizer = keras.optimizers.SGD(schedule, momentum=c.momentum, nesterov=True)
        self._optimizer = optim.loss_scaled(optimizer, c.precision)  # weight decay: train_step

    @property
    def encoders(self):
        return {"visual": self.visual_query, "motion": self.motion_query}

    def teacher_views(self) -> dict[str, views.View]:
        """The visual pathway on the window, and the motion pathway on its flow (or frame differences), each the mean
        over `eval_clips` clips of the window at the pathway's training stride."""
        c = self.config

        def motion(window):
            ex = views.motion_window(window, c.input_size)
            if c.motion == "diff":
                ex["diff"] = motion_lib.frame_differences(ex["rgb"], grey=c.differences == "grey")
            return views.strided_clips(ex[c.motion], c.flow_frames, c.flow_stride, c.eval_clips)

        return {
            "visual": views.visual(self.backbone, c.input_size, c.frames, c.stride, c.eval_clips),
            "motion": views.View(views.stack_mean(self.motion, c.eval_clips), motion),
        }

    @property
    def backbone(self):
        return self._backbone

    @property
    def optimizers(self):
        return {self.config.optimizer: self._optimizer}

    def checkpoint_items(self):
        items = super().checkpoint_items()
        items.update(
            visual_key=self.visual_key,
            motion_key=self.motion_key,
            visual_queue=self.visual_queue,
            motion_queue=self.motion_queue,
        )
        return items

    def _view(self, example, start, seed):
        c = self.config
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 5))
        ex = {
            k: tf.convert_to_tensor(example[k], tf.float32)[start : start + c.span]
            for k in self.input_keys
        }
        if c.scale_size:
            ex = augment.resize(ex, (c.scale_size, c.scale_size))
        ex = augment.random_crop(ex, (c.input_size, c.input_size), seeds[0])
        ex = augment.random_flip(ex, seeds[1])
        raw = ex["rgb"]
        if c.motion == "diff":
            ex["diff"] = motion_lib.frame_differences(raw, grey=c.differences == "grey")
        ex = augment.color_jitter(ex, seeds[2]) if c.jitter_prob else ex
        jittered = tf.random.stateless_uniform([], seeds[3]) < c.jitter_prob
        rgb = tf.where(jittered, ex["rgb"], raw)
        rgb = augment.random_grayscale(rgb, seeds[4], c.grayscale_prob)
        motion_key = "flow" if c.motion == "flow" else "diff"
        return {
            "rgb": rgb[:: c.stride][: c.frames],
            "motion": ex[motion_key][:: c.flow_stride][: c.flow_frames],
        }

    @tracing.as_written
    def prepare(self, example, seed):
        """Two views (query and key) of the clip at random times, or with `moment_negatives` both at the query's time,
        plus views of other moments [M, ...] (`rgb_moments`, `motion_moments`)."""
        c = self.config
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 5))
        length = tf.shape(example["rgb"])[0]
        tf.debugging.assert_greater_equal(
            length, c.span, message=f"clips need at least {c.span} frames"
        )
        starts = tf.random.stateless_uniform([2], seeds[0], 0, length - c.span + 1, dtype=tf.int32)
        key_start = starts[0] if c.moment_negatives else starts[1]
        view1 = self._view(example, starts[0], seeds[1])
        view2 = self._view(example, key_start, seeds[2])
        out = {
            "rgb1": view1["rgb"],
            "motion1": view1["motion"],
            "rgb2": view2["rgb"],
            "motion2": view2["motion"],
        }
        if c.moment_negatives:
            pick, *view_seeds = tf.unstack(
                tf.random.experimental.stateless_split(seeds[3], c.moment_negatives + 1)
            )
            moment_starts = momentum.distant_positions(
                length - c.span + 1, starts[0], c.moment_gap, c.moment_negatives, pick
            )
            moments = [
                self._view(example, s, s_seed)
                for s, s_seed in zip(tf.unstack(moment_starts), view_seeds)
            ]
            out["rgb_moments"] = tf.stack([m["rgb"] for m in moments])
            out["motion_moments"] = tf.stack([m["motion"] for m in moments])
        return out

    def _keys(self, key: keras.Model, views: tf.Tensor, moments: tf.Tensor | None, training: bool):
        """`key`'s codes of the key views [B, D] and, with moments [B, M, ...], of the moments [B, M, D] (else
        None), in one pass so that batch statistics mark neither."""
        if moments is not None:
            views = tf.concat([views, tf.reshape(moments, [-1, *moments.shape[2:]])], 0)
        codes = tf.stop_gradient(optim.f32(key(views, training=training)))
        if moments is None:
            return codes, None
        size = tf.shape(moments)[0]
        return codes[:size], tf.reshape(codes[size:], [size, moments.shape[1], -1])

    def losses(self, batch, global_batch_size, training=True):
        """Named losses (this replica's share of each global mean) and the keys to enqueue."""
        c = self.config
        q_v = optim.f32(self.visual_query(batch["rgb1"], training=training))
        q_m = optim.f32(self.motion_query(batch["motion1"], training=training))
        moments = c.moment_negatives > 0
        k_v, own_v = self._keys(
            self.visual_key, batch["rgb2"], batch["rgb_moments"] if moments else None, training
        )
        k_m, own_m = self._keys(
            self.motion_key,
            batch["motion2"],
            batch["motion_moments"] if moments else None,
            training,
        )

        def nce(query, key, queue, own_negatives):
            if c.negatives == "batch":
                return contrastive.info_nce_batch(query, key, c.temperature)
            return contrastive.info_nce_queue(
                query, key, queue.keys, c.temperature, own_negatives=own_negatives
            )

        cross_v, cross_m = k_v, k_m
        if c.cross_modal_keys == "same":
            cross_v = tf.stop_gradient(optim.f32(self.visual_key(batch["rgb1"], training=training)))
            cross_m = tf.stop_gradient(
                optim.f32(self.motion_key(batch["motion1"], training=training))
            )
        per = {
            "visual_visual": nce(q_v, k_v, self.visual_queue, own_v),
            "visual_motion": nce(q_v, cross_m, self.motion_queue, own_m),
            "motion_visual": nce(q_m, cross_v, self.visual_queue, own_v),
        }
        if c.motion_motion:
            per["motion_motion"] = nce(q_m, k_m, self.motion_queue, own_m)
        out = {
            name: distributed.global_mean(value, global_batch_size) for name, value in per.items()
        }
        out["total"] = c.visual_weight * out["visual_visual"] + c.flow_weight * tf.add_n(
            [v for k, v in out.items() if k != "visual_visual"]
        )
        return out, (k_v, k_m)

    @tracing.as_written
    def train_step(self, batch, global_batch_size):
        variables = self.visual_query.trainable_variables + self.motion_query.trainable_variables
        with tf.GradientTape() as tape:
            losses, (k_v, k_m) = self.losses(batch, global_batch_size)
        optim.apply_gradients(
            self._optimizer,
            losses["total"],
            tape,
            variables,
            self.config.clip_norm,
            weight_decay=self.config.weight_decay,
            decayed=optim.trainable_without_batch_norm([self.visual_query, self.motion_query]),
        )
        for keys, queries in self._momentum_pairs:
            contrastive.momentum_update(keys, queries, self.config.key_momentum)
        self.visual_queue.enqueue(k_v)
        self.motion_queue.enqueue(k_m)
        return losses


def build(config: MoDistConfig) -> MoDist:
    """MoDist from its config (see edge_ssl/configs/modist_*.py)."""
    with optim.precision_policy(config.precision):
        return MoDist(config)
