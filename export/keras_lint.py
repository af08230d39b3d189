"""Op lint: what an edge runtime cannot run, or runs badly, found from a Keras model before any export.

`lint_model(model)` walks every layer (into nested models, TimeDistributed and other wrappers, and the sublayers of
layers it does not know) and checks each against `RULES`, one table for four targets:

- `tflite_builtin`: TFLite / LiteRT with builtin ops only, float32 or float16. Ops without a builtin need Flex
  (SELECT_TF_OPS), which the Python LiteRT interpreter no longer ships (TF >= 2.20), so they are errors.
- `tflite_int8`: full-integer TFLite. An op without an int8 kernel stays float32 between DEQUANTIZE and QUANTIZE:
  an error for the convolutions that carry the compute, a warning for cheap ops.
- `xnnpack`: LiteRT's default CPU delegate. An op it does not delegate runs on TFLite's reference kernel and cuts
  the delegated graph in two: an error for the convolutions that carry the compute, a warning otherwise.
- `tensorrt`: TensorRT 10 through ONNX (tf2onnx), the Jetson path.

Each finding has a severity (`error`: the target cannot run the model as intended; `warning`: it runs, with a cost
or a caveat worth knowing) and a kind (`needs_flex`, `float_fallback`, `not_delegated`, `unsupported`,
`dynamic_shape`, `unchecked`). A target is `ok` when it has no errors. Layers with no rule are `unchecked` warnings:
the lint never passes silently over what it cannot see.

The facts behind the rules were observed with TF 2.21's converter and ai-edge-litert (see
`shared/reference/edge_stack.md`, section 4): CONV_3D and CONV_3D_TRANSPOSE are builtins but stay float32 in int8
models and XNNPACK does not delegate them; tf.MaxPool3D and tf.AvgPool3D have no builtin; GRU and SimpleRNN become
WHILE loops; ELU keeps a float kernel in int8 models.

The checks of converted graphs (TFLite flatbuffers, ONNX) are `export.graph_lint`'s: the same `Finding`s (from
`export.lint_result`, re-exported here) with `source` set to the artifact's file and the op in `layer`.
"""

import dataclasses
from collections.abc import Iterator, Sequence

from edge_ssl.keras import keras

# The result types live in a module without TensorFlow (export.graph_lint uses them on a device); re-exported here.
from export.lint_result import (  # pylint: disable=unused-import
    ERROR,
    KINDS,
    TARGET_DESCRIPTIONS,
    TARGETS,
    WARNING,
    Finding,
    LintError,
    LintResult,
    check_targets,
)


@dataclasses.dataclass(frozen=True)
class Rule:
    """What one target makes of a layer: a severity, a kind from KINDS and the reason, said for a user."""

    severity: str
    kind: str
    reason: str


def _conv3d_rules(op: str) -> dict[str, Rule]:
    return {
        "tflite_int8": Rule(
            ERROR,
            "float_fallback",
            f"{op} has no int8 kernel: the converter keeps it float32 between DEQUANTIZE and QUANTIZE",
        ),
        "xnnpack": Rule(
            ERROR,
            "not_delegated",
            f"XNNPACK does not delegate {op}; it runs on TFLite's reference kernel",
        ),
    }


def _flex_rules(tf_op: str) -> dict[str, Rule]:
    reason = (
        f"tf.{tf_op} has no TFLite builtin and needs Flex (SELECT_TF_OPS), which LiteRT's Python interpreter no "
        "longer ships"
    )
    return {
        t: Rule(ERROR, "needs_flex", reason) for t in ("tflite_builtin", "tflite_int8", "xnnpack")
    }


def _while_loop_rules(layer: str) -> dict[str, Rule]:
    return {
        "tflite_builtin": Rule(
            WARNING, "unsupported", f"{layer} converts to a WHILE loop, not a fused kernel"
        ),
        "tflite_int8": Rule(
            WARNING, "float_fallback", f"{layer}'s WHILE loop is only partly quantised"
        ),
        "xnnpack": Rule(WARNING, "not_delegated", "XNNPACK does not delegate WHILE loops"),
        "tensorrt": Rule(
            WARNING, "unsupported", f"{layer} becomes an ONNX Loop/Scan; check the converted graph"
        ),
    }


_FINE: dict[str, Rule] = {}
_ELU = {"tflite_int8": Rule(WARNING, "float_fallback", "ELU keeps a float kernel in int8 models")}
_UNCHECKED_OPS = "arbitrary TensorFlow code: the Keras-level lint cannot see its ops"

