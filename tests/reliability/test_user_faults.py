"""Issue 13: what an outside attacker found that loses or locks out an annotation, in the core
(no Qt): each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_tiny_dataset

from napari_aleatoric.data import medio
from napari_aleatoric.data.errors import AleatoricError
from napari_aleatoric.review.saving import revert, save_correction
from napari_aleatoric.review.store import ReviewStore


# -- defect 1: undeclared label values ---------------------------------------------------------


def test_save_refuses_label_values_dataset_json_does_not_declare(tmp_path):
    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=2)
    label_path = root / "labelsTr" / "c00.png"
    before = label_path.read_bytes()
    labels, geometry = medio.read_label(label_path)
    labels = labels.astype(np.int32)
    labels[:2, :2] = 3
    labels[5, 5] = 300
    with ReviewStore.for_dataset(root) as store:
        with pytest.raises(AleatoricError) as caught:
            save_correction(root, "c00", label_path, labels, geometry, user="u", model=None, auv_before=None,
                            store=store)
        assert store.revisions("c00") == []
    message = str(caught.value)
    assert str(label_path) in message and "3, 300" in message and "not declared" in message
    assert label_path.read_bytes() == before
    assert not (root / ".aleatoric" / "originals").exists() and not (root / ".aleatoric" / "revisions").exists()


def test_revert_restores_a_label_file_that_cannot_be_opened(tmp_path):
    from PIL import Image

    from napari_aleatoric.data.dataset import load_case, open_dataset

    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=2)
    label_path = root / "labelsTr" / "c00.png"
    original = label_path.read_bytes()
    labels, geometry = medio.read_label(label_path)
    with ReviewStore.for_dataset(root) as store:
        save_correction(root, "c00", label_path, np.where(labels == 2, 0, labels), geometry, user="u", model=None,
                        auv_before=None, store=store)
        locked = np.array(Image.open(label_path))
        locked[0, 0] = 3
        Image.fromarray(locked).save(label_path)
        ds = open_dataset(root)
        with pytest.raises(AleatoricError):
            load_case(ds, ds.case("c00"))
        revert(root, "c00", label_path, "original", store, "u")
    assert label_path.read_bytes() == original
    load_case(ds, ds.case("c00"))


# -- defect 4: bit flips in files that carry a checksum -----------------------------------------

#: single-bit flips per format; every flip of a .nii.gz or .png must be refused or change nothing
BIT_FLIPS = 300


@pytest.mark.parametrize("ending", [".nii.gz", ".png", ".nii", ".tif"])
def test_every_single_bit_flip_of_a_checksummed_label_is_refused_or_harmless(tmp_path, ending):
    """.nii.gz (gzip CRC-32) and .png (chunk CRC-32, zlib Adler-32): no flip goes unnoticed. .nii and
    uncompressed .tif carry no checksum: a flip in the voxel data cannot be detected there (counted)."""
    import random

    from napari_aleatoric.data.errors import CaseError

    rng = np.random.default_rng(4)
    labels = (rng.random((6, 40, 48)) > 0.7).astype(np.uint8) * 2
    path = tmp_path / f"label{ending}"
    medio.write_label(path, labels if ending == ".nii.gz" else labels[0], None)
    data = path.read_bytes()
    reference, _ = medio.read_label(path)
    choose = random.Random(13)
    outcome = {"refused": 0, "same": 0, "changed": 0}
    flipped = tmp_path / f"flipped{ending}"
    for _ in range(BIT_FLIPS):
        bit = choose.randrange(len(data) * 8)
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        flipped.write_bytes(bytes(damaged))
        try:
            loaded, _ = medio.read_label(flipped)
        except CaseError as error:
            assert str(flipped) in str(error)
            outcome["refused"] += 1
            continue
        outcome["same" if loaded.shape == reference.shape and np.array_equal(loaded, reference) else "changed"] += 1
    print(f"{ending}: {BIT_FLIPS} single-bit flips of a {len(data)}-byte label: {outcome}")
    if ending in (".nii.gz", ".png"):
        assert outcome["changed"] == 0, outcome
        assert outcome["refused"] >= BIT_FLIPS * 0.9


def test_a_nii_gz_with_a_bad_crc_is_reported_as_corrupt(tmp_path):
    import gzip

    from napari_aleatoric.data.errors import CaseError

    path = tmp_path / "label.nii.gz"
    medio.write_label(path, np.ones((3, 8, 8), np.uint8), None)
    data = bytearray(path.read_bytes())
    data[-8] ^= 1  # the CRC-32 in the gzip trailer: the voxels themselves decode fine
    path.write_bytes(bytes(data))
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(bytes(data))
    with pytest.raises(CaseError, match="fail the integrity check"):
        medio.read_label(path)


# -- defect 5: one degenerate case never aborts a run ------------------------------------------


def add_thin_cases(root):
    """Two cases one pixel tall / one pixel wide beside the tiny dataset's cases."""
    for case_id, shape in (("thin_row", (1, 32)), ("thin_col", (32, 1))):
        label = np.zeros(shape, np.uint8)
        label.flat[4:28] = 1
        label.flat[10:14] = 2
        image = np.array([30, 120, 220], np.uint8)[label]
        medio.write_image(root / "imagesTr" / f"{case_id}_0000.png", image, None)
        medio.write_label(root / "labelsTr" / f"{case_id}.png", label, None)
    return root


