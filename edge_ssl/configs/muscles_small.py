"""Muscles for a CPU demo: ResNet-10 at half width (112 px), 1x1 conv to 32 channels, one 128-unit LSTM that returns
sequences; queue 4,096, tau 0.07, m 0.999, weights 0.09 / 0.9 / 0.009, Adam 5e-4 with step decay."""

from edge_ssl.methods import muscles


def get_config() -> muscles.MusclesConfig:
    return muscles.MusclesConfig(
        size="small",
        variant="small",
        queue_size=4096,
        pointwise_channels=32,
        recurrent_layers=1,
        recurrent_units=128,
        encoder_decoder=False,
        global_batch_size=64,
        steps=20_000,
    )
