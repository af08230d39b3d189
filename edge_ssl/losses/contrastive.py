"""Contrastive losses: InfoNCE against a MoCo queue or against the batch, the queue itself, the momentum update.

He et al., "Momentum Contrast for Unsupervised Visual Representation Learning" (MoCo), CVPR 2020, as used by MoDist
(Xiao et al., arXiv 2106.09703) and by "What can you learn from your muscles" (Ehsani et al., ICLR 2021):

    NCE(q, k+, Q) = -log( exp(q.k+ / tau) / (exp(q.k+ / tau) + sum_{n in Q} exp(q.n / tau)) )

with q, k+ and the queue rows L2-normalised. In practice: cross-entropy over logits [q.k+, q.Q] / tau with target 0.
"""

import tensorflow as tf

from edge_ssl.losses import distributed


def info_nce_queue(
    query: tf.Tensor,
    positive_key: tf.Tensor,
    queue: tf.Tensor,
    temperature: float,
    own_negatives: tf.Tensor | None = None,
) -> tf.Tensor:
    """NCE(q, k+, Q) per example; the keys and queue are constants (no gradient), as in MoCo.

    Args:
      query: float [B, D], L2-normalised.
      positive_key: float [B, D], L2-normalised; row i is query i's positive.
      queue: float [K, D], L2-normalised negatives.
      temperature: tau.
      own_negatives: optional float [B, M, D], L2-normalised: negatives of query i alone (row i), beside the queue
        (for example keys of other moments of the query's own clip).

    Returns:
      float32 [B] losses.
    """
    positive_key = tf.stop_gradient(positive_key)
    queue = tf.stop_gradient(queue)
    l_pos = tf.reduce_sum(query * positive_key, axis=-1, keepdims=True)  # [B, 1]
    l_neg = [tf.matmul(query, queue, transpose_b=True)]  # [B, K]
    if own_negatives is not None:
        l_neg.append(tf.einsum("bd,bmd->bm", query, tf.stop_gradient(own_negatives)))  # [B, M]
    logits = tf.concat([l_pos, *l_neg], axis=1) / temperature
    labels = tf.zeros(tf.shape(query)[:1], tf.int32)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def info_nce_batch(query: tf.Tensor, key: tf.Tensor, temperature: float) -> tf.Tensor:
    """InfoNCE with the other keys of the global batch as negatives (MoCo v3 style), per example.

    Keys are gathered from every replica and the positive of local query i sits at `offset + i`, so the loss is the
    same however the global batch is split.

    Args:
      query: float [B, D], L2-normalised.
      key: float [B, D], L2-normalised; row i is query i's positive. Treated as a constant.
      temperature: tau.

    Returns:
      float32 [B] losses.
    """
    all_keys, offset = distributed.gather_across_replicas(tf.stop_gradient(key))
    logits = tf.matmul(query, all_keys, transpose_b=True) / temperature
    labels = tf.range(tf.shape(query)[0], dtype=tf.int32) + offset
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


class KeyQueue(tf.Module):
    """MoCo's queue of past keys: a FIFO ring buffer of K rows, identical on every replica.

    Under a strategy, every replica enqueues the keys gathered from all replicas (the same values), and the variables'
    ONLY_FIRST_REPLICA aggregation keeps one copy of the write.
    """

    def __init__(self, size: int, dim: int, seed: int = 0, name: str | None = None):
        super().__init__(name=name)
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and dim must be positive, got {size} and {dim}")
        self.size = size
        self.dim = dim
        initial = tf.math.l2_normalize(
            tf.random.stateless_normal([size, dim], seed=[seed, 0]), axis=1
        )
        self.keys = tf.Variable(
            initial,
            trainable=False,
            name="keys",
            synchronization=tf.VariableSynchronization.ON_WRITE,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        self.pointer = tf.Variable(
            0,
            dtype=tf.int64,
            trainable=False,
            name="pointer",
            synchronization=tf.VariableSynchronization.ON_WRITE,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )

    def enqueue(self, keys: tf.Tensor) -> None:
        """Writes this step's keys (from all replicas) over the oldest rows; more than `size` keeps the newest."""
        keys, _ = distributed.gather_across_replicas(tf.stop_gradient(keys))
        keys = tf.cast(keys, self.keys.dtype)[-self.size :]
        count = tf.shape(keys, out_type=tf.int64)[0]
        rows = (self.pointer + tf.range(count, dtype=tf.int64)) % self.size
        # A whole-tensor assign: mirrored variables have no scatter updates.
        self.keys.assign(tf.tensor_scatter_nd_update(self.keys, rows[:, None], keys))
        self.pointer.assign((self.pointer + count) % self.size)


def momentum_update(target: list[tf.Variable], source: list[tf.Variable], momentum: float) -> None:
    """The momentum (key) encoder's update, for every weight: target <- m target + (1 - m) source.

    Works eagerly, in a tf.function and inside `strategy.run`: in a replica context the update is made once, in the
    cross-replica context, on every copy of the mirrored variables.
    """
    if len(target) != len(source):
        raise ValueError(
            f"momentum update needs matching variables, got {len(target)} and {len(source)}"
        )

    def update(t, s):
        return t.assign(momentum * t + (1.0 - momentum) * s)

    ctx = tf.distribute.get_replica_context()
    if ctx is None or not tf.distribute.has_strategy() or ctx.num_replicas_in_sync == 1:
        for t, s in zip(target, source):
            update(t, s)
        return

    def cross_replica(strategy):
        for t, s in zip(target, source):
            strategy.extended.update(t, update, args=(s,))

    ctx.merge_call(cross_replica)
