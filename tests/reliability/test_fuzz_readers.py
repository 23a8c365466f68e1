"""Property-based attacks on the readers: random and damaged bytes, giant declared shapes,
NaN/inf, wrong dimensionality. Every outcome is a valid array or a ``CaseError`` naming the file;
nothing else escapes, nothing giant is allocated and no file on disk changes."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reliability_helpers import (nifti_with_declared_shape, png_with_declared_shape, tiff_with_declared_shape,
                                 tree_state, valid_files, write_nifti)

from napari_aleatoric.data import medio
from napari_aleatoric.data.errors import CaseError

READERS = {"read_image": medio.read_image, "read_label": medio.read_label, "probe": medio.probe}
ENDINGS = [".nii", ".nii.gz", ".png", ".tif", ".dcm"]
FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
#: a reader may use this much Python/numpy memory on a tiny file whatever its header declares
MEMORY_CEILING_BYTES = 32 * 2**20


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz_readers")


@pytest.fixture(scope="module")
def good_files(scratch) -> dict[str, bytes]:
    return {ending: path.read_bytes() for ending, path in valid_files(scratch / "valid").items()}


def read_or_case_error(reader: str, path: Path):
    """Run a reader; return its result, or the CaseError after checking it names ``path``."""
    try:
        return READERS[reader](path)
    except CaseError as error:
        assert error.path is not None and error.path.name == path.name, str(error)
        assert str(error).startswith(str(error.path)) and error.problem, str(error)
        return error


def check_result(reader: str, result) -> None:
    """A reader that succeeded on damaged bytes still returns a usable 2D/3D array."""
    if isinstance(result, CaseError) or reader == "probe":
        if reader == "probe" and not isinstance(result, CaseError):
            assert len(result.shape) in (2, 3)
        return
    array, geometry = result
    assert array.ndim in (2, 3) and min(array.shape) >= 1
    if reader == "read_image":
        assert array.dtype == np.float32 and np.isfinite(array).all()
    else:
        assert array.dtype.kind in "iu" and (array.size == 0 or array.min() >= 0)


@FUZZ
@given(data=st.binary(max_size=4096), ending=st.sampled_from(ENDINGS), reader=st.sampled_from(sorted(READERS)))
def test_random_bytes_give_a_case_error_naming_the_file(scratch, data, ending, reader):
    path = scratch / f"random{ending}"
    path.write_bytes(data)
    before = tree_state(scratch)
    check_result(reader, read_or_case_error(reader, path))
    assert tree_state(scratch) == before


@FUZZ
@given(ending=st.sampled_from(ENDINGS), reader=st.sampled_from(sorted(READERS)), cut=st.floats(0.0, 0.999),
       flips=st.lists(st.tuples(st.floats(0.0, 0.999), st.integers(1, 255)), max_size=6))
def test_truncated_or_bit_flipped_files_never_escape_as_raw_errors(scratch, good_files, ending, reader, cut, flips):
    data = bytearray(good_files[ending])
    for where, mask in flips:
        data[int(where * len(data))] ^= mask
    if not flips or cut > 0.5:  # truncate half of the examples (all of those without flips)
        data = data[: int(cut * len(data))]
    path = scratch / f"damaged{ending}"
    path.write_bytes(bytes(data))
    before = tree_state(scratch)
    check_result(reader, read_or_case_error(reader, path))
    assert tree_state(scratch) == before


def _declared_bytes(shape) -> int:
    return int(np.prod(shape, dtype=object))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from([".nii", ".nii.gz", ".tif", ".png"]),
       shape=st.lists(st.integers(100, 32767), min_size=2, max_size=3).filter(lambda s: _declared_bytes(s) >= 2**26),
       reader=st.sampled_from(sorted(READERS)))
def test_giant_declared_shape_is_refused_without_allocating_it(scratch, fmt, shape, reader):
    """A tiny file whose header claims at least 64 MiB (up to 35 TB) of voxels."""
    path = scratch / f"giant{fmt}"
    if fmt.startswith(".nii"):
        nifti_with_declared_shape(path, tuple(shape))
    elif fmt == ".tif":
        tiff_with_declared_shape(path, shape[0], shape[-1])
    else:
        png_with_declared_shape(path, shape[0], shape[-1])
    tracemalloc.start()
    try:
        result = read_or_case_error(reader, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_CEILING_BYTES, f"{reader} of {path.name} {shape} used {peak} bytes"
    if reader == "probe" and fmt == ".png":
        return  # a PNG probe reads the header only; decoding is what must refuse it (checked above)
    assert isinstance(result, CaseError), f"{reader} accepted {path.name} declaring {shape}"
    assert "not enough memory" not in str(result)  # refused from the header, not by luck


@FUZZ
@given(shape=st.sampled_from([(4, 5), (3, 4, 5)]), ending=st.sampled_from([".nii.gz", ".tif"]),
       bad=st.lists(st.tuples(st.integers(0, 59), st.sampled_from([np.nan, np.inf, -np.inf])), min_size=1, max_size=5))
def test_nan_or_inf_voxels_are_refused_and_counted(scratch, shape, ending, bad):
    data = np.zeros(shape, np.float32)
    flat = data.reshape(-1)
    for index, value in bad:
        flat[index % flat.size] = value
    path = scratch / f"nonfinite{ending}"
    if ending == ".tif":
        tifffile.imwrite(path, data, photometric="minisblack")
    else:
        write_nifti(path, data.T)
    count = int((~np.isfinite(data)).sum())
    before = tree_state(scratch)
    with pytest.raises(CaseError, match=rf"{count} NaN/inf voxel") as info:
        medio.read_image(path)
    assert info.value.path == path
    with pytest.raises(CaseError, match="NaN/inf") as info:
        medio.read_label(path)
    assert info.value.path == path
    assert tree_state(scratch) == before


@FUZZ
@given(shape=st.one_of(st.lists(st.integers(2, 4), min_size=1, max_size=1),
                       st.lists(st.integers(2, 4), min_size=4, max_size=5)),
       ending=st.sampled_from([".nii", ".nii.gz", ".tif"]), reader=st.sampled_from(sorted(READERS)))
def test_wrong_dimensionality_is_named(scratch, shape, ending, reader):
    assume(ending != ".tif" or len(shape) > 1)  # tifffile cannot even write 1D
    data = np.ones(shape, np.uint8)
    path = scratch / f"dims{ending}"
    if ending == ".tif":
        tifffile.imwrite(path, data, photometric="minisblack")
    else:
        write_nifti(path, data)
    result = read_or_case_error(reader, path)
    assert isinstance(result, CaseError), f"{reader} accepted shape {shape}"
    assert "dimensionality" in str(result) or "2D" in str(result), str(result)
