"""Model complexity: multiply-accumulate counts of the layers that dominate it (convolutions and dense layers).

Counted per example at the model's static input shape: a Conv/Dense output element costs (kernel volume x input
channels / groups) multiply-adds; a depthwise convolution costs its kernel area per output element. FLOPs are twice
the multiply-adds. Normalisation, activations, pooling and additions are not counted (a few percent at most). A
custom layer that computes a convolution itself (edge_ssl.models.temporal.CausalTemporalConv) reports its own count
through a `multiply_adds()` method.
"""

import math

from edge_ssl.keras import keras

_CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def _macs(layer) -> int:
    own_count = getattr(layer, "multiply_adds", None)
    if callable(own_count):
        return int(own_count())
    out = layer.output_shape
    if isinstance(out, list):
        out = out[0]
    out_elements = math.prod(d for d in out[1:] if d is not None)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return out_elements * math.prod(layer.kernel_size)
    if isinstance(layer, _CONV):
        in_channels = layer.input_shape[-1]
        return out_elements * math.prod(layer.kernel_size) * in_channels // layer.groups
    if isinstance(layer, keras.layers.Dense):
        return out_elements * layer.input_shape[-1]
    return 0


def multiply_adds(model: keras.Model) -> int:
    """Multiply-accumulates of one example through `model` (nested models and TimeDistributed included)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += multiply_adds(layer)
        elif isinstance(layer, keras.layers.TimeDistributed):
            steps = layer.input_shape[1]
            inner = layer.layer
            total += steps * (
                multiply_adds(inner) if isinstance(inner, keras.Model) else _macs_of_wrapped(layer)
            )
        else:
            total += _macs(layer)
    return total


def _macs_of_wrapped(layer: keras.layers.TimeDistributed) -> int:
    inner = layer.layer
    if not isinstance(inner, (*_CONV, keras.layers.Dense)):
        return 0
    out_elements = math.prod(d for d in layer.output_shape[2:] if d is not None)
    in_channels = layer.input_shape[-1]
    if isinstance(inner, keras.layers.Dense):
        return out_elements * in_channels
    return out_elements * math.prod(inner.kernel_size) * in_channels // inner.groups


def flops(model: keras.Model) -> int:
    """Floating-point operations of one example (2 x multiply-adds)."""
    return 2 * multiply_adds(model)
