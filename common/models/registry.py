"""The model registry: the classes a checkpoint may name, so loading never imports a module.

``BaseLanguageModel`` subclasses join it when they are defined.
"""

from __future__ import annotations

from common.models.errors import CheckpointError

_REGISTRY: dict[str, type] = {}


def class_spec(cls: type) -> str:
    """The ``module:QualName`` a checkpoint records for ``cls``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def register_model_class(cls: type) -> type:
    """Let checkpoints naming ``cls`` rebuild it (``BaseLanguageModel`` subclasses do this
    themselves when defined); returns ``cls``, so it also works as a decorator."""
    _REGISTRY[class_spec(cls)] = cls
    return cls


def registered_model_class(spec: str) -> type:
    """The registered class a checkpoint's ``class`` field names.

    Raises:
        CheckpointError: malformed spec, or no such class registered (the module that defines it
            has not been imported; it never is on a checkpoint's say-so).
    """
    module_name, sep, qualname = spec.partition(":")
    if not sep or not module_name or not qualname:
        raise CheckpointError(f"checkpoint class {spec!r} is not of the form 'module:QualName'")
    cls = _REGISTRY.get(spec)
    if cls is None:
        raise CheckpointError(
            f"checkpoint class {spec!r} is not a registered model class; import the package "
            f"that defines it (e.g. `import {module_name}`) before loading, or build the model "
            "yourself and call model.load_checkpoint(path)"
        )
    return cls
