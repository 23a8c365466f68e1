"""A foundation model built on first use, so fully cached work never loads weights."""

from __future__ import annotations

import torch

from .base import FoundationModel
from .registry import load_model, model_identity


class LazyModel:
    """Builds the foundation model on first use, so fully cached runs never load one."""

    def __init__(self, model: str | FoundationModel, device: str | torch.device | None):
        self._spec = model if isinstance(model, str) else None
        self._device = device
        self._model = model if isinstance(model, FoundationModel) else None

    def identity(self) -> str:
        """The model's cache identity, without building the model where the file tells it."""
        if self._model is not None:
            return self._model.name
        return model_identity(self._spec)

    def get(self) -> FoundationModel:
        """The model, built now if needed."""
        if self._model is None:
            self._model = load_model(self._spec, self._device)
        return self._model
