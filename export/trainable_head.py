"""Builds the linear classification head that trains inside the LiteRT interpreter, with builtin ops only.

The few-shot runner fits its head on the device, where TensorFlow may not be installed, with
`export.runtime.head_trainer.HeadTrainer`; `build` (TensorFlow, at export time) makes the model it runs, which holds
the head's variables and four signatures:
- `train(embedding [B, D], label [B, C] one-hot, class_mask [C], learning_rate [], weight_decay []) -> loss []`:
  one Adam step on the softmax cross-entropy of the classes where `class_mask` is 1 (the model has room for
  `max_classes`; a run uses the first C of them), plus `weight_decay * |W|^2 / 2`;
- `infer(embedding [B, D], class_mask [C]) -> logits [B, C]` (masked classes get -1e4);
- `save() -> weights [D, C], bias [C]`, and `restore(weights, bias) -> weights, bias`, which also resets Adam.

The gradients are written out by hand (softmax minus one-hot, one matrix product), not taken from a tape: a taped
gradient lowers to ops such as BroadcastGradientArgs that need Flex, and the Python LiteRT runtime has no Flex
delegate (`../shared/reference/edge_stack.md`, section 5). The converted model holds only builtins.

    content = trainable_head.build(embedding_dim=256, max_classes=64)   # needs TensorFlow (export time)
    head = head_trainer.HeadTrainer(content)                             # needs LiteRT only
    head.fit(embeddings, labels, num_classes=5, epochs=100)
    weights, bias = head.weights()
"""

from export.runtime.head_trainer import (
    ADAM,
    DEFAULT_MAX_CLASSES,
    MASKED_LOGIT,
    SIGNATURES,
    HeadError,
)


def build(embedding_dim: int, max_classes: int = DEFAULT_MAX_CLASSES) -> bytes:
    """The `.tflite` bytes of the trainable head (imports TensorFlow: run at export time or where it is installed).

    Args:
      embedding_dim: D, the size of the embeddings it classifies.
      max_classes: the most classes a run can use.

    Returns:
      A builtin-only TFLite model with the four signatures of the module docstring; weights start at zero.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (the device runs HeadTrainer without TF)

    from edge_ssl import tracing  # pylint: disable=g-import-not-at-top

    beta1, beta2, epsilon = ADAM

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
            return logits + (1.0 - class_mask) * MASKED_LOGIT

        def _adam(self, var, m, v, grad, lr, correction):
            m.assign(beta1 * m + (1.0 - beta1) * grad)
            v.assign(beta2 * v + (1.0 - beta2) * grad * grad)
            var.assign_sub(lr * correction * m / (tf.sqrt(v) + epsilon))

        @tracing.function(
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
            correction = tf.sqrt(1.0 - tf.pow(beta2, self.t)) / (1.0 - tf.pow(beta1, self.t))
            self._adam(self.w, self.m_w, self.v_w, grad_w, learning_rate, correction)
            self._adam(self.b, self.m_b, self.v_b, grad_b, learning_rate, correction)
            return {"loss": loss}

        @tracing.function(
            input_signature=[
                tf.TensorSpec([None, d], tf.float32, name="embedding"),
                tf.TensorSpec([c], tf.float32, name="class_mask"),
            ]
        )
        def infer(self, embedding, class_mask):
            return {"logits": self._logits(embedding, class_mask)}

        @tracing.function(input_signature=[])
        def save(self):
            return {"weights": tf.identity(self.w), "bias": tf.identity(self.b)}

        @tracing.function(
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
