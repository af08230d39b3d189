"""The pretraining engine: strategies, the training loop, checkpoints and summaries."""
