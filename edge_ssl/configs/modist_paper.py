"""MoDist as in the paper's code defaults: Slow-only R50 8x8 visual, 16x4 flow motion pathway at 1/8 width,
queues of 65,536, tau 0.1, m 0.999, lambda_flow 1. Optimiser settings are the SlowFast-code-base defaults for
video MoCo (the paper's were not published): SGD (Nesterov) 0.1 x batch/256, cosine with warm-up, 200 epochs of K400.
"""

from edge_ssl.methods import modist


def get_config() -> modist.MoDistConfig:
    return modist.MoDistConfig(
        preset="paper",
        variant="paper",
        frames=8,
        stride=8,
        flow_frames=16,
        flow_stride=4,
        motion="flow",
        scale_size=256,
        global_batch_size=512,
        learning_rate=0.2,
        steps=200 * 240_000 // 512,
    )
