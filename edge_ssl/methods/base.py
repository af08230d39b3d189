"""The contract between a self-supervised method and the training engine (DESIGN.md, "Methods").

A method exposes the encoders it trains, the one encoder whose embedding is the representation (`backbone`: RGB clip
[B, T, H, W, 3] in [0, 1] -> L2-normalised float32 [B, D]; for pose methods, the pose sequence), the example keys it
needs, `prepare(example, seed)` that turns one contract example into what its step consumes (run inside
`Dataset.map`), and `train_step(batch, global_batch_size)` that returns named losses. The step belongs to the method
(CV-MIM needs three optimizers); the engine owns distribution, checkpoints, logging and the NaN guard. Every tensor a
step needs to resume (optimizers, momentum encoders, queues) is reachable from `checkpoint_items()`.
"""

import abc
import dataclasses
from typing import Any

import tensorflow as tf

from edge_ssl.data import synthetic
from edge_ssl.keras import keras

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# What a method learns from: "video" (RGB clips, with flow or body signals: an RGB student can learn from it) or
# "pose" (2D keypoint sequences).
MODALITIES = ("video", "pose")


@dataclasses.dataclass(frozen=True)
class MethodConfig:
    """Fields every method config has. Method configs subclass it and validate in `__post_init__`."""

    method: str
    # The config preset it was built from (`configs/loader.PRESETS`: "tiny", "small", "paper"), which also names the
    # synthetic world it trains on; the network itself is a method config's `variant`. "" for a config that no
    # preset builds (a distillation, whose student is `DistillConfig.student`).
    preset: str = ""
    seed: int = 0
    steps: int = 1000  # total training steps, for learning-rate schedules
    # Keras mixed-precision policy the method is built under: "float32", "mixed_float16" (GPUs; the optimizers get
    # dynamic loss scaling) or "mixed_bfloat16" (TPUs, recent CPUs). Losses are always computed in float32.
    precision: str = "float32"
    clip_norm: float | None = (
        None  # clip each optimizer's global-batch gradient to this global norm
    )

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.clip_norm is not None and self.clip_norm <= 0:
            raise ValueError(f"clip_norm must be positive (or None), got {self.clip_norm}")

    @property
    def world(self) -> str:
        """The size of the synthetic world that `data="synthetic"` trains it on.

        Raises:
          ValueError: a config of no preset (name the world instead: "synthetic_world/<size>").
        """
        if self.preset not in synthetic.CONFIG_WORLDS:
            raise ValueError(
                f"a {self.method} config of preset {self.preset!r} has no synthetic world of its own; name one "
                f"(synthetic_world/{'|'.join(synthetic.SIZES)})"
            )
        return synthetic.CONFIG_WORLDS[self.preset]

    def identity(self) -> dict[str, str]:
        """What a run is recorded and resumed under (run.json): a workdir holding other values needs another one."""
        return {"preset": self.preset}


def optimizer_key(name: str) -> str:
    """The checkpoint key of the optimizer a method names `name` in `Method.optimizers`."""
    return f"optimizer_{name}"


class Method(tf.Module, abc.ABC):
    """A self-supervised objective with its encoders, optimizers and training step."""

    name: str = ""
    modality: str = "video"  # one of MODALITIES; the method module's MODALITY
    input_keys: tuple[str, ...] = ()

    def __init__(self, config: MethodConfig):
        super().__init__(name=config.method)
        self.config = config

    @property
    @abc.abstractmethod
    def encoders(self) -> dict[str, keras.Model]:
        """The trained networks by name (query encoders; momentum copies are not listed)."""

    @property
    @abc.abstractmethod
    def backbone(self) -> keras.Model:
        """The representation: a Keras model from the method's input to an L2-normalised embedding [B, D]."""

    @property
    @abc.abstractmethod
    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        """Optimizers by name; together they cover every trainable variable exactly once."""

    @abc.abstractmethod
    def prepare(self, example: dict[str, tf.Tensor], seed: tf.Tensor) -> dict[str, tf.Tensor]:
        """One contract example -> one training input (augmentation included), with stateless `seed` [2]."""

    @abc.abstractmethod
    def train_step(
        self, batch: dict[str, tf.Tensor], global_batch_size: int
    ) -> dict[str, tf.Tensor]:
        """One optimisation step on this replica's `batch`; returns the replica's share of each named loss."""

    def checkpoint_items(self) -> dict[str, Any]:
        """What a checkpoint must hold to resume this method exactly (tf.train.Checkpoint keyword arguments)."""
        items: dict[str, Any] = {f"encoder_{k}": v for k, v in self.encoders.items()}
        items.update({optimizer_key(k): v for k, v in self.optimizers.items()})
        return items

    def variable_groups(self) -> dict[str, list[tf.Variable]]:
        """The variables each optimizer updates, keyed like `optimizers`.

        The default serves one optimizer over every encoder's trainable variables; methods with several optimizers
        (CV-MIM) say which variables each one owns.
        """
        if len(self.optimizers) != 1:
            raise NotImplementedError(
                f"{self.name} has several optimizers: it must define variable_groups()"
            )
        (name,) = self.optimizers
        return {name: [v for model in self.encoders.values() for v in model.trainable_variables]}

    def build_optimizers(self) -> None:
        """Creates every optimizer's slot variables now (call in the strategy's scope), so that restoring a checkpoint
        fills them before the first step; created lazily, they would start from zero after a resume.
        """
        groups = self.variable_groups()
        for name, optimizer in self.optimizers.items():
            optimizer.build(groups[name])

    def save_backbone(self, path: str) -> None:
        """Writes the backbone as a SavedModel at `path` (the engine writes to a temporary folder, then renames)."""
        self.backbone.save(path, save_format="tf", include_optimizer=False)

    def embed(self, inputs: tf.Tensor) -> tf.Tensor:
        """Embeddings of a batch of inputs with the backbone in inference mode."""
        return self.backbone(inputs, training=False)

    def teacher_views(self) -> dict[str, Any]:
        """The embeddings this method gives a distillation teacher, by name (`edge_ssl.methods.views.View`s):
        `visual`, the representation, and `motion` where the method has a motion pathway.

        Raises:
          NotImplementedError: a method that cannot teach.
        """
        raise NotImplementedError(f"{self.name} declares no teacher views")