# The one table. Keys: a Keras layer class name, `activation:<name>` for the activation of any layer, or
# `tf_op:<symbol>` for a TensorFlow function applied to Keras tensors (a TFOpLambda layer). Values: target -> Rule;
# a target not named is fine. A key with an empty dict is known to be fine everywhere. Containers (functional and
# sequential models, wrappers) have no rule of their own: the lint checks what they hold.
RULES: dict[str, dict[str, Rule]] = {
    # Video layers that edge runtimes handle badly or not at all.
    "Conv3D": _conv3d_rules("CONV_3D"),
    "Conv3DTranspose": _conv3d_rules("CONV_3D_TRANSPOSE"),
    "MaxPooling3D": _flex_rules("MaxPool3D"),
    "AveragePooling3D": _flex_rules("AvgPool3D"),
    "tf_op:nn.conv3d": _conv3d_rules("CONV_3D"),
    "tf_op:nn.max_pool3d": _flex_rules("MaxPool3D"),
    "tf_op:nn.avg_pool3d": _flex_rules("AvgPool3D"),
    # Recurrent layers: TFLite fuses LSTM into UNIDIRECTIONAL_SEQUENCE_LSTM, the others become loops.
    "LSTM": {
        "xnnpack": Rule(
            WARNING,
            "not_delegated",
            "XNNPACK does not delegate UNIDIRECTIONAL_SEQUENCE_LSTM; it runs on the builtin kernel",
        ),
        "tensorrt": Rule(
            WARNING, "unsupported", "LSTM becomes an ONNX LSTM or Loop; check the converted graph"
        ),
    },
    "GRU": _while_loop_rules("GRU"),
    "SimpleRNN": _while_loop_rules("SimpleRNN"),
    # Arbitrary code.
    "Lambda": {
        t: Rule(WARNING, "unchecked", f"a Lambda layer runs {_UNCHECKED_OPS}") for t in TARGETS
    },
    # Activations, wherever they appear (an ELU or Activation layer, or a layer's `activation`).
    "activation:elu": _ELU,
    "ELU": _ELU,
    **{
        f"activation:{name}": _FINE
        for name in (
            "linear",
            "relu",
            "relu6",
            "sigmoid",
            "hard_sigmoid",
            "tanh",
            "softmax",
            "swish",
            "silu",
            "gelu",
            "selu",
            "softplus",
            "softsign",
            "exponential",
        )
    },
    # TensorFlow functions on Keras tensors that lower to builtins every target has.
    **{
        f"tf_op:{symbol}": _FINE
        for symbol in (
            "__operators__.add",
            "__operators__.getitem",
            "math.add",
            "math.subtract",
            "math.multiply",
            "math.truediv",
            "math.maximum",
            "math.minimum",
            "math.reduce_mean",
            "math.reduce_sum",
            "math.reduce_max",
            "math.l2_normalize",
            "nn.relu",
            "nn.relu6",
            "nn.softmax",
            "concat",
            "reshape",
            "expand_dims",
            "squeeze",
            "transpose",
            "compat.v1.transpose",
            "pad",
            "stack",
        )
    },
    # Layers every target runs (int8 included), from tf-keras and from edge_ssl.
    **{
        name: _FINE
        for name in (
            "InputLayer",
            "Conv1D",
            "Conv2D",
            "Conv1DTranspose",
            "Conv2DTranspose",
            "DepthwiseConv1D",
            "DepthwiseConv2D",
            "SeparableConv1D",
            "SeparableConv2D",
            "Dense",
            "BatchNormalization",
            "LayerNormalization",
            "ReLU",
            "LeakyReLU",
            "PReLU",
            "Softmax",
            "Activation",
            "Add",
            "Subtract",
            "Multiply",
            "Average",
            "Maximum",
            "Minimum",
            "Concatenate",
            "Reshape",
            "Flatten",
            "Permute",
            "RepeatVector",
            "ZeroPadding1D",
            "ZeroPadding2D",
            "ZeroPadding3D",
            "Cropping1D",
            "Cropping2D",
            "Cropping3D",
            "UpSampling1D",
            "UpSampling2D",
            "UpSampling3D",
            "MaxPooling1D",
            "MaxPooling2D",
            "AveragePooling1D",
            "AveragePooling2D",
            "GlobalAveragePooling1D",
            "GlobalAveragePooling2D",
            "GlobalAveragePooling3D",
            "GlobalMaxPooling1D",
            "GlobalMaxPooling2D",
            "GlobalMaxPooling3D",
            "Dropout",
            "SpatialDropout1D",
            "SpatialDropout2D",
            "SpatialDropout3D",
            "GaussianNoise",
            "GaussianDropout",
            "AlphaDropout",
            "ActivityRegularization",
            "Rescaling",
            "Normalization",
            "Identity",
            # edge_ssl.models.layers
            "Standardize",
            "StandardizedConv2D",
            "SubtractSpatialMean",
            "L2Normalize",
            "ChannelMean",
            "MeanOverTime",
            "MomentumBatchNormalization",
            # edge_ssl.models.pose_encoder: slices, concatenation, sub, mul, sum, max and rsqrt (int8 in TFLite)
            "PoseNormalize",
            # edge_ssl.models.temporal: slices, pads, concatenations, reshapes, depthwise 2D convolution, mean
            "FrameDifference",
            "AddFrameDifference",
            "TemporalShift",
            "CausalTemporalConv",
            "TemporalWindowMean",
        )
    },
}
# Models whose own code is only their graph (the lint checks the layers they hold).
CONTAINERS = ("Functional", "Sequential", "StreamingStep")