def test_a_one_pixel_wide_case_is_skipped_and_named_and_scoring_goes_on(tmp_path):
    from napari_aleatoric.pipelines.scoring import CaseSkipped, ScoringFinished, score_dataset

    root = add_thin_cases(make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=5))
    events = list(score_dataset(root, "tiny", device="cpu"))
    finished = events[-1]
    assert isinstance(finished, ScoringFinished) and finished.csv_path.is_file()
    assert len(finished.table.rows) == 5
    skipped = {e.case_id: str(e.error) for e in events if isinstance(e, CaseSkipped)}
    assert set(skipped) == {"thin_row", "thin_col"}
    assert "thin_row_0000.png" in skipped["thin_row"] and "1x32" in skipped["thin_row"]
    assert "thin_col_0000.png" in skipped["thin_col"] and "32x1" in skipped["thin_col"]


def test_one_bad_case_is_left_out_of_a_training_run_with_its_file_named(tmp_path, one_thread):
    from napari_aleatoric.training import TrainingFinished, TrainingStarted, TrainSettings, train

    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=8)
    bad = root / "labelsTr" / "c03.png"
    medio.write_label(bad, np.full((32, 32), 7, np.uint8), None)  # header fine, values undeclared
    settings = TrainSettings(epochs=1, width=4, depth=3, keep=1.0, batch_size=2, device="cpu", val_fraction=0.25,
                             name="r")
    events = list(train(root, settings))
    started = next(e for e in events if isinstance(e, TrainingStarted))
    assert isinstance(events[-1], TrainingFinished)
    assert "c03" in started.left_out and str(bad) in started.left_out["c03"] and "7" in started.left_out["c03"]


def test_a_problem_in_a_runs_snapshot_copy_names_the_datasets_label_file(tmp_path):
    from napari_aleatoric.data.dataset import open_dataset
    from napari_aleatoric.data.errors import CaseError
    from napari_aleatoric.training.data import CaseLoader

    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=2)
    copy = root / ".aleatoric" / "models" / "r" / "labels" / "c00.png"
    copy.parent.mkdir(parents=True)
    medio.write_label(copy, np.full((32, 32), 9, np.uint8), None)
    loader = CaseLoader(open_dataset(root), label_paths={"c00": copy})
    with pytest.raises(CaseError) as caught:
        loader.get("c00")
    assert caught.value.path == root.resolve() / "labelsTr" / "c00.png"
    assert str(copy.resolve()) in caught.value.problem and "9" in caught.value.problem


# -- defect 7: valid files refused, permission problems misreported -----------------------------


@pytest.mark.parametrize("writer", ["tifffile", "pillow"])
def test_a_valid_one_bit_tiff_label_is_read(tmp_path, writer):
    import tifffile
    from PIL import Image

    mask = np.zeros((40, 48), bool)
    mask[5:20, 5:30] = True
    path = tmp_path / "mask.tif"
    if writer == "tifffile":
        tifffile.imwrite(path, mask)
    else:
        Image.fromarray(mask).save(path)
    assert tifffile.TiffFile(path).pages[0].bitspersample == 1
    labels, _ = medio.read_label(path)
    assert np.array_equal(labels, mask.astype(np.uint8))
    assert medio.probe(path).shape == (40, 48)


@pytest.mark.parametrize("ending", [".png", ".nii.gz", ".tif"])
def test_a_permission_problem_is_reported_as_such_not_as_a_corrupt_file(tmp_path, monkeypatch, ending):
    import builtins
    import errno
    import io

    from napari_aleatoric.data.errors import CaseError

    path = tmp_path / f"label{ending}"
    medio.write_label(path, np.ones((3, 8, 8) if ending == ".nii.gz" else (8, 8), np.uint8), None)
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    monkeypatch.setattr(io, "open", refusing_open)
    with pytest.raises(CaseError) as caught:
        medio.read_label(path)
    assert "no permission" in str(caught.value) and "corrupt" not in str(caught.value), caught.value


# -- defect 7 / memory: a huge case is refused from its header, the others are scored ------------


