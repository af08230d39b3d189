"""Tests for edge_ssl.fewshot.cross_view: the protocol trains on one view and scores only the others."""

import numpy as np
import tensorflow as tf

from edge_ssl.fewshot import cross_view


class CrossViewTest(tf.test.TestCase):

    def test_view_invariant_codes_transfer_and_view_specific_ones_do_not(self):
        rng = np.random.default_rng(0)
        labels = np.repeat(np.arange(3), 20)
        views = np.tile([0, 1], 30)
        # The class shows in channel 0 the same way in both views; in the "specific" codes view 1 shows it shifted
        # to another class's value, as a view-dependent code would.
        noise = rng.normal(0, 0.1, (60, 6, 2)).astype("float32")
        invariant = noise.copy()
        invariant[:, :, 0] += 2.0 * labels[:, None]
        specific = noise.copy()
        specific[:, :, 0] += 2.0 * np.where(views == 1, (labels + 1) % 3, labels)[:, None]
        kwargs = dict(num_classes=3, filters=(16,), kernel=3, epochs=100, batch_size=8, seed=0)
        good = cross_view.single_shot_cross_view(invariant, labels, views, **kwargs)
        bad = cross_view.single_shot_cross_view(specific, labels, views, train_views=[0], **kwargs)
        self.assertEqual(set(good["per_view"]), {0, 1})
        self.assertGreater(good["mean"], 0.9)
        self.assertLess(bad["mean"], 0.3)

    def test_a_view_holding_every_clip_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "view 0"):
            cross_view.single_shot_cross_view(
                np.zeros((4, 3, 2)), [0, 1, 0, 1], [0, 0, 0, 0], num_classes=2
            )
        with self.assertRaisesRegex(ValueError, "sequences"):
            cross_view.fit_temporal_classifier(np.zeros((4, 3)), [0, 1, 0, 1], 2)


if __name__ == "__main__":
    tf.test.main()
