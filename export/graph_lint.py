"""Op lint of converted graphs: what each target makes of the ops a TFLite flatbuffer or an ONNX file really holds.

`export.keras_lint` checks a Keras model before conversion, by layer; it cannot see inside custom layers, Lambdas or
TensorFlow functions, nor what the converter did. This module reads the converted artifact itself and reports, per
target, every op that is unsupported, falls back to float, needs Flex or is not delegated, as the same `LintResult`
and `Finding`s (`export.lint_result`), with `source` set to the file and the op in `layer`:

- `tflite_builtin` (any `.tflite`): a Flex op (a CUSTOM op named `Flex...`, from SELECT_TF_OPS) or any other custom
  op is an error: LiteRT's Python interpreter has no Flex delegate since TF 2.20, and a custom op needs a kernel the
  runtime does not have. A builtin code this schema does not know (a newer converter) is an error too.
- `tflite_int8` (a model meant to be full-integer): an op that computes on float tensors is an error ("falls back to
  float"), except QUANTIZE of a graph input and DEQUANTIZE into a graph output, the float boundary of an int8 model
  with float inputs and outputs. That is how CONV_3D appears in an int8 model: DEQUANTIZE -> CONV_3D (float32) ->
  QUANTIZE, which the converter produces without a word.
- `xnnpack`: ops LiteRT's default CPU delegate leaves to TFLite's own kernels are warnings (the model runs, the
  delegated graph is cut there). The tables below say which ops were seen delegated or not; an op in neither is an
  `unchecked` warning, never silently passed.
- `tensorrt` (`.onnx`): an op outside TensorRT 10's ONNX parser's supported list, an op from another domain (a
  plugin would be needed), an opset outside the parser's range, or an input the parser needs as an initializer that
  is computed at run time, is an error.

Needs neither TensorFlow nor Keras: flatbuffers are read with `ai_edge_litert`'s schema and ONNX files with `onnx`, so
an artifact can be linted on the device that runs it.

    result = graph_lint.lint_file("artifacts/model_int8.tflite", ["tflite_builtin", "tflite_int8", "xnnpack"])
    print(result.report())
"""

import os
from collections.abc import Sequence

from export.lint_result import ERROR, WARNING, Finding, LintResult, check_targets

TFLITE_TARGETS = ("tflite_builtin", "tflite_int8", "xnnpack")
ONNX_TARGETS = ("tensorrt",)

# The float boundary of an int8 model with float inputs and outputs.
_BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")

# Which TFLite ops XNNPACK delegates, by the type the op computes in. NOT a copy of XNNPACK's documentation (its
# README lags the code): each entry was observed with the XNNPACK delegate built into ai-edge-litert 2.3.0 (x86-64,
# OpResolverType.AUTO), converting single-op models and this project's students and pose encoder with TF 2.21 and
# checking which ops the interpreter replaced by DELEGATE nodes (tests/export/graph_lint_test.py repeats the check
# on the tiny student and the pose encoder). Delegation also depends on an op's parameters; the only one checked here
# is RESHAPE's, whose new shape must be a constant (a shape computed at run time, as a dynamic batch makes, was seen
# undelegated).
XNNPACK_DELEGATED = {
    "float32": frozenset(
        {
            "ABS",
            "ADD",
            "AVERAGE_POOL_2D",
            "BATCH_MATMUL",
            "CONCATENATION",
            "CONV_2D",
            "DEPTHWISE_CONV_2D",
            "DEQUANTIZE",  # of fp16 weights, in fp16 models
            "DIV",
            "ELU",
            "EXP",
            "FULLY_CONNECTED",  # float, and with int8 weights (dynamic range)
            "GELU",
            "HARD_SWISH",
            "LEAKY_RELU",
            "LOGISTIC",
            "MAXIMUM",
            "MAX_POOL_2D",
            "MEAN",
            "MINIMUM",
            "MUL",
            "NEG",
            "PAD",
            "REDUCE_MAX",
            "RELU6",
            "RESHAPE",
            "RESIZE_BILINEAR",
            "RSQRT",
            "SOFTMAX",
            "SPLIT",
            "SQRT",
            "SQUARE",
            "SQUARED_DIFFERENCE",
            "STRIDED_SLICE",
            "SUB",
            "SUM",
            "TANH",
            "TRANSPOSE",
        }
    ),
    "int8": frozenset(
        {
            "ADD",
            "CONCATENATION",
            "CONV_2D",
            "DEPTHWISE_CONV_2D",
            "DEQUANTIZE",
            "FULLY_CONNECTED",
            "LEAKY_RELU",
            "LOGISTIC",
            "MAX_POOL_2D",
            "MEAN",
            "MUL",
            "PAD",
            "QUANTIZE",
            "REDUCE_MAX",
            "RESHAPE",
            "RESIZE_BILINEAR",
            "STRIDED_SLICE",
            "SUB",
            "SUM",
            "TANH",
            "TRANSPOSE",
        }
    ),
}
# Observed the same way, NOT delegated. Ops on other types (int32 shape arithmetic, bool) were never delegated.
XNNPACK_NOT_DELEGATED = {
    "float32": frozenset(
        {
            "BROADCAST_TO",
            "CONV_3D",
            "CONV_3D_TRANSPOSE",
            "CUMSUM",
            "EXPAND_DIMS",
            "GATHER",
            "L2_NORMALIZATION",
            "PACK",
            "REVERSE_V2",
            "TILE",
            "UNPACK",
        }
    ),
    "int8": frozenset(
        {
            "ABS",
            "AVERAGE_POOL_2D",
            "BATCH_MATMUL",
            "BROADCAST_TO",
            "DIV",
            "EXP",
            "EXPAND_DIMS",
            "GATHER",
            "GELU",
            "HARD_SWISH",
            "L2_NORMALIZATION",
            "MAXIMUM",
            "MINIMUM",
            "PACK",
            "RELU6",  # alone; fused into a convolution it is part of the delegated convolution
            "REVERSE_V2",
            "RSQRT",
            "SOFTMAX",
            "SQRT",
            "SQUARED_DIFFERENCE",
            "TILE",
        }
    ),
}

