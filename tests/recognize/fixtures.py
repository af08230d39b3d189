"""Test data for the recognizer: moving bars whose direction is the action, a tiny student that has learned them, its
artifact directory and the runner's classifier; and FakeCapture, a camera stand-in for live sources.

A random student separates colours but not directions of motion, and a still scene would get an arbitrary class
from it, so the recognizer's event tests train one: the tiny student with a linear head, for 150 steps (about 15 s
on two cores), on bars moving right, left or down at SPEED pixels per second seen at MODEL_FPS, and on still bars
taught to give every class the same probability (as a real student gives a person standing still no direction).
Then it is exported (fp32 and int8 TFLite, ONNX) and the few-shot runner fits its own linear head on clips of the
three directions, as a user would.
"""

import os
import time

import cv2
import numpy as np

SIZE = 32  # the tiny student's frames
FRAMES = 8  # its clip length T
WIDTH = 40  # the videos are wider than the model's frames: the runner and the recognizer centre-crop them
MODEL_FPS = 8.0
SPEED = 24.0  # pixels per second: 3 pixels per model frame
PERIOD = 12.0  # pixels from one bar to the next
DIRECTIONS = {"down": (0, 1), "left": (-1, 0), "right": (1, 0)}
LABELS = sorted(DIRECTIONS)


def bars(
    seconds: float, direction, phase: float, height: int = SIZE, width: int = SIZE
) -> np.ndarray:
    """bool [H, W]: stripes across `direction`, moved SPEED * seconds along it."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    dx, dy = direction
    coordinate = x if dx else y
    return ((coordinate - (dx + dy) * SPEED * seconds + phase) % PERIOD) < PERIOD / 2


def scene(seconds: float, direction, phase: float, colours, height: int, width: int) -> np.ndarray:
    """float [H, W, 3] in [0, 1]: bars of colour `colours[0]` on `colours[1]`."""
    on = bars(seconds, direction, phase, height, width)[..., None]
    return np.where(on, colours[0], colours[1]).astype(np.float32)


def random_colours(rng: np.random.Generator):
    return rng.uniform(0.6, 1.0, 3), rng.uniform(0.0, 0.3, 3)


def training_clip(direction, rng: np.random.Generator, still: bool = False) -> np.ndarray:
    """float32 [T, S, S, 3]: one clip at MODEL_FPS, or still bars in a random direction."""
    if still:
        direction = list(DIRECTIONS.values())[rng.integers(len(DIRECTIONS))]
    phase, colours = rng.uniform(0, PERIOD), random_colours(rng)
    frames = [
        scene(0.0 if still else t / MODEL_FPS, direction, phase, colours, SIZE, SIZE)
        for t in range(FRAMES)
    ]
    return np.clip(np.stack(frames) + rng.normal(0, 0.03, (FRAMES, SIZE, SIZE, 3)), 0, 1).astype(
        np.float32
    )


def train_student(steps: int = 150, seed: int = 0):
    """The tiny student after `steps` steps of learning the bars' direction (TensorFlow needed)."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    from edge_ssl.keras import keras  # pylint: disable=g-import-not-at-top
    from edge_ssl.models import student as student_lib  # pylint: disable=g-import-not-at-top

    keras.utils.set_random_seed(seed)
    student = student_lib.build_student("tiny")
    head = keras.layers.Dense(len(LABELS))
    optimizer = keras.optimizers.Adam(3e-3)
    rng = np.random.default_rng(seed)

    @tf.function
    def step(clips, targets):
        with tf.GradientTape() as tape:
            logits = 10.0 * head(student.model(clips, training=True))
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(targets, logits))
        variables = student.model.trainable_variables + head.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    for _ in range(steps):
        clips, targets = [], []
        for _ in range(16):
            k = int(rng.integers(len(LABELS) + 1))
            still = k == len(LABELS)
            clips.append(training_clip(DIRECTIONS[LABELS[k]] if not still else None, rng, still))
            # Still bars carry no direction: the same probability for every class.
            targets.append(
                np.full(len(LABELS), 1 / len(LABELS)) if still else np.eye(len(LABELS))[k]
            )
        step(np.stack(clips), np.stack(targets).astype(np.float32))
    return student


