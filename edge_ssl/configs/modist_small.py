"""MoDist for the CPU demo: small Slow-only ResNet at 112 px on the small synthetic world, with Cross and Learn's
recipe: 4-frame clips at stride 2 for both pathways, two other moments of the query's clip as negatives beside the
queues, luma frame differences as the motion input, and the cross-modal terms alone (no L_vv).

With it the kept visual pathway learns the held-out actions at the demo's budget; tested, as video networks are, on
four clips of its training length spread over a 16-frame window. With the paper's terms and DIS flow on 8-frame clips
(this preset until 2026-12-07: `--config_override=` frames=8, flow_frames=8, motion=flow, moment_negatives=0,
visual_weight=1, eval_clips=1) the visual pathway stays at chance and the motion pathway learns on flow, which
separates the actions already at initialisation. Figures: benchmarks/README.md, "What pretraining adds" and "MoDist
tested on clips of its training length"."""

from edge_ssl.methods import modist


def get_config() -> modist.MoDistConfig:
    return modist.MoDistConfig(
        preset="small",
        variant="small",
        frames=4,
        stride=2,
        flow_frames=4,
        flow_stride=2,
        motion_width_divisor=2,
        motion="diff",
        differences="grey",
        moment_negatives=2,
        moment_gap=4,
        visual_weight=0.0,
        eval_clips=4,
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
