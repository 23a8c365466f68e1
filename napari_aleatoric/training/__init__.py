"""Train task networks guided by the review's label issues, or with the paper's AUV filtering and DUO
(no Qt, no napari).

- :mod:`.settings`: :class:`TrainSettings`, validated and JSON-serialisable.
- :mod:`.duo`: the DUO loss, weights and label denoising (pure torch).
- :mod:`.networks`: MONAI UNet / SegResNet / SwinUNETR with a segmentation and a noise head.
- :mod:`.data`: split, exclusion, AUV filter, lazy loading, patches (with per-pixel loss weights).
- :mod:`.label_issues`: label-issue-guided training (out-of-fold pass on the training cases,
  case filtering, pixel weights; reviewed cases at full weight).
- :mod:`.loop`: :func:`train`, a generator of events, stoppable between steps, resumable.
- :mod:`.prediction`: :func:`predict` / :func:`load_trained_model` for label maps.
- :mod:`.runs`: the run folder's files, :func:`list_runs`.

See ``docs/training.md``.
"""

import importlib

# Imported on first use (PEP 562), so that e.g. the CLI's `score` command, which only needs the
# strategy names of `.settings`, does not import MONAI and the networks.
_EXPORTS = {
    ".duo": ("LossParts", "duo_loss", "duo_weights", "denoise_targets", "prediction_scales", "standardise_over_batch"),
    ".loop": ("EpochDone", "StepDone", "TrainingEvent", "TrainingFinished", "TrainingStarted", "TrainingStopped",
              "train"),
    ".prediction": ("TrainedModel", "load_trained_model", "predict"),
    ".runs": ("RunInfo", "list_runs", "models_dir"),
    ".label_issues": ("LabelIssuePlan", "PreparingLabelIssues", "describe", "plan_label_issues",
                      "preview_label_issues"),
    ".settings": ("NETWORKS", "STRATEGIES", "SettingSpec", "TrainSettings", "setting_specs", "strategy_of",
                  "with_strategy"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "NETWORKS", "TrainSettings", "LossParts", "duo_loss", "duo_weights", "denoise_targets", "prediction_scales",
    "standardise_over_batch", "train", "TrainingEvent", "TrainingStarted", "StepDone", "EpochDone",
    "TrainingStopped", "TrainingFinished", "predict", "load_trained_model", "TrainedModel", "list_runs",
    "RunInfo", "models_dir", "STRATEGIES", "with_strategy", "strategy_of", "LabelIssuePlan", "PreparingLabelIssues",
    "plan_label_issues", "preview_label_issues", "describe", "SettingSpec", "setting_specs",
]
