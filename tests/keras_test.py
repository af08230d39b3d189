"""Tests for edge_ssl.keras: the package runs on Keras 2 (tf-keras) and it trains."""

import os

import numpy as np
import tensorflow as tf

from edge_ssl.keras import keras


class KerasTest(tf.test.TestCase):

    def test_is_keras_2_from_tf_keras(self):
        self.assertTrue(keras.__version__.startswith("2."), keras.__version__)
        self.assertTrue(keras.Model.__module__.startswith("tf_keras."), keras.Model.__module__)

    def test_legacy_keras_flag_is_set_for_tensorflow(self):
        # TensorFlow's own helpers (TFLite converter, SavedModel loader) resolve `tf.keras` through this variable.
        self.assertEqual(os.environ.get("TF_USE_LEGACY_KERAS"), "1")

    def test_small_model_trains_one_step(self):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x = np.random.RandomState(0).randn(8, 3).astype("float32")
        y = x.sum(axis=1, keepdims=True)
        model.build((None, 3))
        before = [w.copy() for w in model.get_weights()]
        loss_before = model.evaluate(x, y, verbose=0)
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        loss_after = model.evaluate(x, y, verbose=0)
        self.assertTrue(any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights())))
        self.assertLess(loss_after, loss_before)


if __name__ == "__main__":
    tf.test.main()
