"""Cross and Learn for tests: 32 px CaffeNet on the tiny synthetic world (8 frames), frame differences."""

from edge_ssl.methods import cross_and_learn


def get_config() -> cross_and_learn.CrossAndLearnConfig:
    return cross_and_learn.CrossAndLearnConfig(
        preset="tiny",
        variant="tiny",
        motion="diff",
        scale_size=36,
        eval_frames=8,
        global_batch_size=16,
        learning_rate=0.05,
        steps=200,
    )
