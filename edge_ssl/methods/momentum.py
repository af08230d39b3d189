"""MoCo's momentum (key) encoders and negatives, shared by the methods that use them (MoDist, Muscles).

He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020: the key encoder is a copy
of the query encoder that no optimizer trains; after each step its weights move towards the query's
(`contrastive.momentum_update`), and it runs in training mode, normalising with its own batch statistics.

`distant_positions` picks the other moments of a query's own clip that both methods can add as that query's negatives
(`moment_negatives`, a departure from the papers): the same person, clothes, room and camera in another pose.
"""

import tensorflow as tf

from edge_ssl.keras import keras
from edge_ssl.models import layers


def _clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
    # A frozen Keras BN would ignore `training=True` and use moving statistics the key never learns (mean 0,
    # variance 1), so its codes would differ from the queries' at every layer.
    if isinstance(layer, keras.layers.BatchNormalization):
        return layers.MomentumBatchNormalization.from_config(layer.get_config())
    return layer.__class__.from_config(layer.get_config())


def key_copy(query: keras.Model, name: str) -> keras.Model:
    """A momentum copy of `query`: same weights, no trainable variables, BN in training mode on batch statistics."""
    key = keras.models.clone_model(query, clone_function=_clone_layer)
    key._name = name  # pylint: disable=protected-access
    key.set_weights(query.get_weights())
    key.trainable = False  # no optimizer ever sees it: it moves only by the momentum update
    return key


def momentum_targets(
    query: keras.Model, key: keras.Model
) -> tuple[list[tf.Variable], list[tf.Variable]]:
    """(key weights, query weights) for every trainable query weight, matched layer by layer and by name.

    BN moving statistics are not averaged: the key encoder's own forward passes update them, as in MoCo.
    """
    keys, queries = [], []
    for q_layer, k_layer in zip(query.layers, key.layers):
        k_by_name = {w.name.split("/")[-1]: w for w in k_layer.weights}
        for q in q_layer.trainable_weights:
            k = k_by_name.get(q.name.split("/")[-1])
            if k is None or k.shape != q.shape:
                raise ValueError(f"key encoder has no weight matching {q.name}")
            keys.append(k)
            queries.append(q)
    return keys, queries


def distant_positions(
    count: tf.Tensor, anchor: tf.Tensor, gap: int, number: int, seed: tf.Tensor
) -> tf.Tensor:
    """`number` distinct positions in [0, count), each at least `gap` from `anchor`, drawn uniformly.

    Args:
      count: int32 scalar, the number of positions (frames, or clip starts) to choose from.
      anchor: int32 scalar, the query's position.
      gap: the smallest distance from `anchor`.
      number: how many positions to return.
      seed: stateless seed [2].

    Returns:
      int32 [number], in random order.

    Raises:
      tf.errors.InvalidArgumentError: when fewer than `number` positions are `gap` or more from `anchor`.
    """
    far = tf.abs(tf.range(count) - anchor) >= gap
    tf.debugging.assert_greater_equal(
        tf.reduce_sum(tf.cast(far, tf.int32)),
        number,
        message=f"clips need {number} positions at least {gap} frames from the query's",
    )
    # Distinct positions: the far ones with the largest random scores.
    scores = tf.where(far, tf.random.stateless_uniform([count], seed), -1.0)
    return tf.math.top_k(scores, number).indices
