"""The synthetic world written out as a user's folders, so the runner (and a person) can use it like their own data.

`write_folders(examples, root)` writes, per example, `ROOT/video/<action>/p<performance>_view<camera>.mp4` (and, with
`pose=True`, `ROOT/pose/<action>/p<performance>_view<camera>.npy` holding the 2D keypoints in pixels), in the
layouts of DESIGN.md. The camera in the name is what the runner's cross-view protocol reads. Files are written
beside their final name and renamed, so an interrupted write never leaves a clip that looks whole.
"""

import os
from collections.abc import Iterable

import cv2
import numpy as np

from edge_ssl import files
from edge_ssl.data import synthetic


def _write_mp4(path: str, rgb: np.ndarray, fps: float) -> None:
    frames = np.asarray(rgb)
    if frames.dtype != np.uint8:
        frames = np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)
    height, width = frames.shape[1:3]
    with files.atomic_path(path) as tmp:
        # OpenCV picks the container from the extension, so the temporary name must end in .mp4.
        video = tmp + ".mp4"
        writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write {path} (mp4v)")
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        os.replace(video, tmp)


def write_folders(
    examples: Iterable[dict],
    root: str,
    per_class: int | None = None,
    pose: bool = False,
    fps: float = 8.0,
) -> dict[str, int]:
    """Writes examples of the synthetic world (numpy contract dicts) as video (and pose) class folders.

    Args:
      examples: dicts with `rgb` [T, H, W, 3] (float in [0, 1] or uint8), `label`, `performance_id`, `camera_id`
        and, for `pose`, `pose2d` [T, 17, 2].
      root: the output folder; `root/video` (and `root/pose`) are written.
      per_class: the most examples written per action (all when None).
      pose: also write the pose folder.
      fps: frame rate recorded in the videos.

    Returns:
      Examples written per action name.
    """
    counts: dict[str, int] = {}
    for example in examples:
        action = synthetic.ACTIONS[int(example["label"])]
        if per_class is not None and counts.get(action, 0) >= per_class:
            continue
        name = f"p{int(example['performance_id']):04d}_view{int(example['camera_id'])}"
        _write_mp4(os.path.join(root, "video", action, name + ".mp4"), example["rgb"], fps)
        if pose:
            path = os.path.join(root, "pose", action, name + ".npy")
            with files.atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, np.asarray(example["pose2d"], np.float32), allow_pickle=False)
        counts[action] = counts.get(action, 0) + 1
    return counts
