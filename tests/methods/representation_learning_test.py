"""Short pretraining runs on the tiny synthetic world learn something about actions they never saw.

Measured on held-out actions (never in pretraining), by leave-one-out k-NN (k = 5; the other cameras of a clip's
performance never vote; chance 20%) of each view the distiller uses, against the same network at initialisation, on
this file's world (600 pretraining clips; 240 held-out clips, 120 for seed 0's probe), 300 steps:

| seed | MoDist motion pathway | MoDist visual pathway | Cross and Learn motion stream | Cross and Learn RGB stream |
| --- | ---: | ---: | ---: | ---: |
| 0 | 20.4% -> 40.8% (this test) | 21.7% -> 16.7% | 31.7% -> 45.0% | 19.2% -> 23.3% |
| 1 | 19.6% -> 35.8% | 26.3% -> 21.2% | 32.9% -> 50.0% | 21.7% -> 19.6% |
| 2 | 20.0% -> 31.2% | 15.4% -> 13.8% | 44.2% -> 41.7% | 18.8% -> 18.3% |

Every MoDist figure but this test's was measured when MoDist's views spread a clip's frames uniformly over the
window (this test then: 22.1% -> 43.3%), not at the pathways' training strides. So at 32 px and a few hundred steps
the motion pathways learn and the RGB representations of both do not; nor does MoDist's visual pathway with the
recipe that moves it on the `small` world (moment negatives, luma differences, no L_vv, 4 test clips, a queue of 32:
31.7% -> 20.4% on seed 0). benchmarks/README.md ("What pretraining adds") has the `small` world's figures, and
("Cross and Learn on Adam") the test-sized worlds and networks tried for Cross and Learn's RGB stream with the `small`
preset's objective (32 and 48 px, 8 and 16 frames, up to 1,000 performances): no scale that trains in under a minute
gave a gain on every seed.

These tests hold the effects that are there on every seed: MoDist's motion pathway, and Muscles' frame encoder trained
as the `small` preset trains it, on its movement head alone (MoCo weighted 0) at a constant learning rate, here with a
batch of 32 and Adam 2e-3 for 300 steps: held-out k-NN 28.3% -> 41.7% (seed 0, this test), 20.0% -> 36.7% (seed 1),
24.2% -> 37.1% (seed 2), and on seed 0 with TensorFlow on one intra-op thread (other reduction orders, as on another
machine) 28.3% -> 37.9%; its movement head beating the training set's base rate on new actions (0.570 against 0.687
nats, seed 0). So the test asks for 6 points, below the smallest gain seen (9.6), not 10. With the gaze head as well
(the full objective, MoCo 0) it reached 47.5% on seed 0, with MoCo kept at 0.09 34.2%; with the tiny preset's
objective (the paper's weights and step decay) 17.5% -> 25.0% after 300 steps at a batch of 8.
"""

import numpy as np
import tensorflow as tf
from absl import logging

from edge_ssl.configs import loader
from edge_ssl.data import augment, synthetic
from edge_ssl.distill import teacher as teacher_lib
from edge_ssl.fewshot import metrics
from edge_ssl.keras import keras
from edge_ssl.losses import body_signals
from edge_ssl.methods import registry

PERFORMANCES = (200, 0, 80)  # 600 pretraining clips, 240 held-out clips of 5 new actions
WORLD_SEED = 1
SEED = 0
# The `small` preset's objective, read from it, at tiny size with a batch and learning rate for 300 steps.
_MUSCLES_SMALL = loader.load("muscles", "small")
MUSCLES_SMALL_OBJECTIVE = tuple(
    f"{field}={getattr(_MUSCLES_SMALL, field)}"
    for field in ("objective", "moco_weight", "movement_weight", "lr_decay")
) + ("learning_rate=2e-3", "global_batch_size=32")


