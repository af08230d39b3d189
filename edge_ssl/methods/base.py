"""The contract between a self-supervised method and the training engine (DESIGN.md, "Methods").

A method exposes the encoders it trains, the one encoder whose embedding is the representation (`backbone`: RGB clip
[B, T, H, W, 3] in [0, 1] -> L2-normalised float32 [B, D]; for pose methods, the pose sequence), the example keys it
needs, `prepare(example, seed)` that turns one contract example into what its step consumes (run inside
`Dataset.map`), and `train_step(batch, global_batch_size)` that returns named losses. The step belongs to the method
(CV-MIM needs three optimizers); the engine owns distribution, checkpoints, logging and the NaN guard. Every tensor a
step needs to resume (optimizers, momentum encoders, queues) is reachable from `checkpoint_items()`.
"""

import abc
import contextlib
import dataclasses
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from edge_ssl.keras import keras

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# What a method learns from: "video" (RGB clips, with flow or body signals: an RGB student can learn from it) or
# "pose" (2D keypoint sequences).
MODALITIES = ("video", "pose")


@dataclasses.dataclass(frozen=True)
class MethodConfig:
    """Fields every method config has. Method configs subclass it and validate in `__post_init__`."""

    method: str
    size: str
    seed: int = 0
    steps: int = 1000  # total training steps, for learning-rate schedules
    # Keras mixed-precision policy the method is built under: "float32", "mixed_float16" (GPUs; the optimizers get
    # dynamic loss scaling) or "mixed_bfloat16" (TPUs, recent CPUs). Losses are always computed in float32.
    precision: str = "float32"
    clip_norm: float | None = (
        None  # clip each optimizer's global-batch gradient to this global norm
    )

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.clip_norm is not None and self.clip_norm <= 0:
            raise ValueError(f"clip_norm must be positive (or None), got {self.clip_norm}")


class Method(tf.Module, abc.ABC):
    """A self-supervised objective with its encoders, optimizers and training step."""

    name: str = ""
    modality: str = "video"  # one of MODALITIES; the method module's MODALITY
    input_keys: tuple[str, ...] = ()

    def __init__(self, config: MethodConfig):
        super().__init__(name=config.method)
        self.config = config

    @property
    @abc.abstractmethod
    def encoders(self) -> dict[str, keras.Model]:
        """The trained networks by name (query encoders; momentum copies are not listed)."""

    @property
    @abc.abstractmethod
    def backbone(self) -> keras.Model:
        """The representation: a Keras model from the method's input to an L2-normalised embedding [B, D]."""

    @property
    @abc.abstractmethod
    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        """Optimizers by name; together they cover every trainable variable exactly once."""

    @abc.abstractmethod
    def prepare(self, example: dict[str, tf.Tensor], seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """One contract example -> one training input (augmentation included), with stateless `seed` [2]."""

    @abc.abstractmethod
    def train_step(
        self, batch: dict[str, tf.Tensor], global_batch_size: int
    ) -> dict[str, tf.Tensor]:
        """One optimisation step on this replica's `batch`; returns the replica's share of each named loss."""

    def checkpoint_items(self) -> dict[str, Any]:
        """What a checkpoint must hold to resume this method exactly (tf.train.Checkpoint keyword arguments)."""
        items: dict[str, Any] = {f"encoder_{k}": v for k, v in self.encoders.items()}
        items.update({f"optimizer_{k}": v for k, v in self.optimizers.items()})
        return items

    def variable_groups(self) -> dict[str, list[tf.Variable]]:
        """The variables each optimizer updates, keyed like `optimizers`.

        The default serves one optimizer over every encoder's trainable variables; methods with several optimizers
        (CV-MIM) say which variables each one owns.
        """
        if len(self.optimizers) != 1:
            raise NotImplementedError(
                f"{self.name} has several optimizers: it must define variable_groups()"
            )
        (name,) = self.optimizers
        return {name: [v for model in self.encoders.values() for v in model.trainable_variables]}

    def build_optimizers(self) -> None:
        """Creates every optimizer's slot variables now (call in the strategy's scope), so that restoring a checkpoint
        fills them before the first step; created lazily, they would start from zero after a resume.
        """
        groups = self.variable_groups()
        for name, optimizer in self.optimizers.items():
            optimizer.build(groups[name])

    def save_backbone(self, path: str) -> None:
        """Writes the backbone as a SavedModel at `path` (the engine writes to a temporary folder, then renames)."""
        self.backbone.save(path, save_format="tf", include_optimizer=False)

    def embed(self, inputs: tf.Tensor) -> tf.Tensor:
        """Embeddings of a batch of inputs with the backbone in inference mode."""
        return self.backbone(inputs, training=False)


@contextlib.contextmanager
def precision_policy(precision: str):
    """Keras's global dtype policy set to `precision` inside the block (networks built there compute in it), and
    restored afterwards, so building a mixed-precision method leaves later models in float32."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def warmup_cosine(
    learning_rate: float, steps: int, warmup_fraction: float
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warm-up from 0 over `warmup_fraction` of `steps`, then cosine decay to 0 at `steps`."""
    warmup = int(warmup_fraction * steps)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else learning_rate,
        decay_steps=max(steps - warmup, 1),
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def f32(outputs):
    """A network's outputs (a tensor or a structure of them) in float32: losses are computed in float32 whatever
    precision the networks compute in."""
    return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32), outputs)


