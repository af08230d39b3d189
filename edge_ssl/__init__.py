"""edge_ssl: self-supervised video and pose representations, from pretraining to a Jetson-class device."""

import os as _os

from edge_ssl import gc_freeze as _gc_freeze

# TensorFlow 2.21 reads this when it is first imported: with it, `tf.keras` inside TensorFlow's own helpers (TFLite
# converter, SavedModel, tf2onnx) is tf-keras (Keras 2), the same Keras our models are built with. Importing any
# edge_ssl module sets it before TensorFlow loads; a value the user set is kept.
_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI, BF16 or AMX; elsewhere (AVX2-only
# machines) 3D convolutions train on Eigen's volume-patch kernels: MoDist's tiny config took 1.33 s a step on a 2-core
# AVX2 EPYC, 37 ms with oneDNN (benchmarks/README.md, "oneDNN on AVX2-only machines"). On every CPU, then; a value
# the user set (TF_ENABLE_ONEDNN_OPTS=0) is kept.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# In an absl program (the binaries, the tests), Python's garbage collector skips the objects the imports built from
# just before `main` on: without it every full collection, and the interpreter's exit, walks TensorFlow's modules
# again (edge_ssl/gc_freeze.py, which imports absl alone, no TensorFlow).
_gc_freeze.freeze_before_main()
