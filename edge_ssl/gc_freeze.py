"""Python's garbage collector skips what the imports built, in every absl program that imports edge_ssl.

Importing TensorFlow and tf-keras creates about 275,000 objects that Python's cyclic garbage collector tracks
(modules, functions, classes and their dicts), and they live as long as the process. The collector walks all of them
at every full collection (7 in a 30-step tiny CV-MIM pretraining, 0.7 s in all) and again when the interpreter exits
(0.7 s after `import tensorflow, tf_keras` alone). `gc.freeze()` moves every tracked object to a permanent
generation that collections skip. It is done once, after the imports and before `main`, through absl's
`app.call_after_init`: in the binaries (`python -m edge_ssl.cli.*`, `python -m export`, the benchmarks) and in the
test programs (`absltest.main`, `tf.test.main`), all of which import edge_ssl (whose `__init__` calls
`freeze_before_main`) before absl starts. Figures: benchmarks/README.md, "Start-up and exit of a process".

What it changes: the garbage present at that moment is collected first, so nothing that was already unreachable is
kept; an object that is alive then and later dropped inside a reference cycle is never freed, which is why it happens
before `main`, when what is alive is the program's imports and flags. A process that is not an absl program (a
notebook, a script), or that imports edge_ssl after absl started its `main`, is left alone: what it holds then is its
own data. `EDGE_SSL_GC_FREEZE=0` turns it off.

No TensorFlow here: edge_ssl's `__init__` imports this, and the device runtime imports edge_ssl.
"""

import gc
import os
from collections.abc import Mapping

from absl import app

# "0" leaves the collector as Python sets it; anything else (or unset) freezes the imports before `main`.
ENV = "EDGE_SSL_GC_FREEZE"


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `environ` lets the imports be frozen (`EDGE_SSL_GC_FREEZE` is not "0")."""
    return environ.get(ENV, "").strip() != "0"


def freeze_imports() -> int:
    """Collects the garbage there is, then freezes every object the collector tracks; returns how many it froze."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def freeze_before_main(environ: Mapping[str, str] = os.environ) -> bool:
    """Arranges `freeze_imports()` for when absl has parsed the flags, just before it calls `main`.

    Returns:
      Whether it was arranged: False when `EDGE_SSL_GC_FREEZE=0`, or when absl had already started `main` (the
      caller imported edge_ssl from inside a running program; nothing is frozen then).
    """
    if not enabled(environ):
        return False
    # absl runs a callback at once, in the caller's thread, when it has already initialised; `registering` tells
    # that call from the one `app.run` makes later.
    registering = True
    called_at_once = []

    def callback() -> None:
        if registering:
            called_at_once.append(True)
            return
        freeze_imports()

    app.call_after_init(callback)
    registering = False
    return not called_at_once
