"""MoDist for the CPU demo: small Slow-only ResNet at 112 px, 8-frame clips of the small synthetic world, DIS flow.

With it the motion pathway learns the held-out actions (what the demo's student distils) and the visual pathway stays
at chance. Cross and Learn's recipe moves the visual pathway instead, with a weaker motion pathway, so it is not this
preset: `--config_override=` moment_negatives=2, moment_gap=4, frames=4, stride=2, flow_frames=4, flow_stride=2,
motion=diff, differences=grey, visual_weight=0, eval_clips=4 (the views then average four clips of the training
length over a 16-frame window). Figures: benchmarks/README.md, "What pretraining adds", "Negatives that share the
clip's appearance" and "MoDist tested on clips of its training length"."""

from edge_ssl.methods import modist


def get_config() -> modist.MoDistConfig:
    return modist.MoDistConfig(
        preset="small",
        variant="small",
        frames=8,
        stride=2,
        flow_frames=8,
        flow_stride=2,
        motion_width_divisor=2,
        motion="flow",
        proj_hidden=256,
        proj_dim=64,
        # Fewer keys than the small world has pretraining clips, so that a query's own clip from the last epoch is
        # seldom a negative in the queue (training warns when a queue is not smaller than its dataset).
        queue_size=1024,
        key_momentum=0.99,
        # The paper config's 0.2 at batch 512 (0.1 x batch / 256), scaled linearly to this batch of 16.
        learning_rate=0.2 * 16 / 512,
        scale_size=128,
        global_batch_size=16,
        steps=2000,
    )