def _arrays(split: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    world = synthetic.get_config("tiny", performances=PERFORMANCES)
    out = synthetic.stack_examples(synthetic.generate(world, split, seed=WORLD_SEED), keys)
    out["rgb"] = out["rgb"].astype(np.float32) / 255.0
    return out


def _build(name: str, overrides: tuple[str, ...] = ()):
    keras.utils.set_random_seed(SEED)
    config = loader.load(name, "tiny", [f"seed={SEED}", *overrides])
    return registry.get(name).build(config), config


def _train(method, config, data: dict[str, np.ndarray], steps: int) -> None:
    dataset = tf.data.Dataset.from_tensor_slices(data).repeat().shuffle(len(data["rgb"]), seed=SEED)
    dataset = augment.with_seeds(dataset, SEED).map(method.prepare)
    batches = dataset.batch(config.global_batch_size, drop_remainder=True).take(steps)
    step = tf.function(lambda batch: method.train_step(batch, config.global_batch_size))
    for batch in batches:
        step(batch)


class RepresentationLearningTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keys = ("rgb", "moved", "gaze", "label", "performance_id")
        cls.pretrain = _arrays("pretrain", keys)
        cls.heldout = _arrays("heldout", keys)

    def _knn(self, method, view: str) -> tuple[float, metrics.Collapse]:
        # The views as the distiller builds them, without freezing the networks the next steps still train.
        views = method.teacher_views()
        teacher = teacher_lib.Teacher(method, views, "", "")
        features = teacher.embed_clips(view, self.heldout["rgb"])
        accuracy = metrics.knn_accuracy(
            features, self.heldout["label"], self.heldout["performance_id"], 5
        )
        return accuracy, metrics.collapse(features)

    def test_modist_motion_pathway_learns_what_tells_new_actions_apart(self):
        method, config = _build("modist")
        before, _ = self._knn(method, "motion")
        _train(method, config, {"rgb": self.pretrain["rgb"]}, steps=300)
        after, collapse = self._knn(method, "motion")
        message = f"held-out k-NN of the motion pathway: {before:.3f} at initialisation, {after:.3f} after"
        logging.info(message)
        self.assertGreater(after, before + 0.10, message)
        self.assertEqual(collapse.dead_rows, 0.0)

    def test_muscles_frame_encoder_learns_from_its_movement_head(self):
        # The `small` preset's objective (body signals alone: movement weighted 1, MoCo 0, a constant learning rate)
        # at tiny size, with a batch and learning rate big enough for 300 steps to show it.
        method, config = _build("muscles", MUSCLES_SMALL_OBJECTIVE)
        before, _ = self._knn(method, "visual")
        train = {k: self.pretrain[k] for k in ("rgb", "moved", "gaze")}
        _train(method, config, train, steps=300)
        after, collapse = self._knn(method, "visual")
        heldout = {k: self.heldout[k] for k in ("rgb", "moved", "gaze")}
        batch = next(
            iter(
                augment.with_seeds(tf.data.Dataset.from_tensor_slices(heldout), SEED + 1)
                .map(method.prepare)
                .batch(len(heldout["rgb"]))
            )
        )
        logits = method.predict_signals(batch["clip"])["moved"]
        learned = float(
            tf.reduce_mean(body_signals.masked_binary_cross_entropy(logits, batch["moved"]))
        )
        # The best constant a model could learn without looking: the training set's rate of moving limbs.
        moved = self.pretrain["moved"]
        rate = float(np.mean(moved[moved >= 0]))
        constant = tf.fill(tf.shape(logits), float(np.log(rate / (1.0 - rate))))
        baseline = float(
            tf.reduce_mean(body_signals.masked_binary_cross_entropy(constant, batch["moved"]))
        )
        message = (
            f"held-out k-NN of the frame encoder: {before:.3f} at initialisation, {after:.3f} after; "
            f"held-out movement BCE: learned {learned:.4f}, constant {baseline:.4f}"
        )
        logging.info(message)
        self.assertLess(learned, baseline - 0.02, message)
        self.assertGreater(after, before + 0.06, message)
        self.assertEqual(collapse.dead_rows, 0.0)


if __name__ == "__main__":
    tf.test.main()
