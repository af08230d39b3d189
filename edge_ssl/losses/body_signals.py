"""Masked losses for body-signal targets ("What can you learn from your muscles", Ehsani et al., ICLR 2021).

Targets that are missing or ambiguous are -1 and never move the loss:
- gaze: Smooth-L1 (Huber, delta 1) between predicted and true normalised 2D gaze, over frames whose gaze is present;
- movement: binary cross-entropy with logits over (frame, limb) entries whose label is 0 or 1.
Each example's loss is the mean over its valid entries (0 when it has none), so that per-example values can be
reduced over the global batch with `distributed.global_mean`; the paper averages over all valid entries of the batch,
which weights examples by their number of valid entries instead.
"""

import tensorflow as tf


def _masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    axes = tf.range(1, tf.rank(values))
    total = tf.reduce_sum(values * mask, axis=axes)
    count = tf.reduce_sum(mask, axis=axes)
    return tf.math.divide_no_nan(total, count)


def masked_smooth_l1(predicted: tf.Tensor, target: tf.Tensor, delta: float = 1.0) -> tf.Tensor:
    """Gaze loss per example: Huber over frames whose target is present (no coordinate is -1).

    Args:
      predicted: float [B, T, 2].
      target: float [B, T, 2], -1 where missing.
      delta: Huber's delta (Smooth-L1: 1).

    Returns:
      float32 [B].
    """
    target = tf.cast(target, tf.float32)
    present = tf.cast(tf.reduce_all(target >= 0.0, axis=-1, keepdims=True), tf.float32)  # [B, T, 1]
    err = tf.abs(tf.cast(predicted, tf.float32) - target)
    huber = tf.where(err < delta, 0.5 * tf.square(err) / delta, err - 0.5 * delta)
    # Zero the error where the target is missing before it is used, so no gradient flows there either.
    huber = huber * present
    return _masked_mean(huber, tf.broadcast_to(present, tf.shape(huber)))


def masked_binary_cross_entropy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Movement loss per example: BCE with logits over entries whose label is 0 or 1 (-1 is masked out).

    Args:
      logits: float [B, T, L].
      labels: int or float [B, T, L] in {-1, 0, 1}.

    Returns:
      float32 [B].
    """
    labels = tf.cast(labels, tf.float32)
    valid = tf.cast(labels >= 0.0, tf.float32)
    loss = tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.maximum(labels, 0.0), logits=tf.cast(logits, tf.float32)
    )
    return _masked_mean(loss * valid, valid)
