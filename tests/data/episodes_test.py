"""Tests for edge_ssl.data.episodes: seeded N-way K-shot Q-query episodes."""

import numpy as np
from absl.testing import absltest

from edge_ssl.data import episodes

LABELS = np.repeat(np.arange(6), 8)  # 6 classes, 8 examples each


class EpisodesTest(absltest.TestCase):

    def test_episode_shape_and_disjoint_support_and_query(self):
        (ep,) = episodes.sample_episodes(LABELS, 1, ways=5, shots=2, queries=3, seed=0)
        self.assertLen(ep.classes, 5)
        self.assertLen(ep.support, 10)
        self.assertLen(ep.query, 15)
        self.assertEmpty(set(ep.support) & set(ep.query))
        for idx, lab in ((ep.support, ep.support_labels), (ep.query, ep.query_labels)):
            np.testing.assert_array_equal(ep.classes[lab], LABELS[idx])

    def test_same_seed_same_episodes_other_seed_others(self):
        a = episodes.sample_episodes(LABELS, 4, 3, 1, 2, seed=7)
        b = episodes.sample_episodes(LABELS, 4, 3, 1, 2, seed=7)
        c = episodes.sample_episodes(LABELS, 4, 3, 1, 2, seed=8)
        np.testing.assert_array_equal(
            np.concatenate([e.query for e in a]), np.concatenate([e.query for e in b])
        )
        self.assertFalse(
            np.array_equal(
                np.concatenate([e.query for e in a]), np.concatenate([e.query for e in c])
            )
        )

    def test_a_class_with_too_few_examples_is_named(self):
        labels = np.concatenate([LABELS, [6, 6]])
        with self.assertRaisesRegex(ValueError, "'jump' has 2"):
            episodes.sample_episodes(
                labels, 1, 5, 2, 3, seed=0, class_names=list("abcdef") + ["jump"]
            )

    def test_too_many_ways_and_bad_settings_are_errors(self):
        with self.assertRaisesRegex(ValueError, "7-way episodes need 7 classes"):
            episodes.sample_episodes(LABELS, 1, 7, 1, 1, seed=0)
        with self.assertRaisesRegex(ValueError, "shots >= 1"):
            episodes.sample_episodes(LABELS, 1, 5, 0, 1, seed=0)
        with self.assertRaisesRegex(ValueError, "num_episodes"):
            episodes.sample_episodes(LABELS, 0, 5, 1, 1, seed=0)


if __name__ == "__main__":
    absltest.main()
