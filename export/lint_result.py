"""The result types of the op lint, shared by the Keras-level lint (`export.keras_lint`) and the lint of converted
graphs (`export.graph_lint`).

Needs neither TensorFlow nor Keras, so a device with LiteRT or ONNX Runtime alone can lint and read lint results.
"""

import dataclasses
import json
from collections.abc import Iterable, Sequence

TARGETS = ("tflite_builtin", "tflite_int8", "xnnpack", "tensorrt")
TARGET_DESCRIPTIONS = {
    "tflite_builtin": "TFLite/LiteRT, builtin ops only, float",
    "tflite_int8": "TFLite/LiteRT, full integer (int8)",
    "xnnpack": "LiteRT's XNNPACK CPU delegate",
    "tensorrt": "TensorRT 10 via ONNX",
}
ERROR = "error"
WARNING = "warning"
KINDS = (
    "needs_flex",
    "float_fallback",
    "not_delegated",
    "unsupported",
    "dynamic_shape",
    "unchecked",
)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem of one layer (or op) on one target.

    Attributes:
      target: one of TARGETS.
      severity: "error" or "warning".
      kind: one of KINDS.
      layer: the layer's path from the model, names joined by "/"; for a converted graph, where the op is
        (`<subgraph or signature>/<op index>` and the name of its first output, which names the Keras layer).
      layer_class: the layer's class name, or the rule's key for activations and TensorFlow functions; for a
        converted graph, the op (`CONV_3D`, `FlexMaxPool3D`, ONNX `Conv`).
      reason: what happens on the target.
      source: "keras" for the Keras-level lint; for a converted graph, its file name (`model_int8.tflite`).
    """

    target: str
    severity: str
    kind: str
    layer: str
    layer_class: str
    reason: str
    source: str = "keras"

    def line(self) -> str:
        return (
            f"{self.severity:<7} {self.kind:<14} {self.layer} ({self.layer_class}): {self.reason}"
        )


class LintError(ValueError):
    """Raised by `LintResult.raise_for_errors`; the message is the report."""


@dataclasses.dataclass(frozen=True)
class LintResult:
    """Findings of one model on a set of targets.

    Attributes:
      model: the model's name (or the artifact's file name, for a converted graph).
      targets: the targets checked.
      findings: every finding, in layer (or op) order.
      layers_checked: how many layers (containers included) the walk visited, or how many ops a graph has.
      unit: what `layers_checked` counts: "layers" (a Keras model) or "ops" (a converted graph).
    """

    model: str
    targets: tuple[str, ...]
    findings: tuple[Finding, ...]
    layers_checked: int
    unit: str = "layers"

    @property
    def ok(self) -> dict[str, bool]:
        """Per target: True when it has no error (warnings allowed)."""
        return {t: not self.errors(t) for t in self.targets}

    @property
    def all_ok(self) -> bool:
        return all(self.ok.values())

    def errors(self, target: str | None = None) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR and target in (None, f.target)]

    def warnings(self, target: str | None = None) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING and target in (None, f.target)]

    def merge(self, other: "LintResult") -> "LintResult":
        """This result and `other`'s findings (e.g. of a converted graph) as one; targets are united."""
        targets = self.targets + tuple(t for t in other.targets if t not in self.targets)
        return LintResult(
            self.model,
            targets,
            self.findings + other.findings,
            self.layers_checked + other.layers_checked,
            self.unit if self.unit == other.unit else "layers and ops",
        )

    def report(self) -> str:
        """A readable report: one status line per target, then the findings grouped by target."""
        lines = [f"Op lint of {self.model!r}: {self.layers_checked} {self.unit} checked"]
        for target in self.targets:
            errors, warnings = len(self.errors(target)), len(self.warnings(target))
            status = "ok" if not errors else "FAILED"
            counts = (
                f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
            )
            lines.append(
                f"  {target:<15} {status:<7} {counts:<22} {TARGET_DESCRIPTIONS.get(target, '')}"
            )
        for target in self.targets:
            findings = [f for f in self.findings if f.target == target]
            if findings:
                lines.append(f"{target}:")
                lines.extend(f"  {f.line()}" for f in findings)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """A JSON-ready summary (for model_card.json)."""
        return {
            "model": self.model,
            "layers_checked": self.layers_checked,
            "unit": self.unit,
            "ok": self.ok,
            "findings": [dataclasses.asdict(f) for f in self.findings],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def raise_for_errors(self, targets: Iterable[str] | None = None) -> None:
        """Raises LintError (message: the report) when any of `targets` (default: all checked) has an error."""
        targets = self.targets if targets is None else tuple(targets)
        check_targets(targets)
        if any(self.errors(t) for t in targets):
            raise LintError(self.report())


def check_targets(targets: Sequence[str]) -> None:
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise ValueError(f"unknown lint targets {unknown}; choose from {TARGETS}")
