"""A linear classification head that trains inside the LiteRT interpreter, with builtin ops only.

The few-shot runner fits its head on the device, where TensorFlow may not be installed. This model holds the head's
variables and four signatures:
- `train(embedding [B, D], label [B, C] one-hot, class_mask [C], learning_rate [], weight_decay []) -> loss []`:
  one Adam step on the softmax cross-entropy of the classes where `class_mask` is 1 (the model has room for
  `max_classes`; a run uses the first C of them), plus `weight_decay * |W|^2 / 2`;
- `infer(embedding [B, D], class_mask [C]) -> logits [B, C]` (masked classes get -1e4);
- `save() -> weights [D, C], bias [C]`, and `restore(weights, bias) -> weights, bias`, which also resets Adam.

The gradients are written out by hand (softmax minus one-hot, one matrix product), not taken from a tape: a taped
gradient lowers to ops such as BroadcastGradientArgs that need Flex, and the Python LiteRT runtime has no Flex
delegate (`../shared/reference/edge_stack.md`, section 5). The converted model holds only builtins.

    content = trainable_head.build(embedding_dim=256, max_classes=64)   # needs TensorFlow (export time)
    head = trainable_head.HeadTrainer(content)                           # needs LiteRT only
    head.fit(embeddings, labels, num_classes=5, epochs=100)
    weights, bias = head.weights()
"""

from collections.abc import Sequence

import numpy as np
from ai_edge_litert import interpreter as litert

DEFAULT_MAX_CLASSES = 64
SIGNATURES = ("train", "infer", "save", "restore")
_BETA1, _BETA2, _EPSILON = 0.9, 0.999, 1e-8
_MASKED_LOGIT = -1e4


class HeadError(ValueError):
    """The head cannot be trained as asked (too many classes, shapes that do not match the model)."""


