"""Muscles for tests: tiny frame ResNet on the tiny synthetic world (32 px), 5-frame clips, one 16-unit LSTM."""

from edge_ssl.methods import muscles


def get_config() -> muscles.MusclesConfig:
    return muscles.MusclesConfig(
        preset="tiny",
        variant="tiny",
        proj_dim=16,
        queue_size=64,
        key_momentum=0.99,
        pointwise_channels=8,
        recurrent_layers=1,
        recurrent_units=16,
        encoder_decoder=False,
        mlp_hidden=16,
        global_batch_size=8,
        steps=200,
    )
