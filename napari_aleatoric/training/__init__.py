"""Train task networks guided by the review's label issues, or with the paper's AUV filtering and DUO
(no Qt, no napari).

- :mod:`.settings`: :class:`TrainSettings`, validated and JSON-serialisable.
- :mod:`.duo`: the DUO loss, weights and label denoising (pure torch).
- :mod:`.networks`: MONAI UNet / SegResNet / SwinUNETR with a segmentation and a noise head.
- :mod:`.data`: split, exclusion, AUV filter, lazy loading, patches (with per-pixel loss weights).
- :mod:`.label_issues`: label-issue-guided training (out-of-fold pass on the training cases,
  case filtering, pixel weights; reviewed cases at full weight).
- :mod:`.loop`: :func:`train`, a generator of events, stoppable between steps, resumable.
- :mod:`.predict`: :func:`predict` / :func:`load_trained_model` for label maps.
- :mod:`.runs`: the run folder's files, :func:`list_runs`.

See ``docs/training.md``.
"""

from .duo import LossParts, duo_loss, duo_weights, denoise_targets, prediction_scales, standardise_over_batch
from .loop import EpochDone, StepDone, TrainingEvent, TrainingFinished, TrainingStarted, TrainingStopped, train
from .predict import TrainedModel, load_trained_model, predict
from .runs import RunInfo, list_runs, models_dir
from .label_issues import LabelIssuePlan, PreparingLabelIssues, describe, plan_label_issues, preview_label_issues
from .settings import NETWORKS, STRATEGIES, TrainSettings, strategy_of, with_strategy

__all__ = [
    "NETWORKS", "TrainSettings", "LossParts", "duo_loss", "duo_weights", "denoise_targets", "prediction_scales",
    "standardise_over_batch", "train", "TrainingEvent", "TrainingStarted", "StepDone", "EpochDone",
    "TrainingStopped", "TrainingFinished", "predict", "load_trained_model", "TrainedModel", "list_runs",
    "RunInfo", "models_dir", "STRATEGIES", "with_strategy", "strategy_of", "LabelIssuePlan", "PreparingLabelIssues",
    "plan_label_issues", "preview_label_issues", "describe",
]
