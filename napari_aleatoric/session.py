"""The review session: one open dataset and the review workflow on it, without Qt or napari.

A :class:`ReviewSession` owns what reviewing a dataset needs: the opened
:class:`~napari_aleatoric.data.dataset.Dataset`, its
:class:`~napari_aleatoric.review.store.ReviewStore`, the ranked
:class:`~napari_aleatoric.pipelines.table.ScoreTable` and the scoring settings the dataset was
scored with (:class:`ScoringSettings`, from ``scores.json``). Every scoring it starts reuses those
settings (input mode, SVD layout, energy, queue order); only the model and the device are chosen.
It applies the review rules: status changes (a decision is refused while the view has unsaved
edits), saving and reverting through :mod:`napari_aleatoric.review.saving` (the original is always
kept), reconcile-on-open, the re-score policy and what follows a correction (re-score now, after
the running pass, or not), which case comes next (after a decision, after a scoring pass), when
the maps a view shows are out of date, and the revision record with the queue's score
(``label_issue``) and the AUV before and after a correction.

The napari panels are views of one session per viewer (``gui/sessions.py``); a script uses the
same object::

    session = ReviewSession(model="tiny", device="cpu")
    session.open("Dataset001_MNIBrainSlices")
    for event in session.score():          # scoring pipeline events, applied as they come
        pass
    case_id = session.next_case()           # the most doubtful case
    session.save(case_id, corrected)        # revision recorded with label_issue / AUV before
    for event in session.rescore():         # fills in label_issue / AUV after
        pass

Threads: the work that reads or writes files without touching the session's state
(:meth:`scoring_events`, :meth:`refresh_events`, :meth:`write_correction`, :meth:`write_revert`,
:meth:`reconcile`) may run in a worker thread; the methods that change the session's state and
notify subscribers (:meth:`apply`, :meth:`correction_saved`, :meth:`set_status`,
:meth:`set_current`, :meth:`open`, :meth:`rerank`) belong to one thread (the GUI thread in napari). The
convenience methods (:meth:`score`, :meth:`save`, :meth:`revert`, ...) do both in the caller's
thread.

Subscribers are plain callables ``callback(event)`` (:meth:`subscribe`); the events are the
dataclasses below.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .data.dataset import Case, Dataset, open_dataset
from .data.errors import AleatoricError
from .data.scores_file import ScoreTable, read_scores, read_summary, summary_path
from .data.state_layout import scores_csv
from .models import registry
from .pipelines.priorities import PrioritiesRefreshed, refresh_priorities, rerank_scores
from .pipelines.scoring import CaseScored, ScoringFinished, score_dataset
from .pipelines.table import DEFAULT_RANK_BY
from .review import saving
from .review.store import STATUSES, ReviewStore, Revision

_log = logging.getLogger(__name__)

# ====================================================================== scoring settings


@dataclass
class ScoringSettings:
    """How a dataset was scored (the ``settings`` of its ``scores.json``).

    Attributes:
        model: the model's identity (``"litemedsam@<sha8>"``, ``"tiny@seed0"``), the key of the caches.
        input_mode: ``"raw"`` or ``"masknorm"`` (intensity statistics inside the annotation).
        model_spec: the specification the model was built from (``"litemedsam"``, ``"sam-vit-b:PATH"``).
        svd_mode: matrix layout of volumes for the SPS (``"D_HW"``, ``"H_DW"``, ``"W_DH"``).
        energy: ``"sigma2"`` or ``"sigma"``.
        rank_by: the column the queue's rank follows (a key of :data:`.pipelines.table.RANK_BY`).
    """

    model: str | None = None
    input_mode: str = "raw"
    model_spec: str | None = None
    svd_mode: str = "D_HW"
    energy: str = "sigma2"
    rank_by: str = DEFAULT_RANK_BY

    @classmethod
    def read(cls, summary_path: Path) -> "ScoringSettings | None":
        """Settings from a ``scores.json`` summary, or ``None`` if it is missing or unreadable."""
        try:
            settings = read_summary(summary_path)["settings"]
            return cls(model=settings.get("model"), input_mode=settings.get("input_mode", "raw"),
                       model_spec=settings.get("model_spec"), svd_mode=settings.get("svd_mode", "D_HW"),
                       energy=settings.get("energy", "sigma2"),
                       rank_by=settings.get("rank_by", DEFAULT_RANK_BY))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return None

    def options(self) -> dict:
        """The keyword arguments of :func:`~napari_aleatoric.pipelines.scoring.score_dataset` that
        reproduce this scoring (all but the model and the device)."""
        return {"input_mode": self.input_mode, "svd_mode": self.svd_mode, "energy": self.energy,
                "rank_by": self.rank_by}


# ====================================================================== events


@dataclass(frozen=True)
class DatasetOpened:
    """A dataset was opened (``table`` / ``settings`` are ``None`` when it has no readable scores)."""

    dataset: Dataset
    table: ScoreTable | None
    settings: ScoringSettings | None


@dataclass(frozen=True)
class CaseChanged:
    """The case under review changed (``case`` is ``None`` when none is shown)."""

    case: Case | None


@dataclass(frozen=True)
class StatusChanged:
    """A case's review status changed (one of :data:`~napari_aleatoric.review.store.STATUSES`)."""

    case_id: str
    status: str


