"""Errors that name the file and the problem, for the CLI and for napari notifications."""

from __future__ import annotations

from pathlib import Path


class AleatoricError(Exception):
    """Base class of every error this package raises on purpose.

    ``str(error)`` is ``"<path>: <problem>"`` when a path is known, else the problem alone.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = Path(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)

    def __reduce__(self):
        # pickled by path and problem (a Dask worker sends its errors to the client this way)
        return type(self), (self.path, self.problem)


class DatasetError(AleatoricError):
    """The dataset as a whole cannot be used (missing or malformed ``dataset.json``, no cases...)."""


class CaseError(AleatoricError):
    """One case cannot be used (missing, unreadable, mismatched or invalid files); others go on."""


class ModelError(AleatoricError):
    """A foundation-model checkpoint is missing, corrupt, unsafe or of the wrong shape."""
