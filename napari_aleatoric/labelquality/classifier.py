"""Out-of-sample per-pixel class probabilities: K-fold cross-validation by case.

Every case is predicted by a classifier trained only on the other folds' cases, so a wrong
annotation cannot teach the model to agree with it. Training uses a bounded random sample of
pixels per case (memory stays flat in the number of cases); prediction streams case by case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

import numpy as np
import torch

from ..torch_threads import one_cpu_thread

#: Pixels sampled per case for training (half uniform, half from the annotated foreground, shared
#: equally by the foreground classes the case contains).
PIXELS_PER_CASE = 2000
#: Upper bound on the training pixels of one fold, whatever the number of cases.
MAX_TRAINING_PIXELS = 200_000
#: A class drawn in fewer cases than this (and in fewer than half of them) is too rare to judge:
#: no classifier learns it and its pixels count in no score (docs/label_quality.md, "rare classes").
MIN_CLASS_CASES = 5



class CaseFeatures(Protocol):
    """One case's per-pixel features, computed slice by slice so a volume never sits whole in memory.

    Attributes:
        label_index: ``(D, H, W)`` class index of the annotation (0 background, ``i + 1`` class i).
    """

    label_index: np.ndarray

    def slice(self, d: int) -> np.ndarray:
        """``(F, H, W)`` float32 features of slice ``d``."""


FeatureLoader = Callable[[str], CaseFeatures]


@dataclass
class FoldAssignment:
    """Which fold each case belongs to (deterministic for a seed)."""

    folds: dict[str, int]
    count: int


def assign_folds(case_ids: list[str], count: int = 5, seed: int = 0) -> FoldAssignment:
    """Split cases into ``min(count, len(case_ids))`` folds of near-equal size by a seeded permutation."""
    if len(case_ids) < 2:
        raise ValueError(f"cross-validation needs at least 2 cases, got {len(case_ids)}")
    count = max(2, min(count, len(case_ids)))
    order = np.random.default_rng(seed).permutation(sorted(case_ids))
    return FoldAssignment({str(case_id): i % count for i, case_id in enumerate(order)}, count)


def sample_pixels(case: CaseFeatures, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A training sample of one case: half uniform over the case, half from its foreground.

    The foreground half is shared equally by the foreground classes present in the case (a class
    with fewer pixels than its share gives all of them), so a small structure (a tumour, a kidney)
    is learned as well as a large one rather than in proportion to its area.

    Args:
        case: the case's features and annotation.
        count: pixels to draw (fewer if the case is smaller).

    Returns:
        ``X (n, F)`` float32 and ``y (n,)`` int64.
    """
    labels = case.label_index
    plane = labels.shape[1] * labels.shape[2]
    flat_labels = labels.reshape(-1)
    classes = [k for k in np.unique(flat_labels) if k > 0]
    n_foreground = count // 2 if classes else 0
    parts = [rng.choice(flat_labels.size, size=min(flat_labels.size, count - n_foreground), replace=False)]
    for i, k in enumerate(classes):
        pool = np.flatnonzero(flat_labels == k)
        share = n_foreground // len(classes) + int(i < n_foreground % len(classes))
        parts.append(rng.choice(pool, size=min(len(pool), share), replace=False))
    chosen = np.unique(np.concatenate(parts))
    rows = []
    for d in np.unique(chosen // plane):
        in_slice = chosen[chosen // plane == d] % plane
        features = case.slice(int(d))
        rows.append(features.reshape(features.shape[0], -1)[:, in_slice].T)
    return np.concatenate(rows).astype(np.float32), flat_labels[chosen].astype(np.int64)


class PixelClassifier:
    """A small multilayer perceptron over standardised per-pixel features (torch, CPU).

    Two hidden layers of :data:`HIDDEN` units, trained with Adam on cross-entropy for a fixed
    number of steps: seconds on a CPU for a few hundred thousand pixels, deterministic for a seed.
    It runs on one CPU thread: the layers are too small for threads to help, and on a busy machine
    extra threads only wait for each other.

    Attributes:
        classes_: class indices seen in training (the columns of :meth:`predict_proba`).
    """

    HIDDEN = 32
    STEPS = 400
    BATCH = 1024

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.classes_ = np.zeros(0, np.int64)

    def fit(self, x: np.ndarray, y: np.ndarray) -> PixelClassifier:
        """Train on ``x (n, F)`` float32 features and ``y (n,)`` class indices."""
        with one_cpu_thread():
            return self._fit(x, y)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> PixelClassifier:
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.classes_ = np.unique(y)
        targets = torch.from_numpy(np.searchsorted(self.classes_, y))
        features = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        self.mean = features.mean(dim=0)
        self.scale = features.std(dim=0).clamp_min(1e-6)
        features = (features - self.mean) / self.scale
        self.network = torch.nn.Sequential(
            torch.nn.Linear(features.shape[1], self.HIDDEN), torch.nn.ReLU(),
            torch.nn.Linear(self.HIDDEN, self.HIDDEN), torch.nn.ReLU(),
            torch.nn.Linear(self.HIDDEN, len(self.classes_)))
        optimiser = torch.optim.Adam(self.network.parameters(), lr=3e-3, weight_decay=1e-4)
        batch_size = min(self.BATCH, len(targets))
        for step in range(self.STEPS):
            start = (step * batch_size) % len(targets)
            if start + batch_size > len(targets) or step == 0:  # a new pass: reshuffle once, then slice
                order = torch.randperm(len(targets), generator=generator)
                features, targets = features[order], targets[order]
                start = 0
            batch = slice(start, start + batch_size)
            loss = torch.nn.functional.cross_entropy(self.network(features[batch]), targets[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        self.network.eval()
        return self

    @torch.inference_mode()
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """``(n, len(classes_))`` float32 probabilities for ``x (n, F)``."""
        with one_cpu_thread():
            features = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) - self.mean) / self.scale
            return torch.softmax(self.network(features), dim=1).numpy()


def rare_class_indices(labels_per_case: list[np.ndarray], n_classes: int) -> np.ndarray:
    """Foreground class indices drawn in fewer than :data:`MIN_CLASS_CASES` cases and in fewer than
    half of them (so that a small dataset's classes are not all rare).

    Args:
        labels_per_case: each case's class indices (any shape; a pixel sample will do).
        n_classes: ``K`` = background + foreground classes.

    Returns:
        ``(r,)`` int64 class indices, ascending.
    """
    counts = np.zeros(n_classes, np.int64)
    for labels in labels_per_case:
        counts[np.unique(labels)] += 1
    total = len(labels_per_case)
    return np.array([k for k in range(1, n_classes) if 0 < counts[k] < MIN_CLASS_CASES and 2 * counts[k] < total],
                    np.int64)


def _new_classifier(seed: int) -> PixelClassifier:
    return PixelClassifier(seed)


def predict_probabilities(classifier, case: CaseFeatures, n_classes: int) -> np.ndarray:
    """``(K, D, H, W)`` float32 class probabilities of every pixel (0 for classes never seen in training)."""
    depth, height, width = case.label_index.shape
    probabilities = np.zeros((n_classes, depth, height * width), np.float32)
    columns = np.asarray(classifier.classes_, dtype=np.int64)
    for d in range(depth):
        features = case.slice(d)
        probabilities[columns, d] = classifier.predict_proba(features.reshape(features.shape[0], -1).T).T
    return probabilities.reshape(n_classes, depth, height, width)


@dataclass
class FoldsFitted:
    """Progress event: the fold classifiers are trained."""

    folds: int
    training_pixels: int


@dataclass
class CaseSampled:
    """Progress event: one case's training pixels were drawn (``index`` from 1)."""

    index: int
    total: int
    case_id: str


@dataclass
class CasePredicted:
    """One case's out-of-fold probabilities ``(K, D, H, W)`` float32 and the features it came from.

    ``seen``: ``(K,)`` bool, the classes its fold's classifier was trained on. A class the other
    folds never contain, or one drawn in too few cases of the dataset (:func:`rare_class_indices`),
    has probability 0 everywhere: it cannot be judged, and its pixels must not count as
    contradicted.
    """

    index: int
    total: int
    case_id: str
    probabilities: np.ndarray
    case: CaseFeatures
    seen: np.ndarray


def out_of_fold_probabilities(case_ids: list[str], load: FeatureLoader, n_classes: int, *, folds: int = 5,
                              pixels_per_case: int = PIXELS_PER_CASE, seed: int = 0
                              ) -> Iterator[CaseSampled | FoldsFitted | CasePredicted]:
    """Train one classifier per fold on the other folds' cases and predict the held-out cases.

    Args:
        case_ids: the cases (at least 2).
        load: feature loader (called twice per case: sampling, then prediction).
        n_classes: ``K`` = background + foreground classes.
        folds: number of folds (at most the number of cases).
        pixels_per_case: training pixels drawn per case (reduced so a fold has at most
            :data:`MAX_TRAINING_PIXELS`).
        seed: seeds the folds, the pixel sample and the classifiers.

    Yields:
        :class:`CaseSampled` per case, one :class:`FoldsFitted`, then :class:`CasePredicted` per case.
    """
    assignment = assign_folds(case_ids, folds, seed)
    per_case = max(50, min(pixels_per_case, MAX_TRAINING_PIXELS // max(1, len(case_ids))))
    rng = np.random.default_rng(seed)
    samples: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for index, case_id in enumerate(case_ids, start=1):
        samples[case_id] = sample_pixels(load(case_id), per_case, rng)
        yield CaseSampled(index, len(case_ids), case_id)
    rare = rare_class_indices([samples[c][1] for c in case_ids], n_classes)
    if rare.size:
        kept = {c: ~np.isin(y, rare) for c, (_x, y) in samples.items()}
        samples = {c: (x[kept[c]], y[kept[c]]) for c, (x, y) in samples.items()}
    classifiers = []
    for fold in range(assignment.count):
        train = [c for c in case_ids if assignment.folds[c] != fold]
        x = np.concatenate([samples[c][0] for c in train])
        y = np.concatenate([samples[c][1] for c in train])
        classifier = _new_classifier(seed + fold)
        if np.unique(y).size < 2:
            raise ValueError("the training cases of a fold contain a single class; label quality needs at "
                             "least background and one annotated class")
        classifiers.append(classifier.fit(x, y))
    yield FoldsFitted(assignment.count, sum(len(s[1]) for s in samples.values()))
    del samples
    for index, case_id in enumerate(case_ids, start=1):
        case = load(case_id)
        classifier = classifiers[assignment.folds[case_id]]
        seen = np.zeros(n_classes, bool)
        seen[np.asarray(classifier.classes_, dtype=np.int64)] = True
        seen[rare] = False
        probabilities = predict_probabilities(classifier, case, n_classes)
        yield CasePredicted(index, len(case_ids), case_id, probabilities, case, seen)
