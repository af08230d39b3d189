"""How edge_ssl's Python becomes TensorFlow graphs: traced as written, without AutoGraph's conversion.

When TensorFlow traces a function (`tf.function`, a tf.data `map`, the call of a Keras layer that is not one of
Keras's own, `strategy.run`), AutoGraph first rewrites the function's source so that a Python `if`, `for` or `while`
on a tensor becomes graph control flow, and then does the same to every function it calls. None of edge_ssl's graph
code branches or loops on a tensor's value: its loops run over Python ranges and lists, its branches test Python
values and static shapes, and where a graph needs control flow it writes `tf.cond`. For such code the rewrite makes
the same graph, but it costs time in every process that traces: parsing and rewriting the source of each function,
then a wrapper around every call the rewritten code makes. On the test suite it was about a tenth of the CPU time
(benchmarks/README.md, "Tracing without AutoGraph"); pretraining, distillation and export start faster by as much
as their tracing weighs.

So the functions that TensorFlow traces are marked here: `as_written` for a Keras layer's `call`, a method's
`prepare` and `train_step`, a tf.data map function; `function` in place of `tf.function`. Inside a marked function
AutoGraph is off for everything it calls, edge_ssl's code and Keras's alike. Code that branches on a tensor's value
without `tf.cond` then fails while tracing, with TensorFlow's `OperatorNotAllowedInGraphError` naming the line; it
never builds a different graph silently. `tools/lint` checks that every such function is marked.

`EDGE_SSL_AUTOGRAPH=1`, set before edge_ssl is imported, leaves every function to AutoGraph as TensorFlow does by
default: for code of one's own, called from edge_ssl's, that branches on tensors, and for measuring what the
conversion costs (`benchmarks/startup.py`).
"""

import functools
import inspect
import os
from collections.abc import Callable
from typing import TypeVar

import tensorflow as tf

F = TypeVar("F", bound=Callable)

# "1": AutoGraph converts as TensorFlow does by default; anything else (or unset): traced as written.
ENV = "EDGE_SSL_AUTOGRAPH"
_AUTOGRAPH = os.environ.get(ENV) == "1"


def as_written(fn: F) -> F:
    """`fn`, traced as written: AutoGraph neither converts it nor anything it calls.

    `tf.autograph.experimental.do_not_convert`, keeping `fn`'s signature for the code that reads it (Keras reads the
    arguments of a layer's `call` to know whether to pass `training` and `mask`; tf.function reads its arguments).
    """
    if _AUTOGRAPH:
        return fn
    plain = tf.autograph.experimental.do_not_convert(fn)
    plain.__signature__ = inspect.signature(fn)
    return plain


def function(fn: Callable | None = None, **kwargs):
    """`tf.function(fn, **kwargs)` traced as written; as a decorator with or without arguments."""
    if fn is None:
        return functools.partial(function, **kwargs)
    if _AUTOGRAPH:
        return tf.function(fn, **kwargs)
    return tf.function(as_written(fn), autograph=False, **kwargs)
