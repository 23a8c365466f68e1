"""Review state and safe saving of corrected annotations (no Qt, no napari).

- :mod:`.store`: :class:`ReviewStore`, the per-dataset SQLite store of case statuses and revisions.
- :mod:`.saving`: :func:`save_correction`, :func:`revert`, :func:`reconcile_case` write label files
  crash-safely, keeping the original under ``.aleatoric/originals/`` and every revision under
  ``.aleatoric/revisions/``.
"""

from napari_aleatoric.review.saving import (
    default_user,
    original_path,
    reconcile_case,
    revert,
    save_correction,
    sha256_file,
)
from napari_aleatoric.review.store import STATUSES, ReviewStore, Revision

__all__ = [
    "STATUSES",
    "ReviewStore",
    "Revision",
    "default_user",
    "original_path",
    "reconcile_case",
    "revert",
    "save_correction",
    "sha256_file",
]
