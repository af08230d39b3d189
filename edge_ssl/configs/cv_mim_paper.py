"""CV-MIM, paper: pose encoder variant 'paper', batch 256 pairs, Adagrad 0.02, weights view 5 / disentangle 0.5 / prior 1."""

from edge_ssl.methods import cv_mim


def get_config() -> cv_mim.CvMimConfig:
    return cv_mim.CvMimConfig(preset="paper", variant="paper", global_batch_size=256, steps=500000)
