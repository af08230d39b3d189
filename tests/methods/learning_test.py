"""Learning tests: short pretraining runs on the tiny synthetic world change what the representation does.

Cross and Learn's claim: without L_div the features collapse on the synthetic world, and with it they do not. Features after ReLU already point almost the same way at random initialisation (mean pairwise cosine ~0.97),
so "collapse" is measured as spread (`metrics.spread`), not as cosine -> 1: the spread of unit-normalised features u_i is
1 - |mean_i u_i|^2, the mean squared distance of the u_i from their centroid (0 when every clip maps to one
direction, up to 1 for features spread evenly over the sphere).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from edge_ssl.configs import cross_and_learn_tiny
from edge_ssl.data import augment, synthetic
from edge_ssl.fewshot import metrics
from edge_ssl.keras import keras
from edge_ssl.methods import cross_and_learn

# Pretraining performances (3 cameras each): enough distinct videos that a batch rarely repeats one.
PRETRAIN_PERFORMANCES = 64
STEPS = 200
SEED = 0


def _pretrain_clips() -> np.ndarray:
    world = synthetic.get_config("tiny", performances=(PRETRAIN_PERFORMANCES, 0, 0))
    return np.stack([e["rgb"] for e in synthetic.generate(world, "pretrain", seed=SEED)])


class LearningTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.clips = _pretrain_clips().astype(np.float32) / 255.0

    def _prepared(self, method, seed: int) -> tf.data.Dataset:
        dataset = tf.data.Dataset.from_tensor_slices({"rgb": self.clips})
        dataset = dataset.repeat().shuffle(len(self.clips), seed=seed)
        return augment.with_seeds(dataset, seed).map(method.prepare)

    def _cross_and_learn_collapse(
        self, weight_cross: float
    ) -> tuple[dict[str, metrics.Collapse], dict[str, metrics.Collapse]]:
        """Feature spreads (and dead rows and units) on fixed prepared pairs, at initialisation and after STEPS steps
        of pretraining.

        `backbone` is the RGB stream in inference mode (moving BN statistics), the representation that is kept;
        `rgb` and `motion` are both streams in training mode, the features the loss sees. Dropout is off so that a
        spread measures how features depend on the input, not on dropout masks (the tiny CaffeNet drops half of a
        16-wide pool5, which alone spreads random-init features to ~0.4).
        """
        keras.utils.set_random_seed(SEED)
        config = dataclasses.replace(
            cross_and_learn_tiny.get_config(),
            weight_cross=weight_cross,
            dropout=0.0,
            steps=STEPS,
            seed=SEED,
        )
        method = cross_and_learn.build(config)
        probe = next(iter(self._prepared(method, SEED + 1).batch(len(self.clips))))

        def measure():
            return {
                "backbone": metrics.collapse(method.rgb_net(probe["rgb"], training=False)),
                "rgb": metrics.collapse(method.rgb_net(probe["rgb"], training=True)),
                "motion": metrics.collapse(method.motion_net(probe["motion"], training=True)),
            }

        random = measure()
        batches = self._prepared(method, SEED).batch(config.global_batch_size).take(STEPS)
        step = tf.function(lambda batch: method.train_step(batch, config.global_batch_size))
        for batch in batches:
            step(batch)
        return random, measure()

    def test_cross_and_learn_features_collapse_without_l_div_and_not_with_it(self):
        # weight_cross = 1 leaves the true pairs' similarity alone (2 L_cross - 2); 0.5 is the paper's
        # L = L_cross + L_div.
        random, without_div = self._cross_and_learn_collapse(weight_cross=1.0)
        random_again, with_div = self._cross_and_learn_collapse(weight_cross=0.5)
        self.assertEqual(
            random, random_again
        )  # same seeds, same starting point: only the loss differs
        for name in random:
            with self.subTest(features=name):
                # Collapse: every clip's features end up pointing one way, far tighter than at initialisation.
                self.assertLess(without_div[name].spread, 0.5 * random[name].spread)
                # With L_div the same run spreads the features beyond where they started, and not by switching
                # them off: spread counts only the clips whose features are not all zero.
                self.assertGreater(with_div[name].spread, random[name].spread)
                self.assertGreater(with_div[name].spread, 10.0 * without_div[name].spread)
                self.assertEqual(with_div[name].dead_rows, 0.0)


if __name__ == "__main__":
    tf.test.main()