def build(embedding_dim: int, max_classes: int = DEFAULT_MAX_CLASSES) -> bytes:
    """The `.tflite` bytes of the trainable head (imports TensorFlow: run at export time or where it is installed).

    Args:
      embedding_dim: D, the size of the embeddings it classifies.
      max_classes: the most classes a run can use.

    Returns:
      A builtin-only TFLite model with the four signatures of the module docstring; weights start at zero.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (the device runs HeadTrainer without TF)

    if embedding_dim < 1 or max_classes < 2:
        raise HeadError(
            f"need embedding_dim >= 1 and max_classes >= 2, got {embedding_dim}, {max_classes}"
        )
    d, c = embedding_dim, max_classes

    class Head(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.zeros([d, c]), name="weights")
            self.b = tf.Variable(tf.zeros([c]), name="bias")
            self.m_w = tf.Variable(tf.zeros([d, c]))
            self.v_w = tf.Variable(tf.zeros([d, c]))
            self.m_b = tf.Variable(tf.zeros([c]))
            self.v_b = tf.Variable(tf.zeros([c]))
            self.t = tf.Variable(0.0)

        def _logits(self, embedding, class_mask):
            logits = tf.matmul(embedding, self.w) + self.b
            return logits + (1.0 - class_mask) * _MASKED_LOGIT

        def _adam(self, var, m, v, grad, lr, correction):
            m.assign(_BETA1 * m + (1.0 - _BETA1) * grad)
            v.assign(_BETA2 * v + (1.0 - _BETA2) * grad * grad)
            var.assign_sub(lr * correction * m / (tf.sqrt(v) + _EPSILON))

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, d], tf.float32, name="embedding"),
                tf.TensorSpec([None, c], tf.float32, name="label"),
                tf.TensorSpec([c], tf.float32, name="class_mask"),
                tf.TensorSpec([], tf.float32, name="learning_rate"),
                tf.TensorSpec([], tf.float32, name="weight_decay"),
            ]
        )
        def train(self, embedding, label, class_mask, learning_rate, weight_decay):
            logits = self._logits(embedding, class_mask)
            shifted = logits - tf.reduce_max(logits, axis=1, keepdims=True)
            exp = tf.exp(shifted)
            total = tf.reduce_sum(exp, axis=1, keepdims=True)
            log_prob = shifted - tf.math.log(total)
            batch = tf.cast(tf.shape(embedding)[0], tf.float32)
            cross_entropy = -tf.reduce_sum(label * log_prob) / batch
            loss = cross_entropy + 0.5 * weight_decay * tf.reduce_sum(self.w * self.w)
            # d(loss)/d(logits) = (softmax - one-hot) / B on the classes in use; the masked ones get no gradient.
            grad_logits = (exp / total - label) * class_mask / batch
            grad_w = tf.matmul(embedding, grad_logits, transpose_a=True) + weight_decay * self.w
            grad_b = tf.reduce_sum(grad_logits, axis=0)
            self.t.assign_add(1.0)
            correction = tf.sqrt(1.0 - tf.pow(_BETA2, self.t)) / (1.0 - tf.pow(_BETA1, self.t))
            self._adam(self.w, self.m_w, self.v_w, grad_w, learning_rate, correction)
            self._adam(self.b, self.m_b, self.v_b, grad_b, learning_rate, correction)
            return {"loss": loss}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, d], tf.float32, name="embedding"),
                tf.TensorSpec([c], tf.float32, name="class_mask"),
            ]
        )
        def infer(self, embedding, class_mask):
            return {"logits": self._logits(embedding, class_mask)}

        @tf.function(input_signature=[])
        def save(self):
            return {"weights": tf.identity(self.w), "bias": tf.identity(self.b)}

        @tf.function(
            input_signature=[
                tf.TensorSpec([d, c], tf.float32, name="weights"),
                tf.TensorSpec([c], tf.float32, name="bias"),
            ]
        )
        def restore(self, weights, bias):
            self.w.assign(weights)
            self.b.assign(bias)
            for slot in (self.m_w, self.v_w, self.m_b, self.v_b):
                slot.assign(tf.zeros_like(slot))
            self.t.assign(0.0)
            return {"weights": tf.identity(self.w), "bias": tf.identity(self.b)}

    head = Head()
    functions = [getattr(head, name).get_concrete_function() for name in SIGNATURES]
    converter = tf.lite.TFLiteConverter.from_concrete_functions(functions, head)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.experimental_enable_resource_variables = True
    return converter.convert()


class HeadTrainer:
    """The trainable head run by LiteRT: `fit`, `logits`, `weights`, `set_weights`.

    Args:
      model: the bytes `build` returned, or the path of a `head_trainer.tflite`.
    """

    def __init__(self, model: bytes | str):
        kwargs = {"model_content": model} if isinstance(model, bytes) else {"model_path": model}
        try:
            self.interpreter = litert.Interpreter(**kwargs)
        except (ValueError, RuntimeError) as e:
            where = "the head model bytes" if isinstance(model, bytes) else model
            raise HeadError(f"{where} is not a readable TFLite model: {e}") from e
        missing = set(SIGNATURES) - set(self.interpreter.get_signature_list())
        if missing:
            raise HeadError(f"the head model lacks the {sorted(missing)} signature(s)")
        self._runners = {name: self.interpreter.get_signature_runner(name) for name in SIGNATURES}
        shape = self._runners["restore"].get_input_details()["weights"]["shape"]
        self.embedding_dim, self.max_classes = int(shape[0]), int(shape[1])
        self.num_classes = self.max_classes

    def _mask(self) -> np.ndarray:
        mask = np.zeros(self.max_classes, np.float32)
        mask[: self.num_classes] = 1.0
        return mask

    def _check(self, embeddings: np.ndarray) -> np.ndarray:
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_dim:
            raise HeadError(
                f"embeddings must be [N, {self.embedding_dim}] for this head, got {list(embeddings.shape)}"
            )
        return embeddings

    def set_weights(self, weights: np.ndarray, bias: np.ndarray) -> None:
        """Loads weights [D, C] and bias [C] (C <= max_classes; the rest is zero) and resets the optimizer."""
        weights, bias = np.asarray(weights, np.float32), np.asarray(bias, np.float32)
        classes = bias.shape[0]
        if weights.shape != (self.embedding_dim, classes) or classes > self.max_classes:
            raise HeadError(
                f"weights {list(weights.shape)} and bias {list(bias.shape)} do not fit a head of "
                f"{self.embedding_dim} inputs and at most {self.max_classes} classes"
            )
        full_w = np.zeros((self.embedding_dim, self.max_classes), np.float32)
        full_b = np.zeros(self.max_classes, np.float32)
        full_w[:, :classes], full_b[:classes] = weights, bias
        self._runners["restore"](weights=full_w, bias=full_b)
        self.num_classes = classes

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(weights [D, C], bias [C]) of the classes in use."""
        out = self._runners["save"]()
        return out["weights"][:, : self.num_classes].copy(), out["bias"][: self.num_classes].copy()

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """Logits [N, C] of the classes in use."""
        embeddings = self._check(embeddings)
        out = self._runners["infer"](embedding=embeddings, class_mask=self._mask())
        return out["logits"][:, : self.num_classes]

    def fit(
        self,
        embeddings: np.ndarray,
        labels: Sequence[int],
        num_classes: int,
        epochs: int = 100,
        learning_rate: float = 0.01,
        weight_decay: float = 1e-4,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> list[float]:
        """Trains the head from zero on embeddings [N, D] with labels in [0, num_classes).

        Args:
          embeddings: float [N, D].
          labels: int [N].
          num_classes: classes in use (<= max_classes).
          epochs: passes over the data.
          learning_rate: Adam's step size.
          weight_decay: the L2 penalty's weight.
          batch_size: examples per step; all of them when None.
          seed: order of the examples in each epoch.

        Returns:
          The mean loss of each epoch.
        """
        embeddings = self._check(embeddings)
        labels = np.asarray(labels, np.int64)
        if not 2 <= num_classes <= self.max_classes:
            raise HeadError(
                f"this head holds 2 to {self.max_classes} classes, asked for {num_classes} "
                f"(re-export with a larger max_classes)"
            )
        if len(labels) != len(embeddings) or len(labels) == 0:
            raise HeadError(f"{len(embeddings)} embeddings and {len(labels)} labels")
        if labels.min() < 0 or labels.max() >= num_classes:
            raise HeadError(
                f"labels must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}"
            )
        if epochs < 1 or learning_rate <= 0 or weight_decay < 0:
            raise HeadError(
                f"need epochs >= 1, learning_rate > 0, weight_decay >= 0; got {epochs}, {learning_rate}, "
                f"{weight_decay}"
            )
        self.set_weights(
            np.zeros((self.embedding_dim, num_classes), np.float32),
            np.zeros(num_classes, np.float32),
        )
        one_hot = np.zeros((len(labels), self.max_classes), np.float32)
        one_hot[np.arange(len(labels)), labels] = 1.0
        mask = self._mask()
        batch_size = len(labels) if not batch_size else min(batch_size, len(labels))
        rng = np.random.default_rng(seed)
        lr, wd = np.float32(learning_rate), np.float32(weight_decay)
        history = []
        for _ in range(epochs):
            order = rng.permutation(len(labels))
            losses = []
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                out = self._runners["train"](
                    embedding=embeddings[idx],
                    label=one_hot[idx],
                    class_mask=mask,
                    learning_rate=lr,
                    weight_decay=wd,
                )
                losses.append(float(out["loss"]) * len(idx))
            history.append(sum(losses) / len(order))
        return history
