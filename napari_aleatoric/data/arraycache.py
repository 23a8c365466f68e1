"""A small on-disk cache of named float16 arrays, keyed by content, safe against interrupted writes.

Each entry is one ``.npz`` file written atomically (temporary file in the same folder, fsync,
rename) and carries its own key; an entry that is truncated, unreadable or written for another key
is treated as missing, never as valid.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_write_bytes


def content_key(*parts: bytes | str) -> str:
    """Hex SHA-256 over the given parts (strings are UTF-8 encoded), separated unambiguously."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else bytes(part)
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


class ArrayCache:
    """Arrays stored under ``folder/<name>.npz`` with a validity key and JSON metadata.

    Args:
        folder: cache folder (created on first write).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        """File that holds entry ``name``."""
        return self.folder / f"{name}.npz"

    def load(self, name: str, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
        """Arrays and metadata of entry ``name`` if it exists, is intact and was written for ``key``.

        Returns:
            ``(arrays, metadata)`` or ``None`` (missing, stale or damaged entry).
        """
        return self._read(name, key, arrays=True)

    def metadata(self, name: str, key: str) -> dict | None:
        """Only the metadata of entry ``name`` (its arrays are not read), or ``None`` as in :meth:`load`."""
        entry = self._read(name, key, arrays=False)
        return None if entry is None else entry[1]

    def _read(self, name: str, key: str, arrays: bool) -> tuple[dict[str, np.ndarray], dict] | None:
        path = self.path(name)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                if "__key__" not in npz.files or str(npz["__key__"]) != key:
                    return None
                metadata = json.loads(str(npz["__meta__"]))
                values = {k: npz[k] for k in npz.files if not k.startswith("__")} if arrays else {}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
            return None
        return values, metadata

    def save(self, name: str, key: str, arrays: dict[str, np.ndarray], metadata: dict | None = None) -> Path:
        """Write entry ``name`` atomically; floating arrays are stored as float16.

        Returns:
            the entry's path.
        """
        stored = {k: (v.astype(np.float16) if np.issubdtype(v.dtype, np.floating) else v) for k, v in arrays.items()}
        buffer = io.BytesIO()
        np.savez(buffer, __key__=np.array(key), __meta__=np.array(json.dumps(metadata or {})), **stored)
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
        return path
