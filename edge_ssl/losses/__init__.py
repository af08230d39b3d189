"""Losses as pure functions of tensors (state, such as a MoCo queue, lives in a small tf.Module).

Every loss returns per-example values; `distributed.global_mean` turns them into the replica's share of the mean over
the global batch, so that summing the replicas' losses (what a strategy does to gradients) gives the global mean.
"""
