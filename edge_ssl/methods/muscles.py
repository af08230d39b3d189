"""Muscles: visual representations from body signals ("muscly supervision").

Ehsani, Gordon, Nguyen, Mottaghi and Farhadi, "What Can You Learn from Your Muscles? Learning Visual Representation
from Human Interactions", ICLR 2021 (code: ehsanik/muscleTorch). A 2D frame encoder (ResNet-18) is trained with
MoCo on single frames and, through sequence heads over 5-frame clips, to predict body signals: where the person looks
(gaze) and which limbs move (IMU "moved" flags; in the synthetic world, `moved` per limb of `keypoints.LIMBS`):

    q = l2(W f(x1)),  k = l2(W' f'(x2))         two augmentations of a clip's first frame; f', W' momentum copies
    L_moco = NCE(q, k, Q)                        InfoNCE against the queue Q of past keys, tau 0.07
    maps_t = layer4(f(clip_t)) -> 1x1 conv 64 -> LeakyReLU -> Dropout 0.5 -> flatten     (shared by both heads)
    gaze_t, moved_t = MLP(RNN(maps))             per head: encoder LSTM whose final states start a decoder LSTM
    L_gaze  = Smooth-L1(gaze_t, g_t) over frames with gaze;  L_move = BCE(moved_t, m_t) over labels != -1
    L = 0.09 L_moco + 0.90 L_gaze + 0.009 L_move   (ablations: 0.10 / 0.90 MoCo + gaze; 0.95 / 0.5 MoCo + movement)

The representation (`backbone`) is the frame encoder's pooled features, averaged over a clip's frames and
L2-normalised; the heads, the key encoder and the queue are training-only.

Differences from the paper:
- targets are the synthetic world's 8 limbs instead of 6 IMUs; body-signal losses average over each example's valid
  entries, then over the global batch (the paper averages over all valid entries of the batch);
- the queue starts as random unit vectors (`contrastive.KeyQueue`) instead of uniform in +-1/sqrt(128/3);
- no shuffle-BN (one device, or per-replica BN under a strategy); the key encoder normalises with its own batch
  statistics, as MoCo's does (`layers.MomentumBatchNormalization`);
- RandomResizedCrop falls back to the whole frame (TensorFlow's bounding-box sampler) where torchvision centre-crops;
- the 1x1 convolution is a Dense over channels (the same map); flattening is (h, w, c) instead of (c, h, w);
- the learning rate decays by `lr_decay` every `lr_decay_fraction` of `steps` (the paper: x0.1 at epochs 50, 100
  and 150 of runs stopped by hand);
- reduced presets (`small`, `tiny`) use a smaller ResNet and one recurrent layer that returns sequences;
- the `small` preset trains on the movement head alone (MoCo + movement with MoCo's weight 0, movement 1) at a
  constant learning rate: on the synthetic world the paper's weights leave the frame encoder at chance, and MoCo on
  single frames pulls it towards appearance (measured in benchmarks/README.md, "What pretraining adds");
- an option the paper lacks, off by default: `moment_negatives` other frames of the query's own clip as extra
  negatives of that query, keyed in the same pass as the positives (so the batch statistics give them away no more
  than the positives).
"""

import dataclasses

import tensorflow as tf

from edge_ssl import tracing
from edge_ssl.data import augment, keypoints
from edge_ssl.keras import keras
from edge_ssl.losses import body_signals, contrastive, distributed
from edge_ssl.methods import base, momentum, views
from edge_ssl.models import frame_resnet, layers
from edge_ssl.train import optim

MODALITY = "video"  # what the method learns from (base.MODALITIES)
# Loss weights per objective, from the paper's code (MoCoGazeIMULoss, MocoGazeLoss, MocoImuLoss).
OBJECTIVES = {
    "full": {"moco": 0.09, "gaze": 0.90, "movement": 0.009},
    "moco_gaze": {"moco": 0.10, "gaze": 0.90},
    "moco_movement": {"moco": 0.95, "movement": 0.5},
}
CELLS = ("lstm", "gru")
# PyTorch's LeakyReLU slope (Keras's default is 0.3).
LEAKY_SLOPE = 0.01