# TensorRT 10's ONNX parser: the operators its support matrix marks "Y". Source: onnx/onnx-tensorrt
# `docs/operators.md` on branch 10.1-GA (commit 96e7811, June 2024), which reads "TensorRT 10.0 supports operators in
# the inclusive range of opset 9 to opset 20". JetPack 6.1/6.2 ships TensorRT 10.3, whose parser is not older; ops
# added after 10.1 are reported here although a newer parser may take them.
TENSORRT_SOURCE = "onnx/onnx-tensorrt docs/operators.md, branch 10.1-GA (TensorRT 10.0/10.1)"
TENSORRT_OPSETS = (9, 20)
TENSORRT_OPS = frozenset("""
    Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast CastLike Ceil Celu
    Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DeformConv DepthToSpace DequantizeLinear Div
    Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gelu Gemm
    GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GroupNormalization GRU HardSigmoid
    HardSwish Hardmax Identity If ImageScaler InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less
    LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization
    Min Mish Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear
    RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum
    ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
    ReverseSequence RNN RoiAlign Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign
    Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile
    TopK Transpose Trilu Unsqueeze Upsample Where Xor
    """.split())
# The same matrix's "must be an initializer" restrictions: (input position, what it is). A run-time value there makes
# the parser fail. (Attributes, for the opsets where these were attributes, are always constant.)
TENSORRT_CONSTANT_INPUTS = {
    "CumSum": (1, "axis"),
    "Pad": (3, "axes"),
    "Slice": (3, "axes"),
    "Squeeze": (1, "axes"),
    "Unsqueeze": (1, "axes"),
    **{
        f"Reduce{op}": (1, "axes")
        for op in (
            "L1",
            "L2",
            "LogSum",
            "LogSumExp",
            "Max",
            "Mean",
            "Min",
            "Prod",
            "Sum",
            "SumSquare",
        )
    },
}
_ONNX_DOMAINS = ("", "ai.onnx")


class GraphLintError(ValueError):
    """The file cannot be linted: not a TFLite flatbuffer or ONNX model, or a target that does not apply to it."""


def _check(targets: Sequence[str], allowed: Sequence[str], kind: str) -> tuple[str, ...]:
    targets = tuple(targets)
    check_targets(targets)
    wrong = [t for t in targets if t not in allowed]
    if wrong:
        raise GraphLintError(
            f"targets {wrong} do not apply to a {kind} model; choose from {', '.join(allowed)}"
        )
    return targets


# --- TFLite -------------------------------------------------------------------------------------------------------


