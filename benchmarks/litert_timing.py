"""LiteRT latency of a converted model, shared by the benchmark scripts."""

import time

import numpy as np
from ai_edge_litert import interpreter as litert


def latency_ms(model: bytes, runs: int, warmup: int, num_threads: int = 1) -> float:
    """Median milliseconds per invocation of `model` (TFLite bytes), every input uniform random in [0, 1)."""
    runner = litert.Interpreter(model_content=model, num_threads=num_threads)
    runner.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in runner.get_input_details():
        value = rng.uniform(size=detail["shape"]).astype(detail["dtype"])
        runner.set_tensor(detail["index"], value)
    for _ in range(warmup):
        runner.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.invoke()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))
