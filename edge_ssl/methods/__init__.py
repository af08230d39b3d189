"""Self-supervised methods, one module per paper, each with `build(config) -> Method` (see base.Method).

Methods are chosen by name from `METHODS` (an explicit table, no import side effects).
"""
