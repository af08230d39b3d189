"""Resumable pipeline stages: each one runs only when its output is missing or its inputs changed.

A stage has a name, its inputs (settings and the keys of the stages it reads) and a function that writes its folder
`ROOT/<name>/`. When the function returns, `ROOT/<name>/stage.json` is written atomically with the inputs' key and the
result; a later run with the same key skips the stage and returns the stored result. An interrupted stage never wrote
its `stage.json`, so it runs again: from scratch, or, for a `resumable` stage (training, which checkpoints), from
where it stopped.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

from edge_ssl import files

MARKER = "stage.json"
STARTED = "stage.started.json"


@dataclasses.dataclass
class Outcome:
    """A stage's result as the pipeline sees it."""

    name: str
    key: str
    result: dict[str, Any]
    seconds: float
    skipped: bool
    folder: str


def key_of(inputs: dict[str, Any]) -> str:
    """A stable hash of a stage's inputs (JSON, keys sorted)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Pipeline:
    """Runs stages in order under `root`, printing `[k/n] title` with each stage's time or that it was skipped."""

    def __init__(self, root: str, total: int, printer: Callable[[str], None] = print):
        self.root, self.total, self.count, self.print = root, total, 0, printer
        self.outcomes: dict[str, Outcome] = {}

    def folder(self, name: str) -> str:
        return os.path.join(self.root, name)

    def run(
        self,
        name: str,
        title: str,
        inputs: dict[str, Any],
        function: Callable[[str], dict[str, Any]],
        resumable: bool = False,
    ) -> Outcome:
        """Runs `function(folder)` unless a finished run with the same inputs exists; returns its outcome."""
        self.count += 1
        folder = self.folder(name)
        key = key_of(inputs)
        marker = os.path.join(folder, MARKER)
        if os.path.exists(marker):
            with open(marker, encoding="utf-8") as f:
                done = json.load(f)
            if done.get("key") == key:
                outcome = Outcome(name, key, done["result"], done["seconds"], True, folder)
                self.print(
                    f"[{self.count}/{self.total}] {title}: done earlier ({done['seconds']:.0f} s), skipped"
                )
                self.outcomes[name] = outcome
                return outcome
        started = os.path.join(folder, STARTED)
        same_attempt = False
        if os.path.exists(started):
            with open(started, encoding="utf-8") as f:
                same_attempt = json.load(f).get("key") == key
        # Resume only an interrupted attempt at these very inputs; anything else starts from an empty folder.
        if not (resumable and same_attempt):
            shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)
        files.write_json_atomic(started, {"key": key})
        self.print(f"[{self.count}/{self.total}] {title}")
        start = time.monotonic()
        result = function(folder)
        seconds = time.monotonic() - start
        files.write_json_atomic(
            marker, {"key": key, "inputs": inputs, "result": result, "seconds": seconds}
        )
        self.print(f"      finished in {seconds:.0f} s")
        outcome = Outcome(name, key, result, seconds, False, folder)
        self.outcomes[name] = outcome
        return outcome
