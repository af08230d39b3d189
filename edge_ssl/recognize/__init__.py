"""Live recognition on the device: frames from a camera, file or stream in, smoothed actions and events out.

`classifier` loads the runner's `classifier.tflite` (or the same head on another exported form) and streams it
frame by frame with explicit state; `recognizer.Recognizer` preprocesses, resamples to the model's frame rate and
decides (`decisions`); `sources` reads OpenCV sources that never fall behind when live; `pipeline.run` is what
`python -m edge_ssl.cli.recognize` calls; `evaluate` scores a run against a true timeline. No TensorFlow anywhere
here: LiteRT or ONNX Runtime is enough.
"""
