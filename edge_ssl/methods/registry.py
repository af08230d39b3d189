"""Methods by name: the explicit table the CLIs choose from (no import side effects)."""

from types import ModuleType

from edge_ssl.methods import cross_and_learn, cv_mim, modist, muscles

METHODS: dict[str, ModuleType] = {
    "cross_and_learn": cross_and_learn,
    "modist": modist,
    "cv_mim": cv_mim,
    "muscles": muscles,
}


# Methods an RGB student can learn from (their MODALITY is "video"); the others learn from poses.
VIDEO_METHODS = tuple(name for name, module in METHODS.items() if module.MODALITY == "video")


def get(name: str) -> ModuleType:
    """The module of method `name` (it has `build(config)`); a clear error names the known methods."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]
