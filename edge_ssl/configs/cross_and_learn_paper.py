"""Cross and Learn as in the paper: CaffeNet-BN, 10-frame flow stacks, 30 tuples, SGD 0.01, x0.1 at 3/4."""

from edge_ssl.methods import cross_and_learn


def get_config() -> cross_and_learn.CrossAndLearnConfig:
    return cross_and_learn.CrossAndLearnConfig(
        preset="paper",
        variant="paper",
        motion="flow",
        flow_frames=10,
        scale_size=256,
        global_batch_size=60,
        steps=200 * 9537 // 60,  # 200 epochs of UCF-101 split 1 (9,537 videos), one pair per video
    )
