"""CV-MIM, tiny: pose encoder variant 'tiny', batch 64 pairs, Adagrad 0.02, weights view 5 / disentangle 0.5 / prior 1."""

from edge_ssl.methods import cv_mim


def get_config() -> cv_mim.CvMimConfig:
    return cv_mim.CvMimConfig(preset="tiny", variant="tiny", global_batch_size=64, steps=500)
