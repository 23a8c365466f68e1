"""The one definition of the project's state folder, ``<dataset>/.aleatoric/``.

Every path the program keeps under a dataset's state folder is named here and nowhere else::

    <dataset>/.aleatoric/                    state_dir(root)
        scores.csv, scores.json              scores_csv(state), scores_json(state): the ranked table
                                             and its summary (format: :mod:`.scores_file`)
        review.sqlite                        review_store(state): statuses, revisions, status log
        originals/<label path>               originals_dir(state): first-seen bytes of corrected labels
        revisions/<case_id>/                 revisions_dir(state, case_id): one copy per revision
        models/<run>/                        models_dir(state): training runs
        label_snapshots/<run>/               label_snapshots_dir(state, run): label snapshot of a run
                                             whose folder is outside the dataset
        unlabelled/<run>/                    unlabelled_dir(state, run): a run's predictions of the
            labelsTs/                        test cases (predicted_labels_dir) and their scores
            scores.csv, scores.json
        cache/                               cache_dir(state): the caches (``--cache`` may put them
                                             elsewhere; the names below are relative to that folder)
            maps/                            maps_cache(cache): the foundation model's per-case maps
            embeddings/                      embeddings_cache(cache): slice embeddings
            quality/                         quality_cache(cache): the queue's label-issue maps
            quality-training/                training_quality_cache(cache): a training run's issue maps

Functions take the state folder (``Dataset.state_dir``, ``ReviewStore.state_dir``) or, for the
cache's subfolders, the cache folder (``Dataset.cache_dir``), and only build paths: nothing here
touches the disk. No Qt, no napari.
"""

from __future__ import annotations

from pathlib import Path

#: the state folder's name, inside the dataset folder
STATE_DIR_NAME = ".aleatoric"
SCORES_CSV = "scores.csv"
SCORES_JSON = "scores.json"
REVIEW_STORE = "review.sqlite"
ORIGINALS = "originals"
REVISIONS = "revisions"
MODELS = "models"
LABEL_SNAPSHOTS = "label_snapshots"
UNLABELLED = "unlabelled"
PREDICTED_LABELS = "labelsTs"
CACHE = "cache"
MAPS_CACHE = "maps"
EMBEDDINGS_CACHE = "embeddings"
QUALITY_CACHE = "quality"
TRAINING_QUALITY_CACHE = "quality-training"

#: folders of the state folder that hold the project's own state: no score table or export may go there
RESERVED_STATE_FOLDERS = frozenset({ORIGINALS, REVISIONS, CACHE, MODELS})


def state_dir(dataset_root: str | Path) -> Path:
    """``<dataset>/.aleatoric``."""
    return Path(dataset_root) / STATE_DIR_NAME


def scores_csv(state: Path) -> Path:
    """The dataset's ranked table."""
    return state / SCORES_CSV


def scores_json(state: Path) -> Path:
    """The summary of the dataset's scoring (beside :func:`scores_csv`)."""
    return state / SCORES_JSON


def review_store(state: Path) -> Path:
    """The review store's SQLite file."""
    return state / REVIEW_STORE


def originals_dir(state: Path) -> Path:
    """Where the originals of corrected label files are kept (by their path relative to the dataset)."""
    return state / ORIGINALS


def revisions_dir(state: Path, case_id: str) -> Path:
    """Where the revision copies of a case's label file are kept."""
    return state / REVISIONS / case_id


def models_dir(state: Path) -> Path:
    """The training runs' folders."""
    return state / MODELS


def label_snapshots_dir(state: Path, run_name: str) -> Path:
    """The label snapshot of a training run whose own folder is outside the dataset."""
    return state / LABEL_SNAPSHOTS / run_name


def unlabelled_dir(state: Path, run_name: str) -> Path:
    """A run's predictions and scores of the unlabelled (``imagesTs``) cases."""
    return state / UNLABELLED / run_name


def predicted_labels_dir(state: Path, run_name: str) -> Path:
    """The label files a run predicted for the unlabelled cases."""
    return unlabelled_dir(state, run_name) / PREDICTED_LABELS


def cache_dir(state: Path) -> Path:
    """The default cache folder (``--cache`` may name another)."""
    return state / CACHE


def maps_cache(cache: Path) -> Path:
    """The foundation model's per-case maps, in a cache folder."""
    return Path(cache) / MAPS_CACHE


def embeddings_cache(cache: Path) -> Path:
    """The foundation model's slice embeddings, in a cache folder."""
    return Path(cache) / EMBEDDINGS_CACHE


def quality_cache(cache: Path) -> Path:
    """The review queue's label-issue maps, in a cache folder."""
    return Path(cache) / QUALITY_CACHE


def training_quality_cache(cache: Path) -> Path:
    """The issue maps of a training run's label-quality pass, in a cache folder."""
    return Path(cache) / TRAINING_QUALITY_CACHE