def _schema():
    """LiteRT's flatbuffer schema and helpers (no TensorFlow), imported when a TFLite model is linted."""
    from ai_edge_litert import schema_py_generated as schema  # pylint: disable=g-import-not-at-top
    from ai_edge_litert.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top

    return schema, flatbuffer_utils


def _read_tflite(model: bytes | str, name: str):
    schema, flatbuffer_utils = _schema()
    if isinstance(model, str):
        if not os.path.isfile(model):
            raise GraphLintError(f"no TFLite model at {model}")
        with open(model, "rb") as f:
            model = f.read()
    content = bytearray(model)
    if len(content) < 8 or not schema.Model.ModelBufferHasIdentifier(content, 0):
        raise GraphLintError(f"{name} is not a TFLite flatbuffer (no 'TFL3' identifier)")
    try:
        return flatbuffer_utils.read_model_from_bytearray(content)
    # A truncated or corrupt flatbuffer fails anywhere inside the generated reader, with any exception.
    except Exception as e:  # pylint: disable=broad-except
        raise GraphLintError(f"{name} is not a readable TFLite flatbuffer: {e}") from e


def _type_names(schema) -> dict[int, str]:
    return {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


def _op_names(schema) -> dict[int, str]:
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def _subgraph_names(model) -> list[str]:
    """A readable name per subgraph: its signature key, its own name, or its index."""
    names = [
        (sg.name.decode() if isinstance(sg.name, bytes) else sg.name) or f"subgraph{i}"
        for i, sg in enumerate(model.subgraphs)
    ]
    for signature in model.signatureDefs or []:
        key = signature.signatureKey
        names[signature.subgraphIndex] = key.decode() if isinstance(key, bytes) else key
    return names


def _tensor_name(tensor) -> str:
    name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
    # A fused op's tensor is named after every op fused into it; the first name is enough to find the layer.
    return name.split(";")[0]


class _Op:
    """One operator of a subgraph, with what the rules need to know about its tensors."""

    def __init__(self, model, subgraph, index: int, names: dict, types: dict):
        op = subgraph.operators[index]
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        custom = code.customCode
        self.custom = custom.decode() if isinstance(custom, bytes) else custom
        self.name = names.get(builtin)  # None: a builtin code this schema does not know
        if self.name == "CUSTOM":
            self.name = self.custom or "CUSTOM"
        elif self.name is None:
            self.name = f"BUILTIN_{builtin}"
        self.known = builtin in names
        self.is_custom = names.get(builtin) == "CUSTOM"
        inputs = [i for i in op.inputs if i >= 0]
        self.inputs = [(i, types.get(subgraph.tensors[i].type, "?")) for i in inputs]
        self.outputs = [(i, types.get(subgraph.tensors[i].type, "?")) for i in op.outputs]
        self.constant = {i for i in inputs if _is_constant(model, subgraph.tensors[i])}
        first = op.outputs[0] if len(op.outputs) else None
        self.output_name = _tensor_name(subgraph.tensors[first]) if first is not None else ""

    def computes_on_float(self) -> bool:
        """Whether a float tensor flows through this op (a float output, or a float input that is no constant).

        SHAPE and RANK read only a tensor's dimensions, so their float inputs do not count.
        """
        floats = ("FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16")
        if any(t in floats for _, t in self.outputs):
            return True
        return self.name not in ("SHAPE", "RANK") and any(
            t in floats for i, t in self.inputs if i not in self.constant
        )

    def compute_type(self) -> str:
        """The type the op computes in, for XNNPACK: float32, int8 (quantized), or another (int32 shape arithmetic).

        Read from the outputs: SHAPE of a float tensor computes nothing in float, QUANTIZE produces int8.
        """
        types = [t for _, t in self.outputs] or [t for _, t in self.inputs]
        if any(t in ("FLOAT32", "FLOAT16") for t in types):
            return "float32"
        if any(t in ("INT8", "UINT8") for t in types):
            return "int8"
        return types[0].lower() if types else "none"


def _is_constant(model, tensor) -> bool:
    buffer = model.buffers[tensor.buffer] if 0 < tensor.buffer < len(model.buffers) else None
    return buffer is not None and buffer.data is not None and len(buffer.data) > 0


def _tflite_findings(op: _Op, where: str, graph_inputs, graph_outputs, targets, source):
    found = []

    def add(target, severity, kind, reason):
        found.append(Finding(target, severity, kind, where, op.name, reason, source))

    runnable = True
    if op.is_custom and op.name.startswith("Flex"):
        runnable = False
        reason = (
            f"{op.name} is TensorFlow's {op.name[4:]} through Flex (SELECT_TF_OPS): LiteRT's Python interpreter has "
            "no Flex delegate (TF >= 2.20) and device runtimes need a custom Flex build"
        )
        for target in targets:
            add(target, ERROR, "needs_flex", reason)
    elif op.is_custom or not op.known:
        runnable = False
        reason = (
            f"custom op {op.name!r}: no builtin kernel; a runtime must register it"
            if op.known
            else f"builtin code {op.name[len('BUILTIN_'):]} is unknown to this LiteRT schema (a newer converter)"
        )
        for target in targets:
            add(target, ERROR, "unsupported", reason)
    if not runnable:
        return found
    if "tflite_int8" in targets and op.computes_on_float():
        boundary = (op.name == "QUANTIZE" and all(i in graph_inputs for i, _ in op.inputs)) or (
            op.name == "DEQUANTIZE" and all(i in graph_outputs for i, _ in op.outputs)
        )
        # A QUANTIZE or DEQUANTIZE inside the graph only brackets a float op, which is the one reported.
        if not boundary and op.name not in _BOUNDARY_OPS:
            add(
                "tflite_int8",
                ERROR,
                "float_fallback",
                f"{op.name} falls back to float: it computes on float tensors inside an int8 model (no int8 kernel, "
                "or the converter could not quantize it)",
            )
    if "xnnpack" in targets:
        kind = op.compute_type()
        dynamic_reshape = (
            op.name == "RESHAPE" and len(op.inputs) > 1 and op.inputs[1][0] not in op.constant
        )
        if kind not in XNNPACK_DELEGATED:
            add(
                "xnnpack",
                WARNING,
                "not_delegated",
                f"XNNPACK delegates float32 and int8 ops only; {op.name} on {kind} tensors runs on TFLite's kernel",
            )
        elif dynamic_reshape:
            add(
                "xnnpack",
                WARNING,
                "not_delegated",
                "XNNPACK delegates RESHAPE only with a constant new shape; this one is computed at run time "
                "(a dynamic dimension), so it runs on TFLite's kernel and cuts the delegated graph",
            )
        elif op.name in XNNPACK_NOT_DELEGATED[kind]:
            add(
                "xnnpack",
                WARNING,
                "not_delegated",
                f"XNNPACK does not delegate {kind} {op.name}; it runs on TFLite's kernel and cuts the delegated graph",
            )
        elif op.name not in XNNPACK_DELEGATED[kind]:
            add(
                "xnnpack",
                WARNING,
                "unchecked",
                f"not verified whether XNNPACK delegates {kind} {op.name} (not in graph_lint's observed tables)",
            )
    return found


def lint_tflite(
    model: bytes | str,
    targets: Sequence[str] = ("tflite_builtin", "xnnpack"),
    name: str | None = None,
) -> LintResult:
    """Lints every op of every subgraph of a TFLite model.

    Args:
      model: the `.tflite` bytes or a path to the file.
      targets: any of TFLITE_TARGETS; add `tflite_int8` only for a model meant to be full-integer.
      name: how the result and its findings name the model (default: the file's name, or "model.tflite").

    Returns:
      A LintResult counting ops; each finding's `layer` is `<signature or subgraph>/<op index> <output tensor>`.

    Raises:
      GraphLintError: not a TFLite flatbuffer, or a target that is not a TFLite one.
    """
    targets = _check(targets, TFLITE_TARGETS, "TFLite")
    name = name or (os.path.basename(model) if isinstance(model, str) else "model.tflite")
    schema, _ = _schema()
    flat = _read_tflite(model, name)
    names, types = _op_names(schema), _type_names(schema)
    findings, count = [], 0
    for subgraph, graph_name in zip(flat.subgraphs, _subgraph_names(flat)):
        graph_inputs, graph_outputs = set(subgraph.inputs), set(subgraph.outputs)
        for index in range(len(subgraph.operators or [])):
            op = _Op(flat, subgraph, index, names, types)
            count += 1
            where = f"{graph_name}/{index} {op.output_name}".rstrip()
            findings += _tflite_findings(op, where, graph_inputs, graph_outputs, targets, name)
    return LintResult(name, targets, tuple(findings), count, unit="ops")


# --- ONNX ---------------------------------------------------------------------------------------------------------


def _read_onnx(model, name: str):
    import onnx  # pylint: disable=g-import-not-at-top

    if isinstance(model, onnx.ModelProto):
        return model
    try:
        if isinstance(model, str):
            if not os.path.isfile(model):
                raise GraphLintError(f"no ONNX model at {model}")
            return onnx.load(model, load_external_data=False)
        return onnx.load_from_string(bytes(model))
    except GraphLintError:
        raise
    except Exception as e:  # protobuf's DecodeError and onnx's own errors
        raise GraphLintError(f"{name} is not a readable ONNX model: {e}") from e


def _onnx_graphs(graph, path: str):
    """The graph and every subgraph of If/Loop/Scan bodies, with a readable path."""
    yield path, graph
    import onnx  # pylint: disable=g-import-not-at-top

    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _onnx_graphs(attribute.g, f"{path}/{node.name or node.op_type}")
            for sub in attribute.graphs:
                yield from _onnx_graphs(sub, f"{path}/{node.name or node.op_type}")


def lint_onnx(model, targets: Sequence[str] = ONNX_TARGETS, name: str | None = None) -> LintResult:
    """Lints every node of an ONNX model (subgraphs of control flow included) for TensorRT 10's ONNX parser.

    Args:
      model: an `onnx.ModelProto`, its serialized bytes, or a path to the file.
      targets: ONNX_TARGETS.
      name: how the result and its findings name the model (default: the file's name, or "model.onnx").

    Raises:
      GraphLintError: not an ONNX model, or a target that is not an ONNX one.
    """
    targets = _check(targets, ONNX_TARGETS, "ONNX")
    name = name or (os.path.basename(model) if isinstance(model, str) else "model.onnx")
    proto = _read_onnx(model, name)
    findings, count = [], 0
    low, high = TENSORRT_OPSETS
    for entry in proto.opset_import:
        if entry.domain in _ONNX_DOMAINS and not low <= entry.version <= high:
            findings.append(
                Finding(
                    "tensorrt",
                    ERROR,
                    "unsupported",
                    "opset_import",
                    f"opset {entry.version}",
                    f"TensorRT 10's ONNX parser reads opsets {low} to {high} ({TENSORRT_SOURCE}); "
                    "convert with another opset",
                    name,
                )
            )
    for path, graph in _onnx_graphs(proto.graph, proto.graph.name or "graph"):
        constants = {t.name for t in graph.initializer} | {
            out for node in graph.node if node.op_type == "Constant" for out in node.output
        }
        for index, node in enumerate(graph.node):
            count += 1
            where = (
                f"{path}/{index} {node.name or (node.output[0] if node.output else '')}".rstrip()
            )

            def add(reason, node=node, where=where):
                findings.append(
                    Finding("tensorrt", ERROR, "unsupported", where, node.op_type, reason, name)
                )

            if node.domain not in _ONNX_DOMAINS:
                add(
                    f"{node.domain}.{node.op_type} is outside the ONNX domain; TensorRT needs a plugin for it"
                )
            elif node.op_type not in TENSORRT_OPS:
                add(
                    f"{node.op_type} is not in TensorRT 10's supported ONNX operators ({TENSORRT_SOURCE})"
                )
            elif node.op_type in TENSORRT_CONSTANT_INPUTS:
                position, what = TENSORRT_CONSTANT_INPUTS[node.op_type]
                if len(node.input) > position and node.input[position]:
                    if node.input[position] not in constants:
                        add(
                            f"TensorRT's parser needs {node.op_type}'s `{what}` as an initializer; here it is "
                            "computed at run time"
                        )
    return LintResult(name, targets, tuple(findings), count, unit="ops")


def lint_file(path: str, targets: Sequence[str] | None = None) -> LintResult:
    """Lints a `.tflite` or `.onnx` file; default targets: TFLite builtins and XNNPACK, or TensorRT.

    Raises:
      GraphLintError: a missing file, another extension, or a file that does not parse.
    """
    extension = os.path.splitext(path)[1].lower()
    if extension == ".tflite":
        return lint_tflite(path, targets or ("tflite_builtin", "xnnpack"))
    if extension == ".onnx":
        return lint_onnx(path, targets or ONNX_TARGETS)
    raise GraphLintError(f"{path}: the graph lint reads .tflite and .onnx files, not {extension!r}")
