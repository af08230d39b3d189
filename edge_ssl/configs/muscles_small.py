"""Muscles for a CPU demo: ResNet-10 at half width (112 px), 1x1 conv to 32 channels, one 128-unit LSTM that returns
sequences; queue 1,024, tau 0.07, m 0.999, weights 0.09 / 0.9 / 0.009, Adam 5e-4 with step decay."""

from edge_ssl.methods import muscles


def get_config() -> muscles.MusclesConfig:
    return muscles.MusclesConfig(
        preset="small",
        variant="small",
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