def write_video(path: str, segments, fps: float, seed: int = 0, fourcc: str = "mp4v") -> str:
    """A video of `segments` [(label or None for still bars, seconds)] back to back, at `fps`, WIDTH x SIZE."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, (WIDTH, SIZE))
    assert writer.isOpened(), path
    for label, seconds in segments:
        direction = DIRECTIONS[label] if label else DIRECTIONS["right"]
        phase, colours = rng.uniform(0, PERIOD), random_colours(rng)
        for i in range(int(round(seconds * fps))):
            t = 0.0 if label is None else i / fps
            image = scene(t, direction, phase, colours, SIZE, WIDTH)
            image = np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1)
            writer.write((image[..., ::-1] * 255).astype(np.uint8))
    writer.release()
    return path


def make_classifier(base: str, steps: int = 150) -> dict:
    """Trains the student, exports it and runs the few-shot runner on clips of each direction.

    Returns:
      {"artifact": artifact directory, "classifier": classifier.tflite, "output": the runner's folder}.
    """
    from edge_ssl.fewshot import runner  # pylint: disable=g-import-not-at-top
    from export import artifacts  # pylint: disable=g-import-not-at-top
    from export.runtime import parity  # pylint: disable=g-import-not-at-top

    student = train_student(steps)
    rng = np.random.default_rng(1)
    clips = np.stack(
        [training_clip(DIRECTIONS[LABELS[i % 3]], rng) for i in range(12)]
        + [training_clip(None, rng, still=True) for _ in range(4)]
    )
    artifact = os.path.join(base, "artifact")
    # A trained tiny student's int8 form is checked by the recognizer's tests themselves; export's int8 agreement
    # bound is for the real students.
    thresholds = dict(parity.DEFAULT_THRESHOLDS, int8=parity.Thresholds(min_cosine=0.9))
    options = artifacts.ExportOptions(quantizations=("fp32", "int8"), thresholds=thresholds)
    artifacts.export_student(
        student, artifact, list(clips), clips, None, options, frame_rate=MODEL_FPS
    )
    train = os.path.join(base, "train")
    for label in LABELS:
        for i in range(4):
            write_video(
                os.path.join(train, label, f"clip{i}.mp4"), [(label, 1.5)], MODEL_FPS, seed=10 * i
            )
    output = os.path.join(base, "classifier")
    runner.run(
        runner.RunConfig(
            model=artifact,
            train_dir=train,
            output_dir=output,
            engine="litert",
            precision="fp32",
            head="linear",  # the runner's defaults otherwise
        )
    )
    return {
        "artifact": artifact,
        "classifier": os.path.join(output, "classifier.tflite"),
        "output": output,
    }


CAPTURE_SIZE = (48, 64)  # height, width of FakeCapture's frames


class FakeCapture:
    """An OpenCV capture stand-in: `frames` frames at `fps` (in real time), then reads fail."""

    def __init__(self, frames: int, fps: float = 200.0, opened: bool = True, bad=()):
        self.left, self.period, self.opened, self.bad, self.count = (
            frames,
            1.0 / fps,
            opened,
            set(bad),
            0,
        )
        self.released = False

    def isOpened(self):  # pylint: disable=invalid-name  (OpenCV's name)
        return self.opened

    def get(self, prop):
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        if self.left <= 0:
            return False, None
        time.sleep(self.period)
        self.left -= 1
        self.count += 1
        if self.count in self.bad:
            return True, np.zeros((3, 3, 3), np.uint8)  # another size than the stream's: corrupt
        return True, np.full((*CAPTURE_SIZE, 3), self.count % 256, np.uint8)

    def release(self):
        self.released = True
