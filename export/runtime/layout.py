"""The on-disk layout of an artifact directory, and of the classifier folder the few-shot runner makes from one.

Every file name of the two folders is spelled here and nowhere else, and the model card is read and written here, so
a reader or a writer of either folder goes through this module.

An artifact directory (what `python -m export` writes; DESIGN.md, "Contracts"):
- `saved_model/`: the Keras model with its signatures;
- `model_<quantization>.tflite` for fp32, fp16, dynamic and int8 (`ArtifactDir.tflite`);
- `model.onnx` (whole clip) and, for a student, `model_step.onnx` (streaming step);
- `head_trainer.tflite`: the linear head the runner trains inside LiteRT;
- `model_card.json`: input spec, preprocessing, embedding size, parity and lint figures, versions (`read_card`);
- built later on the device from the ONNX graphs: TensorRT engines `model_<precision>.plan` and the streaming step's
  `model_step_fp16.plan` (each with its own card, `export.runtime.tensorrt`), `calibration.cache` for int8, and
  `tftrt/`.
`export.runtime.precision` may also keep `precision_cache.json` there, its timing cache for `--precision=auto`.

A classifier folder (what `python -m edge_ssl.cli.finetune` writes, what the recognizer and the demo read):
`classifier.tflite`, `labels.txt` (one class a line, in output order), `metrics.json`, `confusion.png`, `report.md`.

    artifact = layout.ArtifactDir("out/artifacts")
    artifact.tflite("int8")         # out/artifacts/model_int8.tflite
    card = artifact.read_card()     # ArtifactError, saying what to do, when there is no readable card

Needs neither TensorFlow nor the model code: the runner and the recognizer on a device import it with LiteRT alone.
"""

import dataclasses
import json
import os
from collections.abc import Iterable

CARD = "model_card.json"
CARD_VERSION = 1
SAVED_MODEL = "saved_model"
ONNX = "model.onnx"
ONNX_STEP = "model_step.onnx"
HEAD_TRAINER = "head_trainer.tflite"
CALIBRATION_CACHE = "calibration.cache"
TFTRT = "tftrt"
TFLITE_SUFFIX = ".tflite"
ENGINE_SUFFIX = ".plan"  # a TensorRT engine
_MODEL_PREFIX = "model_"

CLASSIFIER = "classifier.tflite"
LABELS = "labels.txt"
METRICS = "metrics.json"
CONFUSION_PNG = "confusion.png"
REPORT = "report.md"


class ArtifactError(RuntimeError):
    """The export stopped, or an artifact directory is not usable: the message says why.

    `causes` names what a caller can change to get past it, in the export's terms: "output_dir" (not an artifact
    directory), "lint" (`ExportOptions.allow_lint_errors`), "parity" (`ExportOptions.thresholds`); a binary maps them
    to its flags.
    """

    def __init__(self, message: str, causes: tuple[str, ...] = ()):
        super().__init__(message)
        self.causes = frozenset(causes)


def tflite_name(quantization: str) -> str:
    """`model_<quantization>.tflite`, the file of one TFLite form."""
    return f"{_MODEL_PREFIX}{quantization}{TFLITE_SUFFIX}"


def engine_name(precision: str) -> str:
    """`model_<precision>.plan`, the TensorRT engine of the whole-clip graph."""
    return f"{_MODEL_PREFIX}{precision}{ENGINE_SUFFIX}"


def step_engine_name(precision: str = "fp16") -> str:
    """`model_step_<precision>.plan`, the TensorRT engine of the streaming step graph (built in fp16 only)."""
    return f"{_MODEL_PREFIX}step_{precision}{ENGINE_SUFFIX}"


def precision_of(path: str) -> str:
    """The precision a model file's name holds: `model_int8.tflite` -> int8, `.../model_fp16.plan` -> fp16."""
    name = os.path.basename(path)
    for suffix in (TFLITE_SUFFIX, ENGINE_SUFFIX):
        if name.startswith(_MODEL_PREFIX) and name.endswith(suffix):
            return name[len(_MODEL_PREFIX) : -len(suffix)]
    raise ValueError(f"{path} is not a model_<precision>{TFLITE_SUFFIX} or {ENGINE_SUFFIX} file")