@dataclasses.dataclass(frozen=True)
class MusclesConfig(base.MethodConfig):
    method: str = "muscles"
    preset: str = "tiny"
    variant: str = "tiny"  # frame ResNet: paper (ResNet-18) | small | tiny
    objective: str = "full"  # full | moco_gaze | moco_movement
    moco_weight: float | None = None  # None: the objective's weight from the paper
    gaze_weight: float | None = None
    movement_weight: float | None = None
    clip_frames: int = 5
    frame_stride: int = 1  # consecutive frames, as the paper's `skipping_frames = 1`
    num_limbs: int = keypoints.NUM_LIMBS
    proj_dim: int = 128
    queue_size: int = 16384
    temperature: float = 0.07
    key_momentum: float = 0.999
    pointwise_channels: int = 64
    cell: str = "lstm"
    recurrent_layers: int = 3
    recurrent_units: int = 512
    encoder_decoder: bool = (
        True  # encoder RNN whose final states start a decoder RNN (the paper), else one RNN
    )
    mlp_hidden: int = 100
    dropout: float = 0.5
    learning_rate: float = 5e-4
    lr_decay: float = 0.1
    lr_decay_fraction: float = 0.25  # of `steps` between decays
    jitter_prob: float = 0.8  # MoCo stream
    grayscale_prob: float = 0.2  # both streams
    sequence_flip_prob: float = 0.3
    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (0.7, 1.4)
    # Keys of other moments of the query frame's own clip, at least `moment_gap` frames from it, as negatives of that
    # query alone beside the queue: the same person, clothes, room and camera in another pose, so that MoCo cannot be
    # met by appearance alone (a departure from the paper, measured in benchmarks/README.md, "What pretraining
    # adds"). 0, the paper's: the queue only.
    moment_negatives: int = 0
    moment_gap: int = 4
    global_batch_size: int = 256

    def __post_init__(self):
        super().__post_init__()
        terms = OBJECTIVES.get(self.objective, {})
        explicit = {
            "moco": self.moco_weight,
            "gaze": self.gaze_weight,
            "movement": self.movement_weight,
        }
        stray = sorted(k for k, w in explicit.items() if w is not None and k not in terms)
        checks = (
            (
                self.variant in frame_resnet.VARIANTS,
                f"variant must be one of {sorted(frame_resnet.VARIANTS)}",
            ),
            (self.objective in OBJECTIVES, f"objective must be one of {sorted(OBJECTIVES)}"),
            (not stray, f"objective {self.objective!r} has no term for the weights of {stray}"),
            (
                all(w is None or w >= 0 for w in explicit.values()),
                "loss weights must be >= 0",
            ),
            (self.clip_frames >= 1 and self.frame_stride >= 1, "clip_frames and frame_stride >= 1"),
            (self.num_limbs >= 1, "num_limbs must be >= 1"),
            (self.queue_size >= 1 and self.proj_dim >= 1, "queue_size and proj_dim must be >= 1"),
            (self.temperature > 0, "temperature must be positive"),
            (0.0 <= self.key_momentum < 1.0, "key_momentum must be in [0, 1)"),
            (self.cell in CELLS, f"cell must be one of {CELLS}"),
            (
                min(
                    self.pointwise_channels,
                    self.recurrent_layers,
                    self.recurrent_units,
                    self.mlp_hidden,
                )
                >= 1,
                "pointwise_channels, recurrent_layers, recurrent_units and mlp_hidden must be >= 1",
            ),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (self.learning_rate > 0, "learning_rate must be positive"),
            (0.0 < self.lr_decay <= 1.0, "lr_decay must be in (0, 1]"),
            (0.0 < self.lr_decay_fraction <= 1.0, "lr_decay_fraction must be in (0, 1]"),
            (
                all(
                    0.0 <= p <= 1.0
                    for p in (self.jitter_prob, self.grayscale_prob, self.sequence_flip_prob)
                ),
                "probabilities must be in [0, 1]",
            ),
            (
                0.0 < self.crop_scale[0] <= self.crop_scale[1] <= 1.0,
                "crop_scale must be 0 < min <= max <= 1",
            ),
            (0.0 < self.crop_ratio[0] <= self.crop_ratio[1], "crop_ratio must be 0 < min <= max"),
            (
                self.moment_negatives >= 0 and self.moment_gap >= 1,
                "moment_negatives must be >= 0 and moment_gap >= 1",
            ),
            (self.global_batch_size >= 1, "global_batch_size must be >= 1"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"muscles config: {message}")

    @property
    def input_size(self) -> int:
        return frame_resnet.VARIANTS[self.variant].input_size

    @property
    def span(self) -> int:
        """Raw frames one clip covers."""
        return (self.clip_frames - 1) * self.frame_stride + 1

    @property
    def loss_weights(self) -> dict[str, float]:
        """Weight of each term of the objective: the explicit ones, else the paper's."""
        explicit = {
            "moco": self.moco_weight,
            "gaze": self.gaze_weight,
            "movement": self.movement_weight,
        }
        return {
            term: (paper if explicit[term] is None else float(explicit[term]))
            for term, paper in OBJECTIVES[self.objective].items()
        }


def _recurrent(x, cell: str, num_layers: int, units: int, encoder_decoder: bool, name: str):
    rnn = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    if not encoder_decoder:
        for i in range(num_layers):
            x = rnn(units, return_sequences=True, name=f"{name}_rnn{i}")(x)
        return x
    # The paper's encoder-decoder: layer i of the decoder starts from layer i's final state of the encoder, and the
    # decoder reads the same sequence again (nn.LSTM(num_layers) with (h0, c0) from the encoder).
    states, h = [], x
    for i in range(num_layers):
        out = rnn(
            units,
            return_sequences=i < num_layers - 1,
            return_state=True,
            name=f"{name}_encoder{i}",
        )(h)
        h, state = out[0], list(out[1:])
        states.append(state)
    h = x
    for i in range(num_layers):
        h = rnn(units, return_sequences=True, name=f"{name}_decoder{i}")(h, initial_state=states[i])
    return h


def signal_heads(
    map_shape: tuple[int, int, int],
    frames: int,
    outputs: dict[str, int],
    pointwise_channels: int = 64,
    cell: str = "lstm",
    recurrent_layers: int = 3,
    recurrent_units: int = 512,
    encoder_decoder: bool = True,
    mlp_hidden: int = 100,
    dropout: float = 0.5,
    name: str = "signal_heads",
) -> keras.Model:
    """The sequence heads: per-frame layer4 maps [B, T, h, w, C] -> {head: per-frame outputs [B, T, n]}.

    A pointwise projection (1x1 conv) -> LeakyReLU -> Dropout, shared by the heads, flattened per frame; then, per
    head, its own recurrent encoder(-decoder) and MLP (hidden -> LeakyReLU -> Dropout -> n).

    Args:
      map_shape: (h, w, C) of the layer4 map.
      frames: clip length T (static, for export).
      outputs: output size per head, e.g. {"gaze": 2, "moved": 8}.
      pointwise_channels: channels of the 1x1 projection.
      cell: "lstm" or "gru".
      recurrent_layers: stacked recurrent layers (in the encoder and in the decoder).
      recurrent_units: hidden size.
      encoder_decoder: the paper's encoder-decoder pair, else one stack returning sequences.
      mlp_hidden: hidden width of the output MLP.
      dropout: dropout rate after the projection and in the MLP.
      name: model and layer-name prefix.

    Returns:
      A functional keras.Model with a dict of outputs.
    """
    inputs = keras.Input((frames, *map_shape), name=f"{name}_input")
    # A 1x1 convolution is a Dense over the channel axis.
    x = keras.layers.Dense(pointwise_channels, name=f"{name}_pointwise")(inputs)
    x = keras.layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_pointwise_act")(x)
    x = keras.layers.Dropout(dropout, name=f"{name}_pointwise_drop")(x)
    x = keras.layers.Reshape(
        (frames, map_shape[0] * map_shape[1] * pointwise_channels), name=f"{name}_flatten"
    )(x)
    out = {}
    for head, size in outputs.items():
        h = _recurrent(
            x, cell, recurrent_layers, recurrent_units, encoder_decoder, f"{name}_{head}"
        )
        h = keras.layers.Dense(mlp_hidden, name=f"{name}_{head}_fc1")(h)
        h = keras.layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_{head}_act")(h)
        h = keras.layers.Dropout(dropout, name=f"{name}_{head}_drop")(h)
        out[head] = keras.layers.Dense(size, name=f"{name}_{head}_out")(h)
    return keras.Model(inputs, out, name=name)


def _random_resized_crop(
    image: tf.Tensor,
    size: int,
    seed: tf.Tensor,
    scale: tuple[float, float],
    ratio: tuple[float, float],
) -> tf.Tensor:
    """torchvision's RandomResizedCrop on one image [H, W, 3]: a box of area fraction in `scale` and aspect ratio
    (width / height) in `ratio`, resized to `size` x `size`."""
    begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=ratio,
        area_range=scale,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.image.resize(tf.slice(image, begin, extent), (size, size), method="bilinear")


class Muscles(base.Method):
    """Frame encoder + MoCo projection (query), its momentum key copy and queue, and the body-signal heads."""

    name = "muscles"
    modality = MODALITY
    input_keys = ("rgb", "moved", "gaze")

    def __init__(self, config: MusclesConfig):
        super().__init__(config)
        c = config
        self.frame = frame_resnet.frame_resnet(c.variant, name="frame")
        pooled, _ = self.frame.outputs
        projection = keras.layers.Dense(c.proj_dim, name="moco_fc")(pooled)
        self.query = keras.Model(
            self.frame.input,
            layers.L2Normalize(name="moco_l2")(projection),
            name="muscles_query",
        )
        self.key = momentum.key_copy(self.query, "muscles_key")
        self._momentum_pairs = momentum.momentum_targets(self.query, self.key)
        self.queue = contrastive.KeyQueue(c.queue_size, c.proj_dim, seed=c.seed, name="queue")
        self._map_shape = frame_resnet.layer4_shape(c.variant)
        terms = c.loss_weights
        outputs = {}
        if "gaze" in terms:
            outputs["gaze"] = 2
        if "movement" in terms:
            outputs["moved"] = c.num_limbs
        self.heads = signal_heads(
            self._map_shape,
            c.clip_frames,
            outputs,
            pointwise_channels=c.pointwise_channels,
            cell=c.cell,
            recurrent_layers=c.recurrent_layers,
            recurrent_units=c.recurrent_units,
            encoder_decoder=c.encoder_decoder,
            mlp_hidden=c.mlp_hidden,
            dropout=c.dropout,
            name="signal_heads",
        )
        self._backbone = self._build_backbone()
        schedule = keras.optimizers.schedules.ExponentialDecay(
            c.learning_rate,
            decay_steps=max(int(c.lr_decay_fraction * c.steps), 1),
            decay_rate=c.lr_decay,
            staircase=True,  # step decay, as torch's StepLR
        )
        # PyTorch's Adam epsilon (Keras's default is 1e-7).
        self._optimizer = optim.loss_scaled(
            keras.optimizers.Adam(schedule, epsilon=1e-8), c.precision
        )
        # Slots made now, not inside the first traced step: a tf.function that creates variables traces twice.
        self._optimizer.build(self.trainable_variables_to_train())

    def _build_backbone(self) -> keras.Model:
        c = self.config
        pooled = keras.Model(self.frame.input, self.frame.outputs[0], name="frame_pooled")
        clip = keras.Input((c.clip_frames, c.input_size, c.input_size, 3), name="clip")
        x = keras.layers.TimeDistributed(pooled, name="per_frame")(clip)
        x = layers.MeanOverTime(name="mean_over_time")(x)
        return keras.Model(clip, layers.L2Normalize(name="embedding")(x), name="muscles_backbone")

    @property
    def encoders(self):
        return {"query": self.query, "heads": self.heads}

    def teacher_views(self) -> dict[str, views.View]:
        """The frame encoder averaged over the window's frames (Muscles has no motion pathway)."""
        c = self.config
        return {"visual": views.visual(self.backbone, c.input_size, c.clip_frames)}

    @property
    def backbone(self):
        return self._backbone

    @property
    def optimizers(self):
        return {"adam": self._optimizer}

    def checkpoint_items(self):
        items = super().checkpoint_items()
        items.update(key=self.key, queue=self.queue)
        return items

    def _sequence_view(self, clip, seed):
        """The 5-frame stream: resize, colour jitter, grayscale, and a flip that the targets follow."""
        c = self.config
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
        ex = augment.resize(clip, (c.input_size, c.input_size))
        ex = augment.color_jitter(ex, seeds[0], 0.4, 0.4, 0.4, 0.2)
        ex["rgb"] = augment.random_grayscale(ex["rgb"], seeds[1], c.grayscale_prob)
        # horizontal_flip swaps left/right limbs in `moved` and mirrors gaze x with the pixels.
        return augment.random_flip(ex, seeds[2], prob=c.sequence_flip_prob)

    def _moco_view(self, frame, seed):
        """One MoCo augmentation of a frame [H, W, 3]."""
        c = self.config
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 5))
        rgb = _random_resized_crop(frame, c.input_size, seeds[0], c.crop_scale, c.crop_ratio)
        jittered = augment.color_jitter({"rgb": rgb}, seeds[1], 0.4, 0.4, 0.4, 0.4)["rgb"]
        rgb = tf.where(tf.random.stateless_uniform([], seeds[2]) < c.jitter_prob, jittered, rgb)
        rgb = augment.random_grayscale(rgb, seeds[3], c.grayscale_prob)
        return augment.random_flip({"rgb": rgb}, seeds[4])["rgb"]

    @tracing.as_written
    def prepare(self, example, seed):
        """A clip of `clip_frames` with its targets, two MoCo views of its first frame and, with `moment_negatives`,
        MoCo views of other frames of the clip (`moments`)."""
        c = self.config
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
        rgb = tf.convert_to_tensor(example["rgb"], tf.float32)
        length = tf.shape(rgb)[0]
        tf.debugging.assert_greater_equal(
            length, c.span, message=f"clips need at least {c.span} frames"
        )
        start = tf.random.stateless_uniform([], seeds[0], 0, length - c.span + 1, dtype=tf.int32)
        window = slice(start, start + c.span, c.frame_stride)
        clip = {
            "rgb": rgb[window],
            "moved": tf.cast(example["moved"], tf.int32)[window],
            "gaze": tf.cast(example["gaze"], tf.float32)[window],
        }
        seq = self._sequence_view(clip, seeds[1])
        out = {
            "clip": seq["rgb"],
            "moved": seq["moved"],
            "gaze": seq["gaze"],
            "frame1": self._moco_view(clip["rgb"][0], seeds[2]),
            "frame2": self._moco_view(clip["rgb"][0], seeds[3]),
        }
        if c.moment_negatives:
            out["moments"] = self._moments(rgb, start, seeds[3])
        return out

    def _moments(self, rgb, start, seed):
        """MoCo views [M, S, S, 3] of `moment_negatives` distinct frames of the clip, each at least `moment_gap`
        frames from the query's frame `start`."""
        c = self.config
        pick, *view_seeds = tf.unstack(
            tf.random.experimental.stateless_split(
                tf.random.experimental.stateless_fold_in(seed, 1), c.moment_negatives + 1
            )
        )
        picked = momentum.distant_positions(
            tf.shape(rgb)[0], start, c.moment_gap, c.moment_negatives, pick
        )
        frames = tf.gather(rgb, picked)
        return tf.stack([self._moco_view(f, s) for f, s in zip(tf.unstack(frames), view_seeds)])

    def predict_signals(self, clip: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        """The heads' per-frame outputs for clips [B, T, S, S, 3]: `gaze` [B, T, 2] and/or `moved` logits [B, T, L]."""
        c = self.config
        _, maps = self.frame(
            tf.reshape(clip, [-1, c.input_size, c.input_size, 3]), training=training
        )
        maps = tf.reshape(maps, [-1, c.clip_frames, *self._map_shape])
        return optim.f32(self.heads(maps, training=training))

    def losses(self, batch, global_batch_size, training=True):
        """Named losses (this replica's share of each global mean, weighted `total`) and the keys to enqueue."""
        c = self.config
        q = optim.f32(self.query(batch["frame1"], training=training))
        frames = batch["frame2"]
        if c.moment_negatives:
            # One key pass for the positives and the moments, so that both carry the same batch statistics.
            moments = batch["moments"]
            frames = tf.concat([frames, tf.reshape(moments, [-1, *moments.shape[2:]])], 0)
        keys = tf.stop_gradient(optim.f32(self.key(frames, training=training)))
        size = tf.shape(q)[0]
        k, own = keys[:size], None
        if c.moment_negatives:
            own = tf.reshape(keys[size:], [size, c.moment_negatives, -1])
        per = {
            "moco": contrastive.info_nce_queue(
                q, k, self.queue.keys, c.temperature, own_negatives=own
            )
        }
        signals = self.predict_signals(batch["clip"], training=training)
        if "gaze" in signals:
            per["gaze"] = body_signals.masked_smooth_l1(signals["gaze"], batch["gaze"])
        if "moved" in signals:
            per["movement"] = body_signals.masked_binary_cross_entropy(
                signals["moved"], batch["moved"]
            )
        out = {
            name: distributed.global_mean(value, global_batch_size) for name, value in per.items()
        }
        out["total"] = tf.add_n([w * out[term] for term, w in c.loss_weights.items()])
        return out, k

    def trainable_variables_to_train(self) -> list[tf.Variable]:
        """What the optimizer updates: the frame encoder, the MoCo projection and the heads."""
        return self.query.trainable_variables + self.heads.trainable_variables

    @tracing.as_written
    def train_step(self, batch, global_batch_size):
        variables = self.trainable_variables_to_train()
        with tf.GradientTape() as tape:
            losses, keys = self.losses(batch, global_batch_size)
        optim.apply_gradients(
            self._optimizer, losses["total"], tape, variables, self.config.clip_norm
        )
        contrastive.momentum_update(*self._momentum_pairs, self.config.key_momentum)
        self.queue.enqueue(keys)
        return losses


def build(config: MusclesConfig) -> Muscles:
    """Muscles from its config (see edge_ssl/configs/muscles_*.py)."""
    with optim.precision_policy(config.precision):
        return Muscles(config)
