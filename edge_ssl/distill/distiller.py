"""Distillation as a Method: a frozen teacher's representation moved into a compact RGB-only student.

The distiller follows the Method contract (edge_ssl/methods/base.py), so the pretraining engine trains it unchanged:
checkpoints (the student, its heads, the optimizer, the class prototypes), resume, NaN guard, summaries and the
SavedModel of the `backbone`, which here is the student's whole-clip model.

Per example, `prepare` takes one window of the student's clip length from the video, crops and flips it once, and
gives the student its RGB frames and the teacher its own inputs of the same window (optical flow for a MoDist teacher
is computed by the data pipeline before; the student never sees it). The step embeds the window with the teacher
(`training=False`, outside the gradient) and trains the student and two small heads:
- `embedding`: cosine regression of the student's projection to the teacher's visual embedding;
- `motion`: cosine regression of a second projection to the teacher's motion embedding (MoDist's motion pathway,
  Cross and Learn's motion stream): the student learns from RGB what the teacher saw in flow;
- `relational`: InfoNCE of the student's visual projection against the global batch's teacher visual embeddings;
- `motion_relational`: the same for the motion projection and the teacher's motion embeddings. Cosine regression
  alone learns little from a teacher whose embeddings all point almost one way (Cross and Learn's motion stream after
  ReLU); InfoNCE's gradient, t_i minus the softmax-weighted mean of the batch's t_j, is what sets one clip apart;
- `logits` (only when `num_classes` > 0 and the data has labels): KL between teacher and student similarities to
  class prototypes, a running mean of teacher embeddings per class.
No teacher variable is in the optimizer.
"""

import dataclasses

import tensorflow as tf

from edge_ssl import tracing
from edge_ssl.data import augment, synthetic
from edge_ssl.distill import teacher as teacher_lib
from edge_ssl.keras import keras
from edge_ssl.losses import distillation, distributed
from edge_ssl.methods import base
from edge_ssl.models import student as student_lib
from edge_ssl.train import optim


