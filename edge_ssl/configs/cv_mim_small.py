"""CV-MIM, small: pose encoder variant 'small', batch 128 pairs, Adagrad 0.02, weights view 5 / disentangle 0.5 / prior 1."""

from edge_ssl.methods import cv_mim


def get_config() -> cv_mim.CvMimConfig:
    return cv_mim.CvMimConfig(preset="small", variant="small", global_batch_size=128, steps=20000)
