"""Distillation losses: a student's embedding pulled to a frozen teacher's, per example.

- Embedding regression (cosine): 1 - cos(s_i, t_i), s_i the student's projection into the teacher's space.
- Relational contrastive (CRD-style, Tian et al., ICLR 2020, in its InfoNCE form): s_i must pick its own teacher
  embedding t_i among all teacher embeddings of the global batch, -log softmax_j(s_i . t_j / tau)_i, so the student
  also reproduces how the teacher relates different clips, not only where each one lands.
- Logit distillation (Hinton et al., 2015) where labels exist: the teacher's logits are cosine similarities of its
  embedding to class prototypes (a running mean of teacher embeddings per class), the student's logits those of its
  projection to the same prototypes; KL(softmax(t / T) || softmax(s / T)) * T^2.
Teacher tensors are constants (no gradient reaches the teacher).
"""

import tensorflow as tf

from edge_ssl.losses import contrastive


def _normalize(x: tf.Tensor) -> tf.Tensor:
    return tf.math.l2_normalize(tf.cast(x, tf.float32), axis=-1)


def cosine_regression(student: tf.Tensor, teacher: tf.Tensor) -> tf.Tensor:
    """1 - cos(student_i, teacher_i) per example; [B, D], [B, D] -> [B] in [0, 2]."""
    s, t = _normalize(student), tf.stop_gradient(_normalize(teacher))
    return 1.0 - tf.reduce_sum(s * t, axis=-1)


def relational_contrastive(student: tf.Tensor, teacher: tf.Tensor, temperature: float) -> tf.Tensor:
    """InfoNCE of each student row against every teacher row of the global batch (gathered across replicas) -> [B]."""
    return contrastive.info_nce_batch(_normalize(student), _normalize(teacher), temperature)


def prototype_logits(embedding: tf.Tensor, prototypes: tf.Tensor) -> tf.Tensor:
    """Cosine similarity of each row [B, D] to each prototype [C, D] -> [B, C]."""
    return tf.matmul(_normalize(embedding), _normalize(prototypes), transpose_b=True)


def logit_distillation(
    student_logits: tf.Tensor, teacher_logits: tf.Tensor, temperature: float
) -> tf.Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)) * T^2 per example -> [B]."""
    t = tf.stop_gradient(tf.nn.softmax(tf.cast(teacher_logits, tf.float32) / temperature))
    log_s = tf.nn.log_softmax(tf.cast(student_logits, tf.float32) / temperature)
    log_t = tf.math.log(tf.maximum(t, 1e-12))
    return tf.reduce_sum(t * (log_t - log_s), axis=-1) * temperature**2