def test_a_case_too_large_for_the_memory_is_skipped_before_reading_it(tmp_path, monkeypatch):
    from napari_aleatoric.pipelines import memory
    from napari_aleatoric.pipelines.scoring import CaseSkipped, ScoringFinished, score_dataset

    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=5)
    big = np.zeros((8000, 8000), np.uint8)  # 64 million pixels; a few MB as PNG
    big[100:200, 100:200] = 1
    medio.write_image(root / "imagesTr" / "huge_0000.png", big, None)
    medio.write_label(root / "labelsTr" / "huge.png", big, None)
    # a machine with 8 GiB free: 8000x8000 needs about 41 GiB at the measured slopes
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 8 * 2**30)
    reads = []
    real_read = medio.read_image
    monkeypatch.setattr("napari_aleatoric.data.dataset.read_image",
                        lambda path, **kw: reads.append(path.name) or real_read(path, **kw))
    events = list(score_dataset(root, "tiny", device="cpu"))
    assert isinstance(events[-1], ScoringFinished) and len(events[-1].table.rows) == 5
    [skipped] = [e for e in events if isinstance(e, CaseSkipped)]
    message = str(skipped.error)
    assert skipped.case_id == "huge" and "huge_0000.png" in message
    assert "8000x8000" in message and "GiB" in message and "tile" in message and "downsample" in message
    assert "huge_0000.png" not in reads  # refused from the header, nothing allocated


def test_the_memory_estimate_accepts_what_fits_and_names_the_limit():
    from napari_aleatoric.pipelines import memory

    memory.check_scoring_memory("x.png", (512, 512), available=4 * 2**30)
    with pytest.raises(AleatoricError, match="x.nii.gz: image of 400x512x512 voxels"):
        memory.check_scoring_memory("x.nii.gz", (400, 512, 512), available=4 * 2**30)


def test_a_run_killed_before_its_first_checkpoint_can_be_started_again_under_its_name(tmp_path, one_thread):
    from napari_aleatoric.training import TrainingFinished, TrainingStarted, TrainSettings, train

    root = make_tiny_dataset(tmp_path / "Dataset900_Tiny", cases=8)
    settings = TrainSettings(epochs=1, width=4, depth=3, keep=1.0, batch_size=2, device="cpu", val_fraction=0.25,
                             name="k")
    events = train(root, settings)
    started = next(events)
    assert isinstance(started, TrainingStarted)
    events.close()
    # what a kill right after the folder, settings.json and cases.json were written leaves: no checkpoint
    for name in ("last.pt", "best.pt"):
        (started.run_dir / name).unlink(missing_ok=True)
    with pytest.raises(AleatoricError, match="start it again without --resume"):
        next(train(root, None, run_dir=started.run_dir, resume=True))
    assert isinstance(list(train(root, settings))[-1], TrainingFinished)  # the name is reused


# -- defect 8: metadata kept when a label file is rewritten -------------------------------------


def test_png_ancillary_chunks_survive_a_rewrite(tmp_path):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    path = tmp_path / "label.png"
    info = PngInfo()
    info.add_text("Annotator", "Dr. A")
    info.add_text("Comment", "liver v2")
    mask = np.zeros((20, 24), np.uint8)
    mask[3:9, 4:12] = 1
    Image.fromarray(mask).save(path, pnginfo=info, dpi=(300, 300), transparency=0)
    labels, geometry = medio.read_label(path)
    edited = labels.copy()
    edited[0, 0] = 2
    medio.write_label(path, edited, geometry)
    with Image.open(path) as im:
        assert im.text == {"Annotator": "Dr. A", "Comment": "liver v2"}
        assert im.info["transparency"] == 0
        assert tuple(round(v) for v in im.info["dpi"]) == (300, 300)
        assert np.array_equal(np.asarray(im), edited)


@pytest.mark.parametrize("compression", ["zlib", None])
def test_tiff_compression_resolution_and_imagej_spacing_survive_a_rewrite(tmp_path, compression):
    import tifffile

    path = tmp_path / "label.tif"
    stack = np.zeros((3, 20, 24), np.uint8)
    stack[:, 4:10, 5:15] = 1
    tifffile.imwrite(path, stack, imagej=True, compression=compression, resolution=(1 / 0.4, 1 / 0.4),
                     metadata={"spacing": 2.5, "unit": "um", "axes": "ZYX"})
    labels, geometry = medio.read_label(path)
    edited = labels.copy()
    edited[1, 0, 0] = 2
    medio.write_label(path, edited, geometry)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert tif.is_imagej and tif.imagej_metadata["spacing"] == 2.5 and tif.imagej_metadata["unit"] == "um"
        assert page.compression == {"zlib": 8, None: 1}[compression]
        x, y = page.tags["XResolution"].value, page.tags["YResolution"].value
        assert x[0] / x[1] == pytest.approx(2.5) and y[0] / y[1] == pytest.approx(2.5)
        assert np.array_equal(tif.asarray(), edited)
