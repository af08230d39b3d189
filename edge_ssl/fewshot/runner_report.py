"""The runner's human-readable outputs: per-class figures, the confusion-matrix PNG and `report.md`."""

from typing import Any

import numpy as np

from export.runtime import layout


def per_class(confusion: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """`per_class_accuracy` (class -> recall, None for a class with no evaluated clip) and `confusion_matrix`
    (rows: true class, columns: predicted, in `classes` order)."""
    confusion = np.asarray(confusion, np.int64)
    totals = confusion.sum(axis=1)
    return {
        "per_class_accuracy": {
            name: (float(confusion[i, i] / totals[i]) if totals[i] else None)
            for i, name in enumerate(classes)
        },
        "confusion_matrix": confusion.tolist(),
    }


def _confusion_png(path: str, confusion: np.ndarray, classes: list[str], title: str) -> None:
    import matplotlib  # pylint: disable=g-import-not-at-top  (optional on a device)

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

    size = max(4.0, 0.5 * len(classes) + 2.0)
    figure, axes = plt.subplots(figsize=(size + 1.0, size))
    image = axes.imshow(confusion, cmap="Blues")
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    limit = confusion.max() / 2 if confusion.size else 0
    for i in range(len(classes)):
        for j in range(len(classes)):
            axes.text(
                j,
                i,
                str(confusion[i, j]),
                ha="center",
                va="center",
                color="white" if confusion[i, j] > limit else "black",
                fontsize=8,
            )
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def markdown(results: dict[str, Any], png: str | None) -> str:
    """`report.md`: what ran, on what, the accuracy, per class figures and what was skipped."""
    settings = results["settings"]
    lines = ["# Few-shot fine-tuning report", ""]
    lines += [
        f"- model: `{results['model']}` ({results['modality']}), engine `{results['engine']}` running "
        f"`{results['engine_file']}` ({results['precision']})",
        f"- head: `{results['head']}`, training clips: {results['num_train']}"
        + (f" ({settings['shots']} per class)" if settings.get("shots") else ""),
        f"- classes ({len(results['classes'])}): {', '.join(results['classes'])}",
        f"- skipped inputs: {results['num_skipped']}; embeddings from cache: {results['cached_embeddings']}",
        "",
        "## Result",
        "",
    ]
    if results.get("mode") == "episodes":
        lines.append(
            f"{results['ways']}-way {results['shots']}-shot, {results['queries']} queries per class, "
            f"{results['episodes']} episodes (seed {settings['seed']}): mean accuracy "
            f"**{results['mean_accuracy']:.1%} ± {results['ci95']:.1%}** (95% CI)."
        )
    elif results.get("accuracy") is None:
        lines.append(f"Not evaluated: {results.get('evaluated_on', 'no evaluation clips')}.")
    else:
        where = {"eval_dir": "`--eval_dir`", "held_out": "the clips `--shots` left over"}[
            results["mode"]
        ]
        lines.append(
            f"Accuracy on {where}: **{results['accuracy']:.1%}** over {results['num_evaluated']} clips."
        )
    lines.append(f"Training accuracy: {results['train_accuracy']:.1%}.")
    if results.get("per_class_accuracy"):
        lines += ["", "| class | accuracy |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in results["per_class_accuracy"].items()]
    if png:
        lines += ["", f"![confusion matrix]({png})"]
    timings = results.get("timings", {})
    lines += [
        "",
        "## Cost",
        "",
        f"embedding {timings.get('embed_seconds', 0):.1f} s, head fitting {timings.get('fit_seconds', 0):.2f} s, "
        f"total {timings.get('total_seconds', 0):.1f} s; peak memory {results.get('peak_memory_mib', 0):.0f} MiB.",
        "",
        "## Outputs",
        "",
        f"`{layout.CLASSIFIER}` (outputs `embedding`, `logits`, `probabilities`"
        + (
            "; one frame per call: average the logits over a sequence's frames"
            if results["modality"] == "pose"
            else ""
        )
        + f"), `{layout.LABELS}` (class per output index), `{layout.METRICS}`.",
    ]
    if results["skipped"]:
        lines += ["", "## Skipped", ""]
        lines += [f"- `{item['path']}`: {item['reason']}" for item in results["skipped"]]
    return "\n".join(lines) + "\n"


def write(folder: str, results: dict[str, Any]) -> dict[str, str | None]:
    """Writes `confusion.png` and `report.md` into `folder`; returns what was written (a PNG that could not be drawn
    is None, with the reason in `png_skipped`)."""
    written = layout.ClassifierDir(folder)
    outputs: dict[str, str | None] = {"confusion_png": None}
    confusion = results.get("confusion_matrix")
    if confusion is not None:
        try:
            title = f"{results['head']} head, {results['engine']} ({results['precision']})"
            _confusion_png(
                written.confusion_png,
                np.array(confusion),
                results["classes"],
                title,
            )
            outputs["confusion_png"] = layout.CONFUSION_PNG
        except ImportError:
            outputs["png_skipped"] = "matplotlib is not installed"
    with open(written.report, "w", encoding="utf-8") as f:
        f.write(markdown(results, outputs["confusion_png"]))
    outputs["report"] = layout.REPORT
    return outputs
