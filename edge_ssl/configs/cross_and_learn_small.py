"""Cross and Learn for the CPU demo: narrow CaffeNet at 112 px on the small synthetic world, frame differences."""

from edge_ssl.methods import cross_and_learn


def get_config() -> cross_and_learn.CrossAndLearnConfig:
    return cross_and_learn.CrossAndLearnConfig(
        preset="small",
        variant="small",
        motion="diff",
        scale_size=128,
        negatives="batch",
        eval_frames=16,
        global_batch_size=32,
        steps=2000,
    )