def loss_scaled(
    optimizer: keras.optimizers.Optimizer, config: MethodConfig
) -> keras.optimizers.Optimizer:
    """`optimizer`, wrapped with dynamic loss scaling when the config trains in float16 (so small gradients do not
    underflow); unchanged otherwise. bfloat16 has float32's range and needs no scaling."""
    if config.precision == "mixed_float16":
        return keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer


def trainable_without_batch_norm(models: Sequence[keras.Model]) -> list[tf.Variable]:
    """The trainable variables of `models` except BatchNormalization's scale and offset: what SlowFast's optimizer
    (MoDist's code) decays, its `BN.WEIGHT_DECAY` being 0."""
    norms = {
        v.ref()
        for model in models
        for layer in model.submodules
        if isinstance(layer, keras.layers.BatchNormalization)
        for v in layer.trainable_variables
    }
    return [v for model in models for v in model.trainable_variables if v.ref() not in norms]


def apply_gradients(
    optimizer: keras.optimizers.Optimizer,
    loss: tf.Tensor,
    tape: tf.GradientTape,
    variables: list[tf.Variable],
    clip_norm: float | None = None,
    weight_decay: float = 0.0,
    decayed: Sequence[tf.Variable] | None = None,
) -> None:
    """Gradients of `loss` for `variables`, applied by `optimizer`; a variable without a gradient is an error.

    A missing gradient means the loss does not reach part of a trained network: a silent bug in a method.
    With a loss-scaling optimizer (mixed_float16) the gradient is taken of the scaled loss and unscaled before use;
    a step whose gradients overflow is skipped by the optimizer and the scale lowered. With `clip_norm` the gradients
    are first summed over replicas, so the global-batch gradient is clipped, as on one device, and then applied
    without a second aggregation.

    `weight_decay` is coupled L2, PyTorch's `SGD(weight_decay=...)` that the papers' code uses: the gradient of
    weight_decay / 2 |w|^2 in the loss, weight_decay * w, is added to the gradient of each variable in `decayed`
    (default: all of `variables`) before the optimizer (and its momentum) sees it, after clipping as in PyTorch. It
    is added once per global batch: under a strategy each replica adds 1 / num_replicas of it to the gradients that
    are summed. Keras's own `SGD(weight_decay=...)` is the decoupled form, w -= lr * weight_decay * w outside the
    momentum, which under momentum 0.9 decays about 10x less.
    """
    scaled = isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)
    if scaled:
        with tape:  # the tape records again: the scaling is part of the differentiated graph
            loss = optimizer.get_scaled_loss(loss)
    grads = tape.gradient(loss, variables)
    missing = [v.name for v, g in zip(variables, grads) if g is None]
    if missing:
        raise ValueError(
            f"no gradient reaches {len(missing)} trained variables, e.g. {missing[:3]}"
        )
    if scaled:
        grads = optimizer.get_unscaled_gradients(grads)
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    if clip_norm is None:
        grads = _with_weight_decay(grads, variables, weight_decay / replicas, decayed)
        optimizer.apply_gradients(zip(grads, variables))
        return
    grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    grads, _ = tf.clip_by_global_norm(grads, clip_norm)
    grads = _with_weight_decay(grads, variables, weight_decay, decayed)
    optimizer.apply_gradients(zip(grads, variables), skip_gradients_aggregation=True)


def _with_weight_decay(
    grads: list[tf.Tensor],
    variables: list[tf.Variable],
    weight_decay: float,
    decayed: Sequence[tf.Variable] | None,
) -> list[tf.Tensor]:
    """`grads` with weight_decay * w added for each variable w of `decayed` (every variable when None)."""
    if not weight_decay:
        return list(grads)
    chosen = None if decayed is None else {v.ref() for v in decayed}
    return [
        (
            tf.convert_to_tensor(g) + weight_decay * tf.cast(v, g.dtype)
            if chosen is None or v.ref() in chosen
            else g
        )
        for g, v in zip(grads, variables)
    ]
