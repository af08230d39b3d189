"""The `finetune` head: a linear classifier trained together with the student's last block, in TensorFlow.

Few labeled clips cannot retrain a whole network, but the last block (everything after the last residual stage:
the final 1x1 convolution, the temporal head and the projection) is small enough to adapt. Batch normalisation stays
in inference mode (a handful of clips gives poor batch statistics). The fine-tuned student is converted back to
TFLite, in int8 when the run's source model is int8 (calibrated on the training clips), and the head is appended to
it like the other heads; the embeddings the head is evaluated on come from that converted model.
"""

import dataclasses
import os
import re
import shutil
import time
from collections.abc import Callable

import numpy as np

from edge_ssl.fewshot import engines, heads, labeled
from edge_ssl.keras import keras
from edge_ssl.models import student as student_lib
from export import tflite
from export.runtime import classifier, layout, litert, parity

_STAGE_END = re.compile(r"_stage\d+_block\d+_add$")


@dataclasses.dataclass
class Outcome:
    """What fine-tuning gives the runner: the head, its loss curve, the fine-tuned embeddings and its `.tflite`."""

    weights: np.ndarray
    bias: np.ndarray
    history: list[float]
    seconds: float
    tflite: str
    quantization: str
    embed: Callable[[labeled.Embedded], np.ndarray]


def last_block(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers after the last residual stage's closing Add (those fine-tuning trains)."""
    names = [layer.name for layer in model.layers]
    ends = [i for i, name in enumerate(names) if _STAGE_END.search(name)]
    start = ends[-1] + 1 if ends else len(names) - 4
    return [layer for layer in model.layers[start:] if layer.trainable_weights]


def _inputs(data: labeled.Embedded, card: dict, config) -> np.ndarray:
    frames, size = int(card["input"]["clip"][0]), int(card["input"]["clip"][1])
    return np.concatenate(
        [
            labeled.read_video_inputs(clip, frames, size, config.clips_per_video, config.stride)
            for clip in data.clips
        ]
    )


def finetune(
    config, card: dict, train: labeled.Embedded, classes: list[str], workdir: str
) -> Outcome:
    """Fine-tunes the artifact's student and a linear head on the training clips.

    Args:
      config: the runner's RunConfig (epochs, learning rate, weight decay, batch size, seed, precision, ...).
      card: the model card.
      train: the embedded training clips (their clips are read again, since the backbone changes).
      classes: class names; `train.labels` index them.
      workdir: scratch folder for the fine-tuned SavedModel and its `.tflite`.
    """
    keras.utils.set_random_seed(config.seed)
    student = student_lib.load_student(layout.ArtifactDir(config.model).saved_model)
    for layer in student.model.layers:
        layer.trainable = False
    for layer in last_block(student.model):
        layer.trainable = True
    clips = _inputs(train, card, config)
    per_clip = config.clips_per_video
    labels = np.repeat(train.labels, per_clip)
    head = keras.layers.Dense(
        len(classes),
        kernel_regularizer=keras.regularizers.L2(config.weight_decay / 2),
        name="finetune_head",
    )
    inputs = keras.Input(student.model.input_shape[1:])
    model = keras.Model(inputs, head(student.model(inputs, training=False)))
    model.compile(
        keras.optimizers.Adam(config.learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    start = time.perf_counter()
    fitted = model.fit(
        clips, labels, epochs=config.epochs, batch_size=config.batch_size or len(clips), verbose=0
    )
    seconds = time.perf_counter() - start
    weights, bias = (w.numpy() for w in head.weights)

    saved = os.path.join(workdir, ".finetuned_student")
    student_lib.Student(student.model).save(saved)
    quantization = "int8" if _source_is_int8(config) else "fp32"
    representative = None
    if quantization == "int8":
        representative = tflite.representative_data(student, list(clips[:32]))
    content = tflite.convert(saved, quantization, representative)
    path = os.path.join(workdir, f".finetuned_{quantization}.tflite")
    with open(path, "wb") as f:
        f.write(content)

    delivered = litert.TFLiteModel(content, num_threads=config.num_threads)

    def pooled(windows: np.ndarray) -> np.ndarray:
        # Through the converted model: the figures are those of the classifier.tflite the user gets.
        out = delivered.embed(windows)
        return parity.l2_normalize(out.reshape(-1, per_clip, out.shape[-1]).mean(axis=1))

    def embed(data: labeled.Embedded) -> np.ndarray:
        return pooled(_inputs(data, card, config))

    train.embeddings = pooled(clips)  # the training windows are in memory already
    return Outcome(
        weights,
        bias,
        [float(v) for v in fitted.history["loss"]],
        seconds,
        path,
        quantization,
        embed,
    )


def _source_is_int8(config) -> bool:
    if config.precision == "int8":
        return True
    if config.precision != "auto":
        return False
    try:
        return layout.precision_of(engines.tflite_file(config.model, "auto")) == "int8"
    except engines.EngineError:
        return False


def cleanup(workdir: str) -> None:
    """Removes the scratch files `finetune` left in `workdir`."""
    shutil.rmtree(os.path.join(workdir, ".finetuned_student"), ignore_errors=True)
    for q in ("fp32", "int8"):
        path = os.path.join(workdir, f".finetuned_{q}.tflite")
        if os.path.exists(path):
            os.remove(path)


class FinetunedStudent(heads.Head):
    """The `finetune` head on videos: the artifact's student with its last block and a linear head trained on the
    training clips' frames (`finetune`), exported at the source's precision with the head appended.
    """

    backbone = "finetuned"

    def __init__(self, config, card: dict, workdir: str):
        """`config`: the runner's RunConfig; `workdir`: scratch folder for the fine-tuned model."""
        super().__init__()
        self.config, self.card, self.workdir = config, card, workdir
        self.outcome: Outcome | None = None

    def fit(self, train: labeled.Embedded, classes: list[str]) -> None:
        self.outcome = finetune(self.config, self.card, train, classes, self.workdir)
        self.history, self.seconds = self.outcome.history, self.outcome.seconds
        self.precision = self.outcome.quantization
        self.source = f"the fine-tuned student ({self.outcome.quantization})"

    def prepare(self, data: labeled.Embedded) -> labeled.Embedded:
        data.embeddings = self.outcome.embed(data)
        return data

    def predict(self, data: labeled.Embedded) -> np.ndarray:
        return heads.logits(self.outcome.weights, self.outcome.bias, data.embeddings).argmax(axis=1)

    def export(self, classes: list[str], info: dict) -> bytes:
        with open(self.outcome.tflite, "rb") as f:
            return classifier.attach_head(
                f.read(), self.outcome.weights, self.outcome.bias, classes, info
            )

    def cleanup(self) -> None:
        cleanup(self.workdir)
