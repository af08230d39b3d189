"""Pose sequences with CV-MIM's temporal classifier: the `finetune` head for pose, and the cross-view protocol.

The pose encoder embeds each frame (z_p); a sequence of codes, resampled to a fixed length, feeds CV-MIM's Conv1D
classifier (`edge_ssl.models.pose_encoder.temporal_classifier`, trained as in `edge_ssl.fewshot.cross_view`). The
delivered `classifier.tflite` takes a whole sequence of raw keypoints [1, L, 17, 2] and holds the exported encoder
(the artifact's SavedModel, applied to every frame) and the classifier in one graph. Needs TensorFlow.
"""

import dataclasses
import os
import time

import numpy as np
import tensorflow as tf

from edge_ssl import tracing
from edge_ssl.fewshot import cross_view, heads, labeled
from export.runtime import layout

DEFAULT_LENGTH = 32


def resample(codes: np.ndarray, length: int) -> np.ndarray:
    """Codes [T, D] at `length` evenly spaced frames (a short sequence repeats frames): [length, D]."""
    codes = np.asarray(codes)
    return codes[np.round(np.linspace(0, len(codes) - 1, length)).astype(int)]


def sequences(data: labeled.Embedded, length: int) -> np.ndarray:
    """[N, length, D] from the per-frame codes of embedded pose clips."""
    return np.stack([resample(codes, length) for codes in data.frame_embeddings])


@dataclasses.dataclass
class Outcome:
    """The fitted classifier, its loss curve and time, its `.tflite` with the encoder inside, and a predictor."""

    model: object
    history: list[float]
    seconds: float
    tflite: str
    length: int

    def predict(self, data: labeled.Embedded) -> np.ndarray:
        """Class indices predicted for embedded pose clips."""
        return np.argmax(self.model.predict(sequences(data, self.length), verbose=0), axis=1)


def fit(
    config, train: labeled.Embedded, num_classes: int, workdir: str, length: int = DEFAULT_LENGTH
) -> Outcome:
    """Trains the temporal classifier on the training clips and writes the sequence classifier's `.tflite`."""
    start = time.perf_counter()
    model = cross_view.fit_temporal_classifier(
        sequences(train, length),
        train.labels,
        num_classes,
        epochs=config.epochs,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size or 32,
        seed=config.seed,
    )
    seconds = time.perf_counter() - start
    history = [float(v) for v in model.history.history.get("loss", [])]
    path = os.path.join(workdir, ".temporal_classifier.tflite")
    with open(path, "wb") as f:
        f.write(_sequence_classifier(config.model, model, length))
    return Outcome(model, history, seconds, path, length)


class SequenceHead(heads.Head):
    """The `finetune` head on poses: CV-MIM's temporal classifier on sequences of the pose encoder's codes, exported
    as one sequence classifier with the encoder inside (it takes raw keypoint sequences [1, L, 17, 2]).
    """

    sequence = True

    def __init__(self, config, workdir: str, length: int = DEFAULT_LENGTH):
        """`config`: the runner's RunConfig; `workdir`: where the classifier's `.tflite` is written first."""
        super().__init__()
        self.config, self.workdir, self.length = config, workdir, length
        self.outcome: Outcome | None = None
        self.source = f"the pose encoder + CV-MIM's temporal classifier ({length} frames)"

    def fit(self, train: labeled.Embedded, classes: list[str]) -> None:
        self.outcome = fit(self.config, train, len(classes), self.workdir, self.length)
        self.history, self.seconds = self.outcome.history, self.outcome.seconds

    def predict(self, data: labeled.Embedded) -> np.ndarray:
        return self.outcome.predict(data)

    def export(self, classes: list[str], info: dict) -> bytes:
        del (
            classes,
            info,
        )  # the runner writes labels.txt; the sequence classifier carries no embedding metadata
        with open(self.outcome.tflite, "rb") as f:
            return f.read()

    def cleanup(self) -> None:
        if self.outcome is not None and os.path.exists(self.outcome.tflite):
            os.remove(self.outcome.tflite)


def _sequence_classifier(artifact_dir: str, model, length: int) -> bytes:
    """keypoints [1, length, 17, 2] -> embedding (mean code), logits, probabilities, as one TFLite model."""
    encoder = tf.saved_model.load(layout.ArtifactDir(artifact_dir).saved_model)
    function = encoder.signatures["serving_default"]
    input_name = next(iter(function.structured_input_signature[1]))

    class SequenceClassifier(tf.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.model = encoder, model

        @tracing.function(
            input_signature=[tf.TensorSpec([1, length, 17, 2], tf.float32, name="keypoints")]
        )
        def serving_default(self, keypoints):
            codes = function(**{input_name: keypoints[0]})[
                "embedding"
            ]  # [length, D], one row per frame
            logits = self.model(codes[None], training=False)
            return {
                "embedding": tf.reduce_mean(codes, axis=0, keepdims=True),
                "logits": logits,
                "probabilities": tf.nn.softmax(logits),
            }

    module = SequenceClassifier()
    concrete = module.serving_default.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def cross_view_protocol(config, data: labeled.Embedded, length: int = DEFAULT_LENGTH) -> dict:
    """CV-MIM's single-shot cross-view accuracy: fit on the clips of one view, evaluate on all the others.

    Raises:
      ValueError: clips without a view, or fewer than two views.
    """
    missing = [p for p, v in zip(data.paths, data.views) if v is None]
    if missing:
        raise ValueError(
            f"{len(missing)} clips have no camera view (first: {missing[0]}); name files like "
            f"'<name>_view<k>.npy' or list them in {labeled.VIEWS_CSV} (columns path, view)"
        )
    names = sorted(set(data.views))
    if len(names) < 2:
        raise ValueError(f"the cross-view protocol needs clips from 2 or more views, got {names}")
    views = np.array([names.index(v) for v in data.views])
    result = cross_view.single_shot_cross_view(
        sequences(data, length),
        data.labels,
        views,
        len(data.classes),
        epochs=config.epochs,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size or 32,
        seed=config.seed,
    )
    return {
        "per_view": {names[k]: v for k, v in result["per_view"].items()},
        "mean": result["mean"],
    }
