"""The one import of tf-keras (Keras 2) in edge_ssl.

Every module writes `from edge_ssl.keras import keras` and never `tf.keras`, which is Keras 3 in TensorFlow 2.21.
Keeping the import in one place keeps the whole package on one Keras, and makes moving to another one a one-line change.
"""

import tf_keras as keras

import edge_ssl  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

if not keras.__version__.startswith("2."):
    raise ImportError(
        f"edge_ssl needs tf-keras 2.x (Keras 2), found version {keras.__version__}; "
        "install the pinned requirements: pip install -r requirements.txt"
    )

__all__ = ["keras"]
