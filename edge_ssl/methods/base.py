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

from edge_ssl.keras import keras


@dataclasses.dataclass(frozen=True)
class MethodConfig:
    """Fields every method config has. Method configs subclass it and validate in `__post_init__`."""

    method: str
    size: str
    seed: int = 0
    steps: int = 1000  # total training steps, for learning-rate schedules

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


class Method(tf.Module, abc.ABC):
    """A self-supervised objective with its encoders, optimizers and training step."""

    name: str = ""
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
        items.update({f"optimizer_{k}": v for k, v in self.optimizers.items()})
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

    def embed(self, inputs: tf.Tensor) -> tf.Tensor:
        """Embeddings of a batch of inputs with the backbone in inference mode."""
        return self.backbone(inputs, training=False)


def apply_gradients(
    optimizer: keras.optimizers.Optimizer,
    loss: tf.Tensor,
    tape: tf.GradientTape,
    variables: list[tf.Variable],
) -> None:
    """Gradients of `loss` for `variables`, applied by `optimizer`; a variable without a gradient is an error.

    A missing gradient means the loss does not reach part of a trained network: a silent bug in a method.
    """
    grads = tape.gradient(loss, variables)
    missing = [v.name for v, g in zip(variables, grads) if g is None]
    if missing:
        raise ValueError(
            f"no gradient reaches {len(missing)} trained variables, e.g. {missing[:3]}"
        )
    optimizer.apply_gradients(zip(grads, variables))
