"""Batched encoder forwards (``batch_size`` / ``--batch-size``) give the scores of the unbatched path.

Each test scores the same data twice, once one slice per encoder forward and once batched, and
compares everything scoring writes: ``scores.csv`` byte for byte, every array of every cached map
and embedding. The model records the batch sizes it was given, so a "batched" run that silently
fell back to one slice per forward fails too. On the CPU the encoders give each slice the same
embedding in a batch as alone (checked for the tiny model and LiteMedSAM), so equality is exact;
run with ``--device cuda`` the same tests use the GPU.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import device_option
from helpers import cache_arrays
from napari_aleatoric.cli import main
from napari_aleatoric.models.prompting import _embed_in_batches, slice_embeddings
from napari_aleatoric.models.registry import load_model
from napari_aleatoric.pipelines.scoring import CaseScored, CaseSkipped, ScoringFinished, score_dataset
from napari_aleatoric.pipelines.table import read_scores

pytestmark = pytest.mark.usefixtures("one_thread")


def recording_model():
    """The tiny model on the test device; ``model.batches`` lists the batch size of every encoder forward."""
    model = load_model("tiny", device_option())
    model.batches = []
    embed = model.embed

    def recording_embed(images01):
        model.batches.append(int(images01.shape[0]))
        return embed(images01)

    model.embed = recording_embed
    return model


def score(dataset: Path, batch_size: int | None, model=None):
    model = model or recording_model()
    events = list(score_dataset(dataset, model, device=device_option(), batch_size=batch_size))
    return model, events


def assert_same_outputs(a: Path, b: Path) -> None:
    """Byte for byte on the CPU. On CUDA, cuDNN may pick another convolution algorithm for another
    batch size (measured on an H200 with the tiny model: 0.0032 at most, docs/performance.md): scores within 5e-3,
    the same cases flagged, cached arrays within float16 tolerance."""
    first, second = cache_arrays(a), cache_arrays(b)
    assert set(first) == set(second) and any("maps/" in k for k in first) and any("embeddings/" in k for k in first)
    if device_option() != "cuda":
        assert (a / ".aleatoric" / "scores.csv").read_bytes() == (b / ".aleatoric" / "scores.csv").read_bytes()
        for name in first:
            assert first[name].dtype == second[name].dtype, name
            assert np.array_equal(first[name], second[name]), name
        return
    rows_a = {r["case_id"]: r for r in read_scores(a / ".aleatoric" / "scores.csv").rows}
    rows_b = {r["case_id"]: r for r in read_scores(b / ".aleatoric" / "scores.csv").rows}
    assert set(rows_a) == set(rows_b)
    for case_id, row in rows_a.items():
        assert row["flagged"] == rows_b[case_id]["flagged"], case_id
        for column, value in row.items():
            if isinstance(value, float) and column != "rank":
                assert value == pytest.approx(rows_b[case_id][column], abs=5e-3, nan_ok=True), (case_id, column)
    for name in first:
        assert first[name].dtype == second[name].dtype, name
        if np.issubdtype(first[name].dtype, np.floating):
            np.testing.assert_allclose(first[name].astype(np.float32), second[name].astype(np.float32), atol=0.02,
                                       err_msg=name)
        else:
            assert np.array_equal(first[name], second[name]), name


def twin(dataset: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "batched" / dataset.name
    shutil.copytree(dataset, copy)
    return copy


def test_batched_2d_scores_equal_unbatched_bit_for_bit(mni_dataset, tmp_path):
    batched_ds = twin(mni_dataset, tmp_path)
    plain, plain_events = score(mni_dataset, 1)
    batched, batched_events = score(batched_ds, 3)
    assert set(plain.batches) == {1}
    assert max(batched.batches) == 3 and sum(batched.batches) == sum(plain.batches)  # 20 slices, 3 per forward
    assert_same_outputs(mni_dataset, batched_ds)
    order = [[e.result.case_id for e in events if isinstance(e, CaseScored)] for events in (plain_events, batched_events)]
    assert order[0] == order[1] and len(order[0]) == 20
    assert [e.index for e in batched_events if isinstance(e, CaseScored)] == list(range(1, 21))
    finished = batched_events[-1]
    assert isinstance(finished, ScoringFinished)
    assert [r["case_id"] for r in finished.table.rows] == [r["case_id"] for r in plain_events[-1].table.rows]
    assert all(e.result.forward_seconds > 0 for e in batched_events if isinstance(e, CaseScored))


@pytest.mark.parametrize("batch_size", [4, 64])
def test_batched_volumes_score_equal_unbatched(ct_dataset, tmp_path, batch_size):
    """4 slices per forward inside each volume, or all volumes' slices shared across cases (64)."""
    batched_ds = twin(ct_dataset, tmp_path)
    plain, _ = score(ct_dataset, 1)
    batched, _ = score(batched_ds, batch_size)
    assert max(batched.batches) > 1 and sum(batched.batches) == sum(plain.batches)
    assert_same_outputs(ct_dataset, batched_ds)


def test_a_bad_case_in_a_batch_is_skipped_and_the_others_keep_their_scores(mni_dataset, tmp_path):
    label = sorted((mni_dataset / "labelsTr").iterdir())[4]
    label.write_bytes(label.read_bytes()[:60])  # truncated file
    batched_ds = twin(mni_dataset, tmp_path)
    _, plain_events = score(mni_dataset, 1)
    _, batched_events = score(batched_ds, 4)
    for events in (plain_events, batched_events):
        skipped = [e for e in events if isinstance(e, CaseSkipped)] + events[0].skipped
        assert len(skipped) == 1
    assert_same_outputs(mni_dataset, batched_ds)


def test_cli_batch_size_gives_the_same_csv_and_refuses_zero(mni_dataset, tmp_path, capsys):
    batched_ds = twin(mni_dataset, tmp_path)
    common = ["--model", "tiny", "--device", device_option()]
    assert main(["score", str(mni_dataset), *common]) == 0
    assert main(["score", str(batched_ds), *common, "--batch-size", "8"]) == 0
    assert (mni_dataset / ".aleatoric" / "scores.csv").read_bytes() == (batched_ds / ".aleatoric" / "scores.csv").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(["score", str(mni_dataset), *common, "--batch-size", "0"])
    assert exit_info.value.code == 2 and "at least 1" in capsys.readouterr().err


def test_slice_embeddings_keep_each_slice_in_its_place():
    model = recording_model()
    rng = np.random.default_rng(1)
    slices = [rng.random((40 + i, 50), dtype=np.float32) for i in range(5)]  # different sizes, different inputs
    alone = [slice_embeddings(model, [s])[0][0] for s in slices]
    together = slice_embeddings(model, slices, batch_size=4)
    assert model.batches[-2:] == [4, 1]
    for single, (batched, cached) in zip(alone, together):
        assert not cached and torch.equal(single, batched)
    with pytest.raises(ValueError, match="at least 1"):
        slice_embeddings(model, slices, batch_size=0)


def test_a_batch_that_does_not_fit_the_gpu_is_split():
    model = recording_model()
    embed = model.embed

    def embed_at_most_two(images01):
        if images01.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return embed(images01)

    model.embed = embed_at_most_two
    inputs = [torch.rand(1, 3, 64, 64) for _ in range(7)]
    split = _embed_in_batches(model, inputs, 8)
    assert len(split) == 7
    for x, e in zip(inputs, split):
        assert torch.equal(e, embed(x))
