"""Training mechanics shared by every method's step and the distiller: the precision policy, the learning-rate
schedule, loss scaling, float32 losses and gradient application with coupled weight decay and global-norm clipping.
"""

import contextlib
from collections.abc import Sequence

import tensorflow as tf

from edge_ssl.keras import keras

# The optimizers a method config can name (`optimizer`); momentum SGD is the papers'.
OPTIMIZERS = ("sgd", "adam")


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
    optimizer: keras.optimizers.Optimizer, precision: str
) -> keras.optimizers.Optimizer:
    """`optimizer`, wrapped with dynamic loss scaling when training in `precision` "mixed_float16" (so small
    gradients do not underflow); unchanged otherwise. bfloat16 has float32's range and needs no scaling.
    """
    if precision == "mixed_float16":
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