@dataclass(frozen=True)
class RevisionRecorded:
    """A correction or a revert was written and recorded (``kind``: ``"saved"`` or ``"reverted"``)."""

    case_id: str
    revision: Revision
    kind: str


@dataclass(frozen=True)
class ScoresChanged:
    """The score table changed: ``reason`` ``"scored"`` (a scoring pass), ``"refreshed"``
    (Refresh priorities) or ``"reranked"`` (ranked by another column); ``completed``: the
    revisions whose scores after were recorded."""

    table: ScoreTable
    reason: str
    completed: tuple[Revision, ...] = ()


SessionEvent = DatasetOpened | CaseChanged | StatusChanged | RevisionRecorded | ScoresChanged


@dataclass(frozen=True)
class RescoreDecision:
    """Whether a correction can be re-scored now, and why not (:meth:`ReviewSession.rescore_decision`)."""

    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class RescorePlan:
    """What follows a saved correction or revert (:meth:`ReviewSession.rescore_after_correction`).

    Attributes:
        when: ``"now"`` (start a re-score), ``"after the running pass"`` (start one when the scoring
            running now ends; it did not cover the correction) or ``"no"``.
        reason: why there is no re-score, when the reviewer would expect one ("" otherwise).
    """

    when: str
    reason: str = ""


class DecisionRefused(AleatoricError):
    """A review decision the workflow does not take now; the message says what to do first."""


