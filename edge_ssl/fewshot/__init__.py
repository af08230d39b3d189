"""Few-shot evaluation and fine-tuning: heads, the episode protocol, metrics."""
