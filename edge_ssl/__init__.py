"""edge_ssl: self-supervised video and pose representations, from pretraining to a Jetson-class device."""

import os as _os

# TensorFlow 2.21 reads this when it is first imported: with it, `tf.keras` inside TensorFlow's own helpers (TFLite
# converter, SavedModel, tf2onnx) is tf-keras (Keras 2), the same Keras our models are built with. Importing any
# edge_ssl module sets it before TensorFlow loads; a value the user set is kept.
_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