@dataclasses.dataclass(frozen=True)
class ArtifactDir:
    """The paths of one artifact directory (nothing is checked until a file is read).

    Attributes:
      path: the directory.
    """

    path: str

    def _join(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def card(self) -> str:
        return self._join(CARD)

    @property
    def saved_model(self) -> str:
        return self._join(SAVED_MODEL)

    @property
    def onnx(self) -> str:
        return self._join(ONNX)

    @property
    def onnx_step(self) -> str:
        return self._join(ONNX_STEP)

    @property
    def head_trainer(self) -> str:
        return self._join(HEAD_TRAINER)

    @property
    def calibration_cache(self) -> str:
        return self._join(CALIBRATION_CACHE)

    @property
    def tftrt(self) -> str:
        return self._join(TFTRT)

    def tflite(self, quantization: str) -> str:
        return self._join(tflite_name(quantization))

    def engine(self, precision: str) -> str:
        return self._join(engine_name(precision))

    def step_engine(self, precision: str = "fp16") -> str:
        return self._join(step_engine_name(precision))

    def tflite_files(self, quantizations: Iterable[str]) -> dict[str, str]:
        """{quantization: path} of the `.tflite` forms among `quantizations` that are here, in their order."""
        return {q: self.tflite(q) for q in quantizations if os.path.exists(self.tflite(q))}

    def engine_files(self, precisions: Iterable[str]) -> dict[str, str]:
        """{precision: path} of the whole-clip TensorRT engines among `precisions` that are here, in their order."""
        return {p: self.engine(p) for p in precisions if os.path.exists(self.engine(p))}

    def has_card(self) -> bool:
        """Whether the directory holds a model card (export wrote it, or an attempt that failed did)."""
        return os.path.exists(self.card)

    def read_card(self) -> dict:
        """The model card, with a clear error when there is none or it does not parse.

        Raises:
          ArtifactError: no directory, no card, or one that is not JSON or not a model card; the message says what
            to do.
        """
        if not os.path.isdir(self.path):
            raise ArtifactError(
                f"{self.path} is not a directory (expected an artifact directory from export)"
            )
        if not self.has_card():
            raise ArtifactError(
                f"{self.path} has no {CARD}: not an artifact directory written by export (a training workdir or "
                f"SavedModel becomes one with: python -m export --model={self.path} --output_dir=DIR)"
            )
        try:
            with open(self.card, encoding="utf-8") as f:
                card = json.load(f)
        except (OSError, ValueError) as e:
            raise ArtifactError(f"{self.card} is not a readable model card: {e}") from e
        if not isinstance(card, dict) or "embedding_dim" not in card:
            raise ArtifactError(
                f"{self.card} is not a model card written by export (no embedding_dim)"
            )
        return card

    def write_card(self, card: dict) -> None:
        """Writes `card` as the directory's model card (indented JSON), replacing the one there."""
        with open(self.card, "w", encoding="utf-8") as f:
            json.dump(card, f, indent=2)


@dataclasses.dataclass(frozen=True)
class ClassifierDir:
    """The paths of one classifier folder, the few-shot runner's output.

    Attributes:
      path: the folder.
    """

    path: str

    def _join(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def classifier(self) -> str:
        return self._join(CLASSIFIER)

    @property
    def labels(self) -> str:
        return self._join(LABELS)

    @property
    def metrics(self) -> str:
        return self._join(METRICS)

    @property
    def confusion_png(self) -> str:
        return self._join(CONFUSION_PNG)

    @property
    def report(self) -> str:
        return self._join(REPORT)

    def write_labels(self, classes: Iterable[str]) -> None:
        """Writes `labels.txt`: one class name a line, in the classifier's output order."""
        with open(self.labels, "w", encoding="utf-8") as f:
            f.write("\n".join(classes) + "\n")

    def read_labels(self) -> list[str]:
        """The class names of `labels.txt` in output order; [] when the folder has none."""
        if not os.path.exists(self.labels):
            return []
        with open(self.labels, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]

    def read_metrics(self) -> dict:
        """The runner's `metrics.json`."""
        with open(self.metrics, encoding="utf-8") as f:
            return json.load(f)
