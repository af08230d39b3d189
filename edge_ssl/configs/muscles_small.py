"""Muscles for a CPU demo: ResNet-10 at half width (112 px), 1x1 conv to 32 channels, one 128-unit LSTM that returns
sequences; queue 1,024, tau 0.07, m 0.999; trained on the body signals alone: the movement head weighted 1, MoCo 0
(the paper's MoCo + movement ablation with MoCo's weight set to 0), Adam 1e-3 at a constant rate.

The paper's full objective (0.09 MoCo, 0.9 gaze, 0.009 movement) with its step decay leaves the frame encoder at
chance on the `small` world's held-out actions after 400 steps: the movement head, the one term that carries the
actions, barely trains. Body signals alone move it most, MoCo kept beside them at 0.09 less. Figures:
benchmarks/README.md, "What pretraining adds", "Muscles from its body signals"."""

from edge_ssl.methods import muscles


def get_config() -> muscles.MusclesConfig:
    return muscles.MusclesConfig(
        preset="small",
        variant="small",
        objective="moco_movement",
        moco_weight=0.0,
        movement_weight=1.0,
        learning_rate=1e-3,
        lr_decay=1.0,
        # Fewer keys than the small world has pretraining clips, so that a query's own clip from the last epoch is
        # seldom a negative in the queue (training warns when a queue is not smaller than its dataset).
        queue_size=1024,
        pointwise_channels=32,
        recurrent_layers=1,
        recurrent_units=128,
        encoder_decoder=False,
        global_batch_size=64,
        steps=20_000,
    )
