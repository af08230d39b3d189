"""Tests for edge_ssl.fewshot.heads: the nearest-prototype map and the one interface the runner's heads share."""

import numpy as np
from absl.testing import absltest

from edge_ssl.fewshot import heads


class LinearMapTest(absltest.TestCase):

    def test_a_prototype_map_classifies_by_the_nearest_class_mean(self):
        rng = np.random.default_rng(0)
        centres = np.eye(3, 8, dtype=np.float32)
        labels = np.repeat(np.arange(3), 4)
        embeddings = centres[labels] + 0.05 * rng.normal(size=(12, 8)).astype(np.float32)
        head = heads.LinearMap("prototype")
        head.fit_arrays(embeddings, labels, 3)
        np.testing.assert_array_equal(head.predict_arrays(centres), [0, 1, 2])
        self.assertEqual(head.history, [])  # nothing trained
        self.assertEqual(head.weights.shape, (8, 3))
        self.assertIsInstance(head, heads.Head)

    def test_a_linear_map_needs_its_trainer_and_a_known_kind(self):
        with self.assertRaisesRegex(ValueError, "with a trainer"):
            heads.LinearMap("linear")
        with self.assertRaisesRegex(ValueError, "not 'finetune'"):
            heads.LinearMap("finetune")
        with self.assertRaisesRegex(ValueError, r"classes \[2\] have no support examples"):
            heads.LinearMap("prototype").fit_arrays(np.ones((2, 4)), np.array([0, 1]), 3)

    def test_the_source_file_names_the_classifier_s_precision(self):
        head = heads.LinearMap("prototype", "/artifacts/model_int8.tflite")
        self.assertEqual((head.source, head.precision), ("model_int8.tflite", "int8"))


if __name__ == "__main__":
    absltest.main()
