"""Configs written as Python: `<method>_<size>.py` each with `get_config()`; `tiny` for tests, `small` for the CPU
demo, `paper` for the paper's settings. `load(method, size, overrides)` picks one by name."""
