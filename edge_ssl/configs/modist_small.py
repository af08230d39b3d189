"""MoDist for the CPU demo: small Slow-only ResNet at 112 px, 8-frame clips of the small synthetic world, DIS flow."""

from edge_ssl.methods import modist


def get_config() -> modist.MoDistConfig:
    return modist.MoDistConfig(
        size="small",
        variant="small",
        frames=8,
        stride=2,
        flow_frames=8,
        flow_stride=2,
        motion_width_divisor=2,
        motion="flow",
        proj_hidden=256,
        proj_dim=64,
        queue_size=2048,
        key_momentum=0.99,
        learning_rate=0.05,
        scale_size=128,
        global_batch_size=16,
        steps=2000,
    )
