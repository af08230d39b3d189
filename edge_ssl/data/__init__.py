"""Data: the synthetic world, user video and pose folders, motion modalities, augmentation, few-shot episodes.

Examples are dicts of tensors with the keys of DESIGN.md's contract (`rgb`, `diff`, `flow`, `pose2d`, `pose3d`,
`view`, `signals`, `moved`, `label`, ...); `edge_ssl.data.keypoints` holds the skeleton every part agrees on.
"""
