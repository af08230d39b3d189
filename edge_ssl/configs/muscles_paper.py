"""Muscles as in the paper's code (muscleTorch, scripts/training_representation.sh): ResNet-18 at 224 px, MoCo
projection 128, queue 16,384, tau 0.07, m 0.999; 1x1 conv to 64 channels, 3-layer encoder-decoder LSTMs of 512, MLP
100; weights 0.09 MoCo + 0.90 gaze + 0.009 movement; Adam 5e-4, x0.1 every 50 epochs, batch 256.

The paper's runs were stopped by hand and the data set's size is not in our reference, so `steps` stands for 200
epochs of an assumed 100,000 clips, and decays fall at epochs 50, 100 and 150 of it.
"""

from edge_ssl.methods import muscles


def get_config() -> muscles.MusclesConfig:
    return muscles.MusclesConfig(
        preset="paper",
        variant="paper",
        objective="full",
        proj_dim=128,
        queue_size=16384,
        temperature=0.07,
        key_momentum=0.999,
        pointwise_channels=64,
        cell="lstm",
        recurrent_layers=3,
        recurrent_units=512,
        encoder_decoder=True,
        mlp_hidden=100,
        learning_rate=5e-4,
        lr_decay=0.1,
        lr_decay_fraction=0.25,
        global_batch_size=256,
        steps=200 * 100_000 // 256,
    )