def _sublayers(layer) -> list:
    """The layers a layer holds: a model's layers, a wrapper's layer(s), or a custom layer's tracked sublayers."""
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    if isinstance(layer, keras.layers.Bidirectional):
        return [layer.forward_layer, layer.backward_layer]
    if isinstance(layer, keras.layers.Wrapper):
        return [layer.layer]
    # pylint: disable-next=protected-access
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _walk(layer, path: str) -> Iterator[tuple[str, object]]:
    yield path, layer
    for sub in _sublayers(layer):
        yield from _walk(sub, f"{path}/{sub.name}")


def _rule_keys(layer) -> list[tuple[str, str]]:
    """(rule key, what to call it) for everything about this layer that RULES may have a rule for."""
    name = type(layer).__name__
    if name in ("TFOpLambda", "SlicingOpLambda"):
        return [(f"tf_op:{layer.symbol}", f"tf.{layer.symbol}")]
    keys = [(name, name)]
    activation = getattr(layer, "activation", None)
    if callable(activation):
        try:
            act = keras.activations.serialize(activation)
        except ValueError:  # a function Keras does not know by name
            act = None
        if not isinstance(act, str):
            act = getattr(activation, "__name__", type(activation).__name__)
        keys.append((f"activation:{act}", f"{name} activation {act}"))
    return keys


def _dynamic_shape_findings(layer, path: str, targets: Sequence[str]) -> list[Finding]:
    shape = tuple(layer.get_config().get("batch_input_shape") or ())[1:]
    unknown = [i + 1 for i, d in enumerate(shape) if d is None]
    if not unknown:
        return []
    reason = (
        f"input dimensions {unknown} are unknown; TFLite, XNNPACK and TensorRT engines want static shapes "
        "(fix them at export)"
    )
    return [Finding(t, WARNING, "dynamic_shape", path, "InputLayer", reason) for t in targets]


def _unchecked_reason(layer, key: str, what: str) -> str:
    if isinstance(layer, keras.Model):
        return f"a subclassed model ({type(layer).__name__}) runs {_UNCHECKED_OPS} in its call"
    if key.startswith(("activation:", "tf_op:")):
        return f"no rule for {what}; it is checked only once the model is converted"
    held = " (the layers it holds are checked here)" if _sublayers(layer) else ""
    return f"no rule for layer class {what}; its own ops are checked only once the model is converted{held}"


def lint_model(model: keras.layers.Layer, targets: Sequence[str] = TARGETS) -> LintResult:
    """Checks every layer of `model` against RULES for each target.

    Args:
      model: a Keras model (or layer); nested models, wrappers and unknown layers' sublayers are checked too.
      targets: which of TARGETS to check.

    Returns:
      A LintResult; `result.ok[target]` is False when the target has errors, `result.report()` says why.

    Raises:
      ValueError: for an unknown target, or a model that is not a Keras layer.
    """
    targets = tuple(targets)
    check_targets(targets)
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(f"lint_model takes a Keras model or layer, got {type(model).__name__}")
    findings, count = [], 0
    for path, layer in _walk(model, model.name):
        count += 1
        name = type(layer).__name__
        if isinstance(layer, keras.Model) and name in CONTAINERS:
            continue
        if isinstance(layer, keras.layers.Wrapper) and name in ("TimeDistributed", "Bidirectional"):
            continue
        if name == "InputLayer":
            findings += _dynamic_shape_findings(layer, path, targets)
            continue
        for key, what in _rule_keys(layer):
            rules = RULES.get(key)
            for target in targets:
                if rules is None:
                    reason = _unchecked_reason(layer, key, what)
                    findings.append(Finding(target, WARNING, "unchecked", path, what, reason))
                elif target in rules:
                    rule = rules[target]
                    findings.append(
                        Finding(target, rule.severity, rule.kind, path, what, rule.reason)
                    )
    return LintResult(model.name, targets, tuple(findings), count)