def _finite(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


# ====================================================================== the session


@dataclass
class _Pending:
    """Revisions saved through the session whose scores after are not known yet."""

    waiting: list[tuple[str, int]] = field(default_factory=list)  # (case_id, revision_id)
    covered: list[tuple[str, int]] = field(default_factory=list)  # those the running scoring pass covers


class ReviewSession:
    """One dataset under review and the workflow on it (see the module docs).

    Args:
        model: foundation-model specification for scoring and assisted correction (see
            :func:`napari_aleatoric.models.registry.load_model`); changeable through :attr:`model`.
        device: ``None`` (CUDA if available), ``"cpu"``, ``"cuda"``...
        user: recorded with statuses and revisions (default :func:`~napari_aleatoric.review.saving.default_user`).

    Attributes:
        dataset, store, table, settings: the open dataset, its review store (``None`` when it
            cannot be used: :attr:`store_error` says why), its score table and scoring settings
            (``None`` until scored; :attr:`scores_error` says why saved scores could not be read).
        current: the :class:`~napari_aleatoric.data.dataset.Case` under review, or ``None``.
        scheduler: address of a Dask scheduler (``"tcp://host:8786"``) to score on its cluster, or
            ``None`` (score in this process).
    """

    def __init__(self, model: str = registry.DEFAULT_MODEL, device: str | None = None, user: str | None = None):
        self.model = model
        self.device = device
        self.scheduler: str | None = None
        self.user = user or saving.default_user()
        self.dataset: Dataset | None = None
        self.store: ReviewStore | None = None
        self.table: ScoreTable | None = None
        self.settings: ScoringSettings | None = None
        self.current: Case | None = None
        self.store_error: AleatoricError | None = None
        self.scores_error: BaseException | None = None
        self._pending = _Pending()
        self._subscribers: list[Callable[[SessionEvent], None]] = []

    # ------------------------------------------------------------------ events

    def subscribe(self, callback: Callable[[SessionEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every session event; returns the function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _emit(self, event: SessionEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - one broken view must not stop the others
                _log.exception("napari-aleatoric: a review-session subscriber failed on %s", type(event).__name__)

    # ------------------------------------------------------------------ dataset

    def open(self, path: str | Path) -> Dataset:
        """Open a dataset folder: its review store and, if it was scored, its scores and settings.

        A store that cannot be used leaves the session read-only (:attr:`store_error`); saved scores
        that cannot be read leave it unscored (:attr:`scores_error`). Emits :class:`DatasetOpened`.

        Raises:
            AleatoricError, OSError: the dataset cannot be opened (the session is unchanged).
        """
        dataset = open_dataset(Path(path).expanduser())
        try:
            store, store_error = ReviewStore.for_dataset(dataset.root), None
        except AleatoricError as error:
            store, store_error = None, error
        self.close()
        self.dataset, self.store, self.store_error = dataset, store, store_error
        self.table, self.settings, self.scores_error = None, None, None
        csv_path = scores_csv(dataset.state_dir)
        if csv_path.is_file():
            try:
                self.table = read_scores(csv_path)
                self.settings = ScoringSettings.read(summary_path(csv_path))
            except (OSError, ValueError, KeyError, TypeError, AleatoricError) as error:
                self.table, self.scores_error = None, error
        self._emit(DatasetOpened(dataset, self.table, self.settings))
        return dataset

    def close(self) -> None:
        """Forget the open dataset and close its store (the files stay as they are)."""
        if self.store is not None:
            self.store.close()
        self.dataset, self.store, self.table, self.settings, self.current = None, None, None, None, None
        self._pending = _Pending()

    def _require_dataset(self) -> Dataset:
        if self.dataset is None:
            raise AleatoricError(None, "no dataset is open")
        return self.dataset

    def _require_store(self) -> ReviewStore:
        if self.store is None:
            raise AleatoricError(self.dataset.root if self.dataset else None,
                                 f"the review store cannot be used ({self.store_error}); reviewing is read-only")
        return self.store

    # ------------------------------------------------------------------ queue and cases

    def row(self, case_id: str) -> dict | None:
        """The case's score-table row (``rank``, ``label_issue``, ``auv``, per-class columns), if scored."""
        return self.table.row(case_id) if self.table is not None else None

    def statuses(self) -> dict[str, str]:
        """``{case_id: status}`` of the cases with a recorded status (others are unreviewed)."""
        return self.store.statuses() if self.store is not None else {}

    def status(self, case_id: str) -> str:
        """A case's review status (``"unreviewed"`` if never set or without a store)."""
        return self.store.status(case_id) if self.store is not None else "unreviewed"

    def queue(self) -> list[str]:
        """Every labelled case id: the scored ones by rank (most doubtful first), then the others."""
        dataset = self._require_dataset()
        known = [ref.case_id for ref in dataset.cases]
        rows = sorted(self.table.rows, key=lambda r: r["rank"]) if self.table is not None else []
        ranked = [row["case_id"] for row in rows if row["case_id"] in set(known)]
        return ranked + [c for c in known if c not in set(ranked)]

    def next_case(self, after: str | None = None, *, step: int = 1, unreviewed_only: bool = False,
                  order: Sequence[str] | None = None) -> str | None:
        """The case ``step`` places after ``after`` in the queue (``after=None``: the current case,
        or the top of the queue when none is shown); ``None`` at the end.

        Args:
            unreviewed_only: skip the cases with a review status (``after`` itself still counts as
                the position to move from).
            order: the queue as a view shows it (sorted, filtered); default :meth:`queue`.
        """
        queue = list(order) if order is not None else self.queue()
        if unreviewed_only:
            statuses = self.statuses()
            queue = [c for c in queue if statuses.get(c, "unreviewed") == "unreviewed" or c == after]
        after = after if after is not None else (self.current.case_id if self.current is not None else None)
        if after is None or after not in queue:
            return queue[0] if queue and step > 0 else None
        index = queue.index(after) + step
        return queue[index] if 0 <= index < len(queue) else None

    def next_to_review(self, after: str | None = None, order: Sequence[str] | None = None) -> str | None:
        """The case to review after a decision on ``after``: the next *unreviewed* case below it in
        the queue (``order``: as a view shows it). A reviewer works down the queue, so the cases
        already accepted, corrected or excluded are skipped; ``None``: no unreviewed case follows
        (the reviewer stays; cases above are not revisited without being asked for)."""
        return self.next_case(after, unreviewed_only=True, order=order)

    def reconcile(self, case_id: str) -> Revision | None:
        """Apply the recovery rule to a case before it is shown (see
        :func:`~napari_aleatoric.review.saving.reconcile_case`): a label file changed without a
        recorded revision is recorded, never rewritten. Safe in a worker thread; no event."""
        dataset = self._require_dataset()
        ref = dataset.case(case_id)
        if self.store is None or ref.label_path is None:
            return None
        return saving.reconcile_case(dataset.root, case_id, ref.label_path, self.store, self.user)

    def load_case(self, case_id: str) -> Case:
        """Reconcile a case (best effort: the store is only history) and read it from disk."""
        from .data.dataset import load_case  # noqa: PLC0415

        dataset = self._require_dataset()
        try:
            self.reconcile(case_id)
        except (AleatoricError, OSError, ValueError) as error:
            _log.warning("napari-aleatoric: could not reconcile %s: %s", case_id, error)
        return load_case(dataset, dataset.case(case_id))

    def set_current(self, case: Case | None) -> None:
        """Make ``case`` the case under review (what the panels show); emits :class:`CaseChanged`."""
        self.current = case
        self._emit(CaseChanged(case))

    # ------------------------------------------------------------------ status

    def set_status(self, case_id: str, status: str) -> None:
        """Record a case's review status (one of :data:`~napari_aleatoric.review.store.STATUSES`,
        ``"unreviewed"`` resets it); emits :class:`StatusChanged`.

        Raises:
            AleatoricError: no usable store; ValueError: unknown status.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown review status {status!r}; expected one of {STATUSES}")
        self._require_store().set_status(case_id, status, self.user)
        self._emit(StatusChanged(case_id, status))

    def unreviewed(self, order: Sequence[str] | None = None) -> list[str]:
        """The cases of ``order`` (default :meth:`queue`) without a review status, in that order."""
        statuses = self.statuses()
        return [c for c in (list(order) if order is not None else self.queue())
                if statuses.get(c, "unreviewed") == "unreviewed"]

    def decide(self, case_id: str, status: str, order: Sequence[str] | None = None, *,
               unsaved_edits: bool = False) -> str | None:
        """Record a review decision and return the case to review next.

        ``"accepted"`` and ``"excluded"`` are decisions: the answer is :meth:`next_to_review` after
        ``case_id`` (``None`` at the end of the unreviewed cases). ``"unreviewed"`` takes a decision
        back (the reviewer means to look at the case again): the answer is ``case_id`` itself, the
        reset is recorded in the store (who and when) like any status. ``order``: the queue as a
        view shows it, taken before the status changes (a status filter may hide the case after).

        ``unsaved_edits``: the view's annotation of the case differs from its label file. A decision
        is about the annotation on disk, so accepting or excluding is refused until the edits are
        saved or undone; taking a decision back is not.

        Raises:
            DecisionRefused: unsaved edits (nothing recorded). AleatoricError: no usable store;
            ValueError: unknown status.
        """
        if unsaved_edits and status != "unreviewed":
            raise DecisionRefused(None, f"Case {case_id} has unsaved edits: save them (or undo) first")
        self.set_status(case_id, status)
        if status == "unreviewed":
            return case_id
        return self.next_to_review(case_id, order)

    def accept(self, case_id: str) -> None:
        """Mark a case accepted: its annotation is right as it is."""
        self.set_status(case_id, "accepted")

    def exclude(self, case_id: str) -> None:
        """Mark a case excluded: left out of training."""
        self.set_status(case_id, "excluded")

    def reset_status(self, case_id: str) -> None:
        """Take a decision back: the case is unreviewed again (recorded with who and when)."""
        self.set_status(case_id, "unreviewed")

    # ------------------------------------------------------------------ saving and reverting

    def _scores_before(self, case_id: str) -> dict:
        row = self.row(case_id) or {}
        return {"auv_before": _finite(row.get("auv")), "issue_before": _finite(row.get("label_issue"))}

    def model_name(self) -> str:
        """The model recorded with a revision: the one that scored the dataset, else the chosen one."""
        return self.settings.model if self.settings is not None and self.settings.model else self.model

    def write_correction(self, case_id: str, labels: np.ndarray, geometry=None) -> Revision:
        """Write corrected labels over the case's label file (original kept, revision recorded with
        the case's ``label_issue`` and AUV before). Safe in a worker thread; no event — pass the
        result to :meth:`correction_saved`.

        Args:
            labels: integer array in napari axis order, ``(H, W)`` or ``(D, H, W)``, the case's shape.
            geometry: the label file's :class:`~napari_aleatoric.data.geometry.Geometry` (read from
                the file when omitted).

        Raises:
            AleatoricError: no store, undeclared label values (nothing written), write failures.
        """
        dataset, store = self._require_dataset(), self._require_store()
        ref = dataset.case(case_id)
        if ref.label_path is None:
            raise AleatoricError(None, f"case {case_id} has no label file to correct")
        if geometry is None:
            from .data.medio import read_label  # noqa: PLC0415

            geometry = read_label(ref.label_path)[1]
        return saving.save_correction(dataset.root, case_id, ref.label_path, labels, geometry, user=self.user,
                                      model=self.model_name(), store=store, **self._scores_before(case_id))

    def write_revert(self, case_id: str, to) -> Revision:
        """Restore the case's label file to ``"original"`` or a revision id (recorded as a revision).
        Safe in a worker thread; no event — pass the result to :meth:`correction_saved`."""
        dataset, store = self._require_dataset(), self._require_store()
        ref = dataset.case(case_id)
        if ref.label_path is None:
            raise AleatoricError(None, f"case {case_id} has no annotation to revert")
        return saving.revert(dataset.root, case_id, ref.label_path, to, store, self.user,
                             model=self.model_name(), **self._scores_before(case_id))

    def correction_saved(self, revision: Revision, kind: str = "saved") -> None:
        """Take a written revision into the session: it waits for the next scoring pass to record
        its scores after; emits :class:`RevisionRecorded` and :class:`StatusChanged`."""
        self._pending.waiting.append((revision.case_id, revision.id))
        self._emit(RevisionRecorded(revision.case_id, revision, kind))
        self._emit(StatusChanged(revision.case_id, self.status(revision.case_id)))

    def save(self, case_id: str, labels: np.ndarray, geometry=None) -> Revision:
        """Save a correction (see :meth:`write_correction`) and take it into the session."""
        revision = self.write_correction(case_id, labels, geometry)
        self.correction_saved(revision, "saved")
        return revision

    def revert(self, case_id: str, to="original") -> Revision:
        """Revert a case (see :meth:`write_revert`) and take the revision into the session."""
        revision = self.write_revert(case_id, to)
        self.correction_saved(revision, "reverted")
        return revision

    def pending_revisions(self) -> list[int]:
        """Ids of the revisions saved through the session whose scores after are not known yet."""
        return [revision_id for _, revision_id in self._pending.waiting]

    # ------------------------------------------------------------------ scoring

    def rescore_decision(self, model: str | None = None) -> RescoreDecision:
        """The re-score policy: a correction is re-scored with the model that scored the dataset
        (same identity) and that scoring's settings; otherwise it is not, and ``reason`` says why."""
        spec = (model or self.model or "").strip()
        if self.dataset is None:
            return RescoreDecision(False, "no dataset is open")
        if self.settings is None or not self.settings.model:
            return RescoreDecision(False, "the dataset has not been scored yet")
        try:
            same = registry.model_identity(spec) == self.settings.model
        except AleatoricError:
            same = False
        if not same:
            return RescoreDecision(False, f"the dataset was scored with {self.settings.model}, the model chosen is "
                                          f"{spec}. Score again to re-score everything with it")
        return RescoreDecision(True)

    def rescore_after_correction(self, wanted: bool = True, model: str | None = None,
                                 scoring_running: bool = False) -> RescorePlan:
        """What follows a saved correction or revert: re-score it (``wanted``: the reviewer asked
        for it) under the re-score policy (:meth:`rescore_decision`), now or, when a scoring pass is
        running (``scoring_running``; it did not cover the correction), after that pass. Not
        re-scored: ``reason`` says why only when the dataset was scored (with another model); an
        unscored dataset has nothing to re-score."""
        if not wanted:
            return RescorePlan("no")
        decision = self.rescore_decision(model)
        if not decision.ok:
            scored = self.settings is not None and bool(self.settings.model)
            return RescorePlan("no", decision.reason if scored else "")
        return RescorePlan("after the running pass" if scoring_running else "now")

    def maps_outdated(self, event, case_id: str, *, has_maps: bool, outdated: bool, label_issue_maps: bool) -> bool:
        """Whether ``event`` leaves the maps a view shows for ``case_id`` out of date.

        Args:
            has_maps: the view shows maps of the case (``False``: none were cached).
            outdated: the maps shown are marked out of date (computed for another annotation).
            label_issue_maps: the maps shown are the learnt label-issue maps, not the model's
                uncertainty.

        The rules: a correction saved (:class:`RevisionRecorded` ``"saved"``) outdates the maps
        shown until it is re-scored (a revert is shown by reading the case again, whose maps are
        checked against the restored file); a case scored during a pass (:class:`CaseScored`) has
        new maps if it had none or out-of-date ones; when a pass ends (:class:`ScoresChanged`
        ``"scored"``) the maps are new if they were missing, out of date, re-scored after a
        correction or only the model's uncertainty (label quality ran since); Refresh priorities
        (``"refreshed"``) re-learns the label-issue maps of every case. Other events change no maps.
        """
        if isinstance(event, RevisionRecorded):
            return event.case_id == case_id and event.kind == "saved" and has_maps
        if isinstance(event, CaseScored):
            return event.result.case_id == case_id and (not has_maps or outdated)
        if isinstance(event, ScoresChanged) and event.reason == "scored":
            rescored = {revision.case_id for revision in event.completed}
            return not has_maps or outdated or case_id in rescored or not label_issue_maps
        return isinstance(event, ScoresChanged) and event.reason == "refreshed"

    def case_after_scoring(self, order: Sequence[str], shown: str | None, *, chosen: bool,
                           unsaved_edits: bool, after_correction: bool = False) -> str | None:
        """The case to show when a scoring pass ends: the top of the queue as the view shows it
        (``order``; the most doubtful case) when the reviewer had not chosen a case (``chosen``:
        the case shown was picked by the reviewer, not shown on opening), has no unsaved edits and
        another case is ``shown``. A re-score after a correction (``after_correction``) never moves
        the reviewer. ``None``: stay on the case shown."""
        top = order[0] if len(order) else None
        if chosen or unsaved_edits or after_correction or top is None or top == shown:
            return None
        return top

    def scoring_events(self, model: str | None = None, device: str | None = None,
                       case_ids: list[str] | None = None) -> Iterator:
        """The scoring pipeline's events for the open dataset, with the stored scoring settings.

        Called in the session's thread (it notes which saved revisions this pass covers); the
        returned generator may run in a worker and changes no session state: hand its events to
        :meth:`apply`. ``model`` / ``device`` default to :attr:`model` / :attr:`device`. With a
        :attr:`scheduler` the cases run on that Dask cluster (the generator connects when it starts).

        Raises:
            AleatoricError: no dataset is open, or a scheduler is set and Dask is not installed.
        """
        dataset = self._require_dataset()
        spec = (model or self.model or registry.DEFAULT_MODEL).strip()
        options = dict(self.settings.options() if self.settings is not None else {}, case_ids=case_ids,
                       device=device if device is not None else self.device)
        if self.scheduler:
            try:
                from .pipelines import distributed  # noqa: PLC0415 (Dask only when a scheduler is named)
            except ImportError as error:
                raise AleatoricError(None, f"scoring on a Dask scheduler needs Dask's 'distributed' package "
                                           f"({error}); pip install 'napari-aleatoric[distributed]'") from error
            self._pending.covered = list(self._pending.waiting)
            return distributed.scoring_on_scheduler(self.scheduler, dataset, spec, **options)
        self._pending.covered = list(self._pending.waiting)
        return score_dataset(dataset, spec, **options)

    def refresh_events(self, model: str | None = None, device: str | None = None) -> Iterator:
        """Refresh priorities' events (label quality re-learnt from the current annotations, no
        decoder run); like :meth:`scoring_events`, hand them to :meth:`apply`."""
        dataset = self._require_dataset()
        spec = (model or self.model or "").strip() or None
        return refresh_priorities(dataset, spec, device=device if device is not None else self.device)

    def apply(self, event) -> ScoresChanged | None:
        """Take a scoring or refresh event into the session. :class:`ScoringFinished`: the new
        table and settings, and the scores after of the revisions the pass covered;
        :class:`PrioritiesRefreshed`: the re-ranked table. Both emit and return
        :class:`ScoresChanged`; other events change nothing and return ``None``."""
        if isinstance(event, ScoringFinished):
            self.table = event.table
            self.settings = ScoringSettings.read(event.summary_path) or self.settings
            changed = ScoresChanged(event.table, "scored", self._complete(event.table))
        elif isinstance(event, PrioritiesRefreshed):
            self.table = event.table
            changed = ScoresChanged(event.table, "refreshed")
        else:
            return None
        self._emit(changed)
        return changed

    def _complete(self, table: ScoreTable) -> tuple[Revision, ...]:
        """Record the label issue and AUV after of the revisions this pass covered."""
        covered, self._pending.covered = self._pending.covered, []
        done: list[Revision] = []
        for case_id, revision_id in covered:
            if (case_id, revision_id) in self._pending.waiting:
                self._pending.waiting.remove((case_id, revision_id))
            row = table.row(case_id)
            if row is None or self.store is None:
                continue
            try:
                self.store.set_scores_after(revision_id, auv=_finite(row.get("auv")),
                                            label_issue=_finite(row.get("label_issue")))
                done.append(self.store.revision(revision_id))
            except (AleatoricError, KeyError) as error:
                _log.warning("napari-aleatoric: cannot record the scores after revision %s: %s", revision_id, error)
        return tuple(done)

    def score(self, model: str | None = None, device: str | None = None,
              case_ids: list[str] | None = None) -> Iterator:
        """Score the open dataset with the stored settings, applying the events as they come
        (a generator of the pipeline's events; see :meth:`scoring_events`)."""
        for event in self.scoring_events(model, device, case_ids):
            self.apply(event)
            yield event

    def rescore(self, model: str | None = None, device: str | None = None) -> Iterator:
        """Re-score after corrections under the re-score policy (:meth:`rescore_decision`): the
        saved revisions get their scores after. Raises ``AleatoricError`` when the policy says no."""
        decision = self.rescore_decision(model)
        if not decision.ok:
            raise AleatoricError(self.dataset.root if self.dataset else None, f"not re-scored: {decision.reason}")
        yield from self.score(model, device)

    def rerank(self, rank_by: str) -> ScoreTable:
        """Rank the queue by another column (a key of :data:`.pipelines.table.RANK_BY`) without
        the model; the choice is stored with the scores and kept by re-scores. Emits
        :class:`ScoresChanged` (``"reranked"``).

        Raises:
            DatasetError: no scores to rank. ValueError: an unknown ``rank_by``.
        """
        dataset = self._require_dataset()
        self.table = rerank_scores(dataset, rank_by)
        if self.settings is not None:
            self.settings = replace(self.settings, rank_by=rank_by)
        self._emit(ScoresChanged(self.table, "reranked"))
        return self.table

    def refresh(self, model: str | None = None, device: str | None = None) -> Iterator:
        """Refresh priorities, applying the events (see :meth:`refresh_events`)."""
        for event in self.refresh_events(model, device):
            self.apply(event)
            yield event
