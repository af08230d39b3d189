"""A classifier in one `.tflite`: an exported embedding model with a linear head appended to its graph.

The few-shot runner trains a linear head (prototypes or softmax regression) on embeddings, and the user wants one
file that maps a clip to class scores. Converting a new Keras model would need TensorFlow on the device, so instead
the head is written into the flatbuffer of the model that already runs there: in every signature that outputs
`embedding`, a FULLY_CONNECTED op (weights [C, D], bias [C]) and a SOFTMAX are appended and the signature gains the
outputs `logits` and `probabilities`. The embedding model itself is not touched, so an int8 model stays int8 (the head
reads its float or dequantized embedding and computes in float32, a few thousand multiply-adds). The class names
are stored in the model's metadata under `labels`, one per line, and what a reader of the file needs to feed it
(input size, preprocessing, the frame rate its clips had, the precision and artifact directory it came from) as JSON
under `classifier_info`. Streaming signatures (`step`) get the head too, so a stream yields class scores at every
frame. `read_head` gives the head's weights back, so the recognizer can put the same head on another exported form
of the same embedding model (another precision, or the ONNX step graph).

Needs the LiteRT schema (`ai_edge_litert`), not TensorFlow.
"""

import json
from collections.abc import Sequence

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

LABELS_METADATA = "labels"
INFO_METADATA = "classifier_info"
HEAD_WEIGHTS, HEAD_BIAS = "head/weights", "head/bias"


class ClassifierError(ValueError):
    """The head does not fit the model (no `embedding` output, wrong sizes)."""


def _opcode_index(model, builtin: int) -> int:
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(
        builtin, 127
    )  # the old int8 field saturates at PLACEHOLDER_FOR_GREATER_OP_CODES
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _buffer(model, array: np.ndarray) -> int:
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
    model.buffers.append(buffer)
    return len(model.buffers) - 1


def _tensor(subgraph, name: str, shape: Sequence[int], signature: Sequence[int], buffer: int = 0):
    tensor = schema.TensorT()
    tensor.name = name
    tensor.type = schema.TensorType.FLOAT32
    tensor.shape = list(shape)
    tensor.shapeSignature = list(signature)
    tensor.buffer = buffer
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def _operator(subgraph, opcode: int, inputs, outputs, options_type: int, options) -> None:
    op = schema.OperatorT()
    op.opcodeIndex = opcode
    op.inputs, op.outputs = list(inputs), list(outputs)
    op.builtinOptionsType, op.builtinOptions = options_type, options
    subgraph.operators.append(op)