@dataclasses.dataclass(frozen=True)
class DistillConfig(base.MethodConfig):
    method: str = "distill"
    student: str = "small"  # the student variant (`models/student.VARIANTS`)
    teacher: str = ""  # the teacher's pretraining workdir
    weight_embedding: float = 1.0
    weight_motion: float = 1.0
    weight_relational: float = 0.5
    weight_motion_relational: float = 0.0
    weight_logits: float = 0.5
    temperature: float = 0.1  # of the relational terms
    logit_temperature: float = 4.0
    num_classes: int = (
        0  # > 0: labels in the data feed the logit term (the synthetic world: its action count)
    )
    # The label of each label's mirror image, used when a training clip is flipped (the synthetic world's
    # ACTION_FLIP: wave_left <-> wave_right); empty: labels are mirror-symmetric.
    label_flip: tuple[int, ...] = ()
    prototype_momentum: float = 0.9
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    global_batch_size: int = 16

    def __post_init__(self):
        super().__post_init__()
        checks = (
            (
                self.student in student_lib.VARIANTS,
                f"student must be one of {sorted(student_lib.VARIANTS)}, got {self.student!r}",
            ),
            (bool(self.teacher), "teacher (a pretraining workdir) is required"),
            (
                min(
                    self.weight_embedding,
                    self.weight_motion,
                    self.weight_relational,
                    self.weight_motion_relational,
                    self.weight_logits,
                )
                >= 0,
                "loss weights must be >= 0",
            ),
            (self.temperature > 0 and self.logit_temperature > 0, "temperatures must be positive"),
            (self.num_classes >= 0, "num_classes must be >= 0"),
            (
                not self.label_flip or sorted(self.label_flip) == list(range(self.num_classes)),
                "label_flip must be empty or a permutation of the num_classes labels",
            ),
            (0.0 <= self.prototype_momentum < 1.0, "prototype_momentum must be in [0, 1)"),
            (self.learning_rate > 0, "learning_rate must be positive"),
            (0.0 <= self.warmup_fraction < 1.0, "warmup_fraction must be in [0, 1)"),
            (self.global_batch_size >= 2, "global_batch_size must be >= 2 (the relational term)"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"distill config: {message}")

    @property
    def world(self) -> str:
        return synthetic.CONFIG_WORLDS[self.student]

    def identity(self) -> dict[str, str]:
        return {"student": self.student}


class Distiller(base.Method):
    """Teacher -> student; `backbone` is the student (whole clip -> L2-normalised embedding)."""

    name = "distill"

    def __init__(
        self,
        config: DistillConfig,
        teacher: teacher_lib.Teacher,
        streaming: student_lib.Student,
    ):
        super().__init__(config)
        c = config
        self.teacher = teacher
        self.streaming = streaming  # the whole-clip model with its streaming step
        self.student = streaming.model
        student = self.student
        _, self.frames, self.image_size, _, _ = student.input_shape
        dim = int(student.output.shape[-1])
        keys = (
            ["rgb"]
            + (["flow"] if teacher.needs_flow else [])
            + (["pose2d"] if teacher.needs_pose else [])
        )
        self.use_labels = c.num_classes > 0 and c.weight_logits > 0
        self.input_keys = tuple(keys + (["label"] if self.use_labels else []))
        self.heads = {
            name: keras.Sequential(
                [keras.layers.Dense(d, name=f"{name}_projection")], name=f"{name}_head"
            )
            for name, d in teacher.dims.items()
        }
        for head in self.heads.values():
            head.build([None, dim])
        teacher_dim = teacher.dims["visual"]
        self.prototypes = tf.Variable(
            tf.zeros([max(c.num_classes, 1), teacher_dim]),
            trainable=False,
            name="prototypes",
            synchronization=tf.VariableSynchronization.ON_WRITE,
            aggregation=tf.VariableAggregation.MEAN,
        )
        schedule = optim.warmup_cosine(c.learning_rate, c.steps, c.warmup_fraction)
        self._optimizer = optim.loss_scaled(
            keras.optimizers.AdamW(schedule, weight_decay=c.weight_decay), c.precision
        )

    @property
    def encoders(self):
        return {"student": self.student, **{f"head_{k}": v for k, v in self.heads.items()}}

    @property
    def backbone(self):
        return self.student

    @property
    def optimizers(self):
        return {"adamw": self._optimizer}

    def save_backbone(self, path: str) -> None:
        """The student as a SavedModel with its clip (`serving_default`) and streaming (`step`) signatures."""
        self.streaming.save(path)

    def checkpoint_items(self):
        return {**super().checkpoint_items(), "prototypes": self.prototypes}

    @tracing.as_written
    def prepare(self, example, seed):
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        window = {
            k: tf.convert_to_tensor(example[k], tf.float32)
            for k in ("rgb", "flow", "pose2d")
            if k in example
        }
        length = tf.shape(window["rgb"])[0]
        # A random window of the student's clip length; a shorter video repeats its last frame (the data layer's rule).
        start = tf.random.stateless_uniform(
            [], seeds[0], 0, tf.maximum(length - self.frames, 0) + 1, dtype=tf.int32
        )
        index = tf.minimum(tf.range(self.frames) + start, length - 1)
        window = {k: tf.gather(v, index) for k, v in window.items()}
        if self.use_labels:
            window["label"] = tf.cast(example["label"], tf.int32)
        window = augment.random_flip(window, seeds[1], label_flip=self.config.label_flip or None)
        size = (self.image_size, self.image_size)
        out = {"rgb": augment.resize({"rgb": window["rgb"]}, size)["rgb"]}
        out.update(self.teacher.inputs({k: v for k, v in window.items() if k != "label"}))
        if self.use_labels:
            out["label"] = window["label"]
        return out

    def losses(self, batch, global_batch_size, training=True):
        c = self.config
        targets = self.teacher.embed(batch)
        embedding = optim.f32(self.student(batch["rgb"], training=training))
        projected = {
            name: optim.f32(head(embedding, training=training)) for name, head in self.heads.items()
        }
        per = {
            "embedding": distillation.cosine_regression(projected["visual"], targets["visual"]),
            "relational": distillation.relational_contrastive(
                projected["visual"], targets["visual"], c.temperature
            ),
        }
        weights = {"embedding": c.weight_embedding, "relational": c.weight_relational}
        if "motion" in projected:
            per["motion"] = distillation.cosine_regression(projected["motion"], targets["motion"])
            per["motion_relational"] = distillation.relational_contrastive(
                projected["motion"], targets["motion"], c.temperature
            )
            weights["motion"] = c.weight_motion
            weights["motion_relational"] = c.weight_motion_relational
        if self.use_labels:
            prototypes = tf.stop_gradient(self.prototypes)
            per["logits"] = distillation.logit_distillation(
                distillation.prototype_logits(projected["visual"], prototypes),
                distillation.prototype_logits(targets["visual"], prototypes),
                c.logit_temperature,
            )
            weights["logits"] = c.weight_logits
        out = {
            name: distributed.global_mean(value, global_batch_size) for name, value in per.items()
        }
        out["total"] = tf.add_n([weights[name] * out[name] for name in per])
        return out, targets

    def _update_prototypes(self, labels: tf.Tensor, teacher_embedding: tf.Tensor) -> None:
        """Moves each class's prototype toward the mean teacher embedding of its examples in the global batch."""
        c = self.config
        one_hot = tf.one_hot(labels, c.num_classes)  # [B, C]
        sums = tf.matmul(one_hot, teacher_embedding, transpose_a=True)  # [C, D]
        counts = tf.reduce_sum(one_hot, axis=0)[:, None]
        sums, _ = distributed.sum_across_replicas(sums)
        counts, _ = distributed.sum_across_replicas(counts)
        present = counts > 0
        means = tf.math.divide_no_nan(sums, counts)
        empty = tf.reduce_all(tf.equal(self.prototypes, 0.0), axis=-1, keepdims=True)
        moved = tf.where(
            empty,
            means,
            c.prototype_momentum * self.prototypes + (1 - c.prototype_momentum) * means,
        )
        self.prototypes.assign(tf.where(present, moved, self.prototypes))

    @tracing.as_written
    def train_step(self, batch, global_batch_size):
        variables = [v for model in self.encoders.values() for v in model.trainable_variables]
        with tf.GradientTape() as tape:
            losses, targets = self.losses(batch, global_batch_size)
        optim.apply_gradients(
            self._optimizer, losses["total"], tape, variables, self.config.clip_norm
        )
        if self.use_labels:
            self._update_prototypes(batch["label"], targets["visual"])
        return losses


def build(config: DistillConfig) -> Distiller:
    """A distiller from its config: the teacher loaded from `config.teacher`, the student variant `config.student`."""
    with optim.precision_policy(config.precision):
        teacher = teacher_lib.load_teacher(config.teacher)
        return Distiller(config, teacher, student_lib.build_student(config.student))
