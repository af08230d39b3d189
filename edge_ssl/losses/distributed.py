"""What makes a loss correct under tf.distribute: global-batch scaling and negatives gathered across replicas."""

import tensorflow as tf


def global_mean(
    per_example: tf.Tensor, global_batch_size: int | tf.Tensor | None = None
) -> tf.Tensor:
    """This replica's share of the mean over the global batch: `sum(per_example) / global_batch_size`.

    Summed over replicas (as MirroredStrategy sums gradients) this is the mean over the global batch, so a step does
    not depend on how the batch is split. Outside a strategy, or with `global_batch_size=None`, it is the local batch
    size times the number of replicas in sync.

    Args:
      per_example: float [B_local] losses.
      global_batch_size: the batch size over all replicas.

    Returns:
      A float32 scalar.
    """
    per_example = tf.cast(per_example, tf.float32)
    if global_batch_size is None:
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        global_batch_size = tf.shape(per_example)[0] * replicas
    return tf.reduce_sum(per_example) / tf.cast(global_batch_size, tf.float32)


def gather_across_replicas(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """All replicas' `x` concatenated on axis 0, and where this replica's rows start in it.

    The gather is differentiable: its gradient sums the replicas' gradients for each replica's rows, so the gradient
    of a loss over the gathered batch is the one-device gradient, however the batch is split. Wrap `x` in
    `tf.stop_gradient` for keys that must stay constants (MoCo).

    Returns:
      (gathered [B_local * replicas, ...], offset int32 scalar). Without a strategy: (x, 0).
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x, tf.constant(0, tf.int32)
    offset = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * tf.shape(x)[0]
    return ctx.all_gather(x, axis=0), offset


def sum_across_replicas(x: tf.Tensor) -> tuple[tf.Tensor, int]:
    """(the sum of `x` over replicas, on every replica; the number of replicas). Differentiable.

    For quantities that are a function of a global sum, such as a floor applied to a global mean.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x, 1
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x), ctx.num_replicas_in_sync
