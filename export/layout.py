"""The model card of an artifact directory (`model_card.json`): its name, its version and how to read it.

Needs neither TensorFlow nor the model code, so the runner on a device reads cards with LiteRT alone installed.
"""

import json
import os

CARD = "model_card.json"
CARD_VERSION = 1


class ArtifactError(RuntimeError):
    """The export stopped, or an artifact directory is not usable: the message says why."""


def read_card(artifact_dir: str) -> dict:
    """The model card of an artifact directory, with a clear error when there is none or it does not parse."""
    path = os.path.join(artifact_dir, CARD)
    if not os.path.isdir(artifact_dir):
        raise ArtifactError(
            f"{artifact_dir} is not a directory (expected an artifact directory from export)"
        )
    if not os.path.exists(path):
        raise ArtifactError(
            f"{artifact_dir} has no {CARD}: not an artifact directory written by export (a training workdir or "
            f"SavedModel becomes one with: python -m export --model={artifact_dir} --output_dir=DIR)"
        )
    try:
        with open(path, encoding="utf-8") as f:
            card = json.load(f)
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{path} is not a readable model card: {e}") from e
    if not isinstance(card, dict) or "embedding_dim" not in card:
        raise ArtifactError(f"{path} is not a model card written by export (no embedding_dim)")
    return card
