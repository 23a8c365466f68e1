"""Propagating a prompt through a volume (core, no display): where it goes, where it stops."""

from __future__ import annotations

import numpy as np
import pytest

from napari_aleatoric.models.propagation import (
    Propagation,
    SlicePropagated,
    enlarge_box,
    mask_box,
    propagate,
    propagate_prompts,
)

DEPTH, SIZE = 16, 48
BLOB_SLICES = range(3, 10)  # slices 3..9


def blob_volume() -> np.ndarray:
    """A bright blob through slices 3..9 of a 16-slice volume, drifting 2 px a slice to the right."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    blob = np.zeros((DEPTH, SIZE, SIZE), dtype=bool)
    for z in BLOB_SLICES:
        radius = 8 - abs(z - 6)  # 5..8
        blob[z] = (yy - 24) ** 2 + (xx - (14 + 2 * z)) ** 2 <= radius ** 2
    return blob


def box_model(blob: np.ndarray, calls: list | None = None):
    """A stand-in for the model: the blob's pixels inside the prompt box."""
    def predict(index, box):
        if calls is not None:
            calls.append(index)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        mask = np.zeros(blob.shape[1:], dtype=bool)
        mask[y0:y1 + 1, x0:x1 + 1] = blob[index, y0:y1 + 1, x0:x1 + 1]
        return mask
    return predict


def run(generator) -> tuple[list[SlicePropagated], Propagation]:
    events = []
    while True:
        try:
            events.append(next(generator))
        except StopIteration as stop:
            return events, stop.value


def test_propagation_covers_the_blobs_slices_and_stops_outside():
    blob = blob_volume()
    calls: list[int] = []
    events, result = run(propagate(box_model(blob, calls), blob[6], 6, DEPTH))
    assert (result.first, result.last, result.seed) == (3, 9, 6)
    assert list(result.slices) == list(BLOB_SLICES)
    assert result.masks.shape == (DEPTH, SIZE, SIZE) and result.masks.dtype == bool
    assert np.array_equal(result.masks, blob)  # the box follows the drifting blob
    assert not result.masks[:3].any() and not result.masks[10:].any()
    assert result.stopped == {+1: "vanished", -1: "vanished"}
    # the seed first, then up, then down; one prediction past each end, none beyond
    assert [e.slice for e in events] == [6, 7, 8, 9, 5, 4, 3]
    assert [e.direction for e in events] == [0, 1, 1, 1, -1, -1, -1]
    assert events[-1].slices_done == 7
    assert sorted(calls) == [2, 3, 4, 5, 7, 8, 9, 10]
    # each slice was prompted with the previous slice's box, slightly enlarged
    assert np.allclose(result.boxes[7], enlarge_box(mask_box(blob[6]), (SIZE, SIZE)))
    assert result.boxes[6] is None


def test_a_mask_smaller_than_the_fraction_of_the_seed_stops_the_walk():
    blob = blob_volume()
    blob[9] = False
    blob[9, 24, 32] = True  # one pixel left: vanished
    _events, result = run(propagate(box_model(blob), blob[6], 6, DEPTH, min_fraction=0.05))
    assert (result.first, result.last) == (3, 8)
    _events, result = run(propagate(box_model(blob), blob[6], 6, DEPTH, min_fraction=0.0))
    assert (result.first, result.last) == (3, 9)  # at least one pixel is kept with fraction 0


def test_the_volume_edge_and_the_slice_limit_stop_the_walk():
    full = np.zeros((DEPTH, SIZE, SIZE), dtype=bool)
    full[:, 10:30, 10:30] = True
    _events, result = run(propagate(box_model(full), full[0], 0, DEPTH))
    assert (result.first, result.last) == (0, DEPTH - 1)
    assert result.stopped == {+1: "edge", -1: "edge"}
    _events, result = run(propagate(box_model(full), full[5], 5, DEPTH, max_slices=2))
    assert (result.first, result.last) == (3, 7) and result.stopped == {+1: "limit", -1: "limit"}


def test_an_empty_seed_mask_propagates_nothing():
    events, result = run(propagate(box_model(blob_volume()), np.zeros((SIZE, SIZE), bool), 6, DEPTH))
    assert events == [] and not result.masks.any() and (result.first, result.last) == (6, 6)
    with pytest.raises(ValueError, match="outside the volume"):
        run(propagate(box_model(blob_volume()), blob_volume()[6], DEPTH, DEPTH))


def test_enlarge_box_is_clipped_to_the_slice():
    box = enlarge_box(np.array([0, 5, 9, 14], np.float32), (20, 12))
    assert np.allclose(box, [0, 3, 11, 16])


def test_propagation_with_the_model_reuses_cached_slice_embeddings(tmp_path):
    """The real model interface (the tiny test model): the seed from a box, every slice's embedding
    stored once in the cache and read from it by a second walk."""
    import torch

    from napari_aleatoric.data.arraycache import ArrayCache
    from napari_aleatoric.models.tiny import build_tiny_model

    model = build_tiny_model(torch.device("cpu"))
    blob = blob_volume()
    volume01 = np.where(blob, 0.9, 0.1).astype(np.float32)
    cache = ArrayCache(tmp_path / "embeddings")
    box = np.array([0, 0, SIZE - 1, SIZE - 1], np.float32)
    events, result = run(propagate_prompts(model, volume01, 6, box=box, embedding_cache=cache))
    assert result.masks.shape == (DEPTH, SIZE, SIZE)
    assert [e.slice for e in events][:1] in ([6], [])
    stored = len(list((tmp_path / "embeddings").rglob("*.npz")))
    assert stored >= 1
    embedded = model.seconds_in_model
    events_again, again = run(propagate_prompts(model, volume01, 6, box=box, embedding_cache=cache))
    assert np.array_equal(again.masks, result.masks)
    assert len(list((tmp_path / "embeddings").rglob("*.npz"))) == stored  # nothing new embedded
    with pytest.raises(ValueError, match="box or points"):
        run(propagate_prompts(model, volume01, 6, embedding_cache=cache))
    assert embedded > 0