def attach_head(
    model_content: bytes,
    weights: np.ndarray,
    bias: np.ndarray,
    labels: Sequence[str] | None = None,
    info: dict | None = None,
) -> bytes:
    """Appends logits = embedding @ weights + bias and their softmax to every signature with an `embedding` output.

    Args:
      model_content: an exported `.tflite` (a student's `model_*.tflite` or the pose encoder's).
      weights: float [D, C].
      bias: float [C].
      labels: C class names stored in the metadata (optional).
      info: JSON-serialisable facts about the classifier stored in the metadata (optional; see `read_info`).

    Returns:
      The classifier's `.tflite` bytes.

    Raises:
      ClassifierError: no signature outputs `embedding`, or the head's sizes do not match it.
    """
    weights, bias = np.asarray(weights, np.float32), np.asarray(bias, np.float32)
    if weights.ndim != 2 or bias.shape != (weights.shape[1],):
        raise ClassifierError(
            f"weights [D, C] and bias [C] needed, got {weights.shape} and {bias.shape}"
        )
    if labels is not None and len(labels) != weights.shape[1]:
        raise ClassifierError(f"{len(labels)} labels for {weights.shape[1]} classes")
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_content))
    kernel = _buffer(model, weights.T)  # FULLY_CONNECTED keeps its weights as [outputs, inputs]
    offset = _buffer(model, bias)
    fully_connected = _opcode_index(model, schema.BuiltinOperator.FULLY_CONNECTED)
    softmax = _opcode_index(model, schema.BuiltinOperator.SOFTMAX)
    dequantize = None
    done = 0
    for signature in model.signatureDefs or []:
        outputs = {tensor_map.name.decode(): tensor_map for tensor_map in signature.outputs}
        if "embedding" not in outputs:
            continue
        subgraph = model.subgraphs[signature.subgraphIndex]
        source = outputs["embedding"].tensorIndex
        embedding = subgraph.tensors[source]
        shape = list(embedding.shape)
        shape_signature = list(
            embedding.shapeSignature if embedding.shapeSignature is not None else shape
        )
        if shape[-1] != weights.shape[0]:
            raise ClassifierError(
                f"the head takes {weights.shape[0]}-d embeddings; the model's are {shape[-1]}-d"
            )
        if (
            embedding.type != schema.TensorType.FLOAT32
        ):  # int8 outputs: the head reads their float value
            if dequantize is None:
                dequantize = _opcode_index(model, schema.BuiltinOperator.DEQUANTIZE)
            float_embedding = _tensor(subgraph, "head/embedding_float", shape, shape_signature)
            _operator(subgraph, dequantize, [source], [float_embedding], 0, None)
            source = float_embedding
        classes = weights.shape[1]
        out_shape, out_signature = shape[:-1] + [classes], shape_signature[:-1] + [classes]
        w = _tensor(
            subgraph,
            HEAD_WEIGHTS,
            [classes, weights.shape[0]],
            [classes, weights.shape[0]],
            kernel,
        )
        b = _tensor(subgraph, HEAD_BIAS, [classes], [classes], offset)
        logits = _tensor(subgraph, "head/logits", out_shape, out_signature)
        probabilities = _tensor(subgraph, "head/probabilities", out_shape, out_signature)
        _operator(
            subgraph,
            fully_connected,
            [source, w, b],
            [logits],
            schema.BuiltinOptions.FullyConnectedOptions,
            schema.FullyConnectedOptionsT(),
        )
        options = schema.SoftmaxOptionsT()
        options.beta = 1.0
        _operator(
            subgraph,
            softmax,
            [logits],
            [probabilities],
            schema.BuiltinOptions.SoftmaxOptions,
            options,
        )
        subgraph.outputs = list(subgraph.outputs) + [logits, probabilities]
        for name, index in (("logits", logits), ("probabilities", probabilities)):
            tensor_map = schema.TensorMapT()
            tensor_map.name, tensor_map.tensorIndex = name, index
            signature.outputs.append(tensor_map)
        done += 1
    if not done:
        raise ClassifierError("the model has no signature with an 'embedding' output")
    if labels is not None:
        metadata = schema.MetadataT()
        metadata.name = LABELS_METADATA
        metadata.buffer = _buffer(model, np.frombuffer("\n".join(labels).encode("utf-8"), np.uint8))
        model.metadata = list(model.metadata or []) + [metadata]
    if info is not None:
        metadata = schema.MetadataT()
        metadata.name = INFO_METADATA
        text = json.dumps(info, sort_keys=True).encode("utf-8")
        metadata.buffer = _buffer(model, np.frombuffer(text, np.uint8))
        model.metadata = list(model.metadata or []) + [metadata]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _metadata(model, name: str) -> bytes | None:
    for metadata in model.metadata or []:
        if metadata.name.decode() == name:
            return bytes(np.asarray(model.buffers[metadata.buffer].data, np.uint8))
    return None


def read_labels(model_content: bytes) -> list[str] | None:
    """The class names `attach_head` stored in a classifier's metadata, or None."""
    data = _metadata(
        flatbuffer_utils.read_model_from_bytearray(bytearray(model_content)), LABELS_METADATA
    )
    return None if data is None else data.decode("utf-8").split("\n")


def read_info(model_content: bytes) -> dict | None:
    """The `info` dict `attach_head` stored in a classifier's metadata, or None (an older classifier, or none)."""
    data = _metadata(
        flatbuffer_utils.read_model_from_bytearray(bytearray(model_content)), INFO_METADATA
    )
    try:
        return None if data is None else json.loads(data.decode("utf-8"))
    except ValueError:
        return None


def read_head(model_content: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The head `attach_head` appended: (weights float32 [D, C], bias float32 [C]).

    Raises:
      ClassifierError: the model has no such head (an embedding model, not a classifier).
    """
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_content))
    for subgraph in model.subgraphs:
        found = {}
        for tensor in subgraph.tensors:
            name = tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name
            if name in (HEAD_WEIGHTS, HEAD_BIAS) and tensor.buffer:
                data = np.asarray(model.buffers[tensor.buffer].data, np.uint8)
                found[name] = np.frombuffer(data.tobytes(), np.float32).reshape(tensor.shape)
        if len(found) == 2:
            return np.ascontiguousarray(found[HEAD_WEIGHTS].T), found[HEAD_BIAS].copy()
    raise ClassifierError(
        "the model has no classifier head (no head/weights and head/bias tensors)"
    )
