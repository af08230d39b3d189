"""MoDist for tests: tiny Slow-only ResNet on the tiny synthetic world (8 frames, 32 px), frame differences."""

from edge_ssl.methods import modist


def get_config() -> modist.MoDistConfig:
    return modist.MoDistConfig(
        preset="tiny",
        variant="tiny",
        frames=4,
        stride=1,
        flow_frames=4,
        flow_stride=1,
        motion_width_divisor=1,
        motion="diff",
        proj_hidden=64,
        proj_dim=32,
        queue_size=256,
        temperature=0.1,
        key_momentum=0.99,
        learning_rate=0.05,
        scale_size=36,
        global_batch_size=16,
        steps=200,
    )
