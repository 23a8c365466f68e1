"""Training settings: one validated, JSON-serialisable record of everything a run depends on.

The same record is written to ``<run>/settings.json``, compared on ``--resume`` and read back by
:func:`napari_aleatoric.training.prediction.load_trained_model`.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

NETWORKS = ("unet", "segresnet", "swinunetr")
NOISE_TRAINING = ("target", "disagreement", "none")
EPSILONS = ("gaussian", "noise-map")
SVD_MODES = ("D_HW", "H_DW", "W_DH")
ENERGIES = ("sigma2", "sigma")
#: how the out-of-fold label-issue maps guide the loss (see :mod:`napari_aleatoric.training.label_issues`):
#: ``"relabel"`` (contradicted pixels learn the label-quality model's classes where it is sure, and
#: weigh less where it is not), ``"weight"`` (contradicted pixels weigh less), ``"auto"`` (the
#: measured best when the dataset has been scored, ``"relabel"``; else plain training that says
#: so), ``"off"``
LABEL_ISSUE_MODES = ("auto", "relabel", "weight", "off")

#: settings that may differ when a run is resumed (everything else must match the stored run)
RESUMABLE_CHANGES = frozenset({"epochs", "device", "name"})

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _setting(default, help: str, *, label: str | None = None, choices: tuple | None = None,  # noqa: A002
             auto: str | None = None, suggestions: tuple | None = None, minimum=None, maximum=None,
             step=None, decimals: int | None = None):
    """A :class:`TrainSettings` field and what the CLI and the retraining panel's form make of it.

    ``help``: one line for ``--help`` and the form's tooltip; ``label``: the form's label (default
    the name); ``choices``: the allowed values; ``auto``: what ``None`` means (optional fields);
    ``suggestions``: values the form offers besides ``auto`` (the CLI takes any text);
    ``minimum``/``maximum``/``step``/``decimals``: the form's number range (the core validates).
    """
    return field(default=default, metadata={
        "help": help, "label": label, "choices": choices, "auto": auto, "suggestions": suggestions,
        "minimum": minimum, "maximum": maximum, "step": step, "decimals": decimals})


@dataclass(frozen=True)
class TrainSettings:
    """Everything a training run depends on.

    Attributes:
        network: ``"unet"`` (MONAI UNet, default), ``"segresnet"`` or ``"swinunetr"`` (needs einops).
        epochs: passes over the training cases (one random patch per case and pass).
        batch_size: patches per step; ``None`` = 4 for 2D, 2 for 3D.
        patch: patch size per spatial axis (napari order); ``None`` = chosen from the dataset's
            case shapes (see :func:`napari_aleatoric.training.data.default_patch`).
        width: channels of the network's first level (UNet channels ``width·2^k``; SegResNet
            ``init_filters``; SwinUNETR ``feature_size``, rounded up to a multiple of 12).
        depth: resolution levels of UNet / SegResNet (patches must divide by ``2^(depth-1)``).
        lr: Adam learning rate at epoch 0 (poly decay ``(1 − epoch/epochs)^0.9``).
        seed: seeds initialisation, patch sampling and augmentation (reproducible on CPU).
        val_fraction: share of the cases held out for validation (split by case, stable hash).
        augment: light augmentation (random patch placement, intensity scale/shift).
        keep: AUV quantile p̃ of the paper's filter; ``1.0`` (default) switches it off (needs
            ``scores.csv`` otherwise).
        classwise: filter with per-class quantiles (a case must pass every class it contains).
        issue_keep: keep the training cases whose contradicted share (the share of their drawn
            pixels the out-of-fold label-quality model, learned on the training cases only,
            contradicts) is at or below this quantile; cases a reviewer accepted or corrected are
            always kept. ``1.0`` (default) switches it off.
        label_issues: how the out-of-fold label-issue maps guide training (see
            :mod:`napari_aleatoric.training.label_issues`): ``"relabel"`` or ``"weight"`` the
            contradicted pixels (both need the dataset's scores), ``"auto"`` (default: the
            benchmark's best over 2D and 3D when the dataset has been scored, ``"relabel"``; plain
            training otherwise) or ``"off"``.
        duo: DUO loss; ``False`` = plain ``β·Dice + (1−β)·BCE`` summed over foreground classes.
        denoise: DUO label denoising ``ỹ = y − ε̂·f_θ2(x)`` (``alpha = 0`` switches the weights off).
        alpha: DUO weight ``1 / (1 + α·S)``; 0.5 in the authors' snippet.
        beta: ``L_seg = β·Dice + (1 − β)·BCE``.
        noise_training: how the noise head θ2 learns (see ``docs/training.md``): ``"target"``
            (default, the paper's loss as written: the gradient flows through ỹ into θ2 and the
            shared network), ``"disagreement"`` (its own loss, target ``|y − p|`` of the detached
            prediction, on detached features; ỹ carries no gradient) or ``"none"`` (the published
            snippet: ỹ detached, θ2 never trained).
        noise_weight: weight of the noise head's own loss (``"disagreement"`` only).
        epsilon: what ε̂ in ``ỹ = y − ε̂·f_θ2(x)`` is: ``"gaussian"`` (default, a standard normal
            sample per pixel normalised over the batch; f_θ2 is its amplitude) or ``"noise-map"``
            (f_θ2 itself normalised over the batch; measured to rewrite most labels).
        svd_mode: matrix layout of 3D class maps for the SPS (``"D_HW"`` default).
        energy: singular-value energy for the SPS (``"sigma2"`` default).
        device: ``None``/``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        name: run name (folder under ``<dataset>/.aleatoric/models/``); ``None`` = generated.
    """

    network: str = _setting("unet", "task network (swinunetr needs einops)", choices=NETWORKS)
    epochs: int = _setting(100, "passes over the training cases", minimum=0, maximum=100_000)
    batch_size: int | None = _setting(None, "patches per step", auto="4 for 2D, 2 for 3D", label="batch size")
    patch: tuple[int, ...] | None = _setting(None, "patch size, e.g. 32,64,64 or 240x208", auto="from the case sizes")
    width: int = _setting(16, "channels of the first network level", minimum=1, maximum=512)
    depth: int = _setting(4, "resolution levels (UNet / SegResNet)", minimum=1, maximum=8)
    lr: float = _setting(1e-3, "Adam learning rate (poly decay)", label="learning rate", minimum=0.0, maximum=1.0,
                         step=1e-4, decimals=5)
    seed: int = _setting(0, "random seed (initialisation, patches, augmentation)", minimum=0, maximum=2**31 - 1)
    val_fraction: float = _setting(0.2, "share of the cases held out for validation", label="validation share",
                                   minimum=0.0, maximum=1.0, step=0.05)
    augment: bool = _setting(True, "light augmentation (patch placement, intensity scale/shift)")
    keep: float = _setting(1.0, "the paper's AUV filtering: keep training cases with AUV at or below this quantile "
                                "(1 = no filtering; needs the dataset's scores otherwise)",
                           label="AUV keep quantile", minimum=0.0, maximum=1.0, step=0.05)
    classwise: bool = _setting(False, "filter with per-class AUV quantiles", label="class-wise AUV filter")
    issue_keep: float = _setting(1.0, "keep training cases with label issue at or below this quantile "
                                      "(1 = no filtering; reviewed cases are always kept)",
                                 label="label-issue keep", minimum=0.0, maximum=1.0, step=0.05)
    label_issues: str = _setting("auto", "what pixels the label-quality model contradicts do: relabel (learn its "
                                         "classes where it is sure, else weigh less), weight (weigh less), off; "
                                         "auto: the measured best when the dataset is scored",
                                 choices=LABEL_ISSUE_MODES)
    duo: bool = _setting(False, "the paper's DUO loss (off: beta*Dice + (1-beta)*BCE)", label="DUO loss")
    denoise: bool = _setting(True, "DUO label denoising with the noise head", label="label denoising")
    alpha: float = _setting(0.5, "DUO weight 1/(1 + alpha*S) (0 = no weights)", label="α (DUO weight)",
                            minimum=0.0, maximum=100.0, step=0.1)
    beta: float = _setting(0.5, "Dice share of the loss: beta*Dice + (1-beta)*BCE", label="β (Dice share)",
                           minimum=0.0, maximum=1.0, step=0.05)
    noise_training: str = _setting("target", "how the DUO noise head learns (docs/training.md)",
                                   choices=NOISE_TRAINING)
    noise_weight: float = _setting(1.0, "weight of the noise head's own loss (disagreement only)",
                                   minimum=0.0, maximum=100.0, step=0.1)
    epsilon: str = _setting("gaussian", "DUO label noise (docs/training.md)", choices=EPSILONS)
    svd_mode: str = _setting("D_HW", "matrix layout of 3D class maps for the SPS", label="SVD mode",
                             choices=SVD_MODES)
    energy: str = _setting("sigma2", "singular-value energy for the SPS", choices=ENERGIES)
    device: str | None = _setting(None, "cpu, cuda, cuda:N", auto="CUDA if available, else CPU",
                                  suggestions=("cpu", "cuda"))
    name: str | None = _setting(None, "run name (folder under .aleatoric/models/)",
                                auto="<network>-<UTC time>-<random>", label="run name")

    # ------------------------------------------------------------------ validation

    def validated(self) -> "TrainSettings":
        """Return ``self`` with types normalised; raise :class:`ValueError` naming the bad setting."""
        problems = list(self._problems())
        if problems:
            raise ValueError("invalid training settings: " + "; ".join(problems))
        return replace(self, patch=tuple(int(p) for p in self.patch) if self.patch is not None else None)

    def _problems(self):  # noqa: C901 - a flat list of checks reads best
        if self.network not in NETWORKS:
            yield f"unknown network {self.network!r} (choose one of {', '.join(NETWORKS)})"
        if not _is_int(self.epochs) or self.epochs < 1:
            yield f"epochs must be an integer ≥ 1, got {self.epochs!r}"
        if self.batch_size is not None and (not _is_int(self.batch_size) or self.batch_size < 1):
            yield f"batch size must be an integer ≥ 1, got {self.batch_size!r}"
        if self.patch is not None:
            patch = tuple(self.patch) if isinstance(self.patch, (tuple, list)) else None
            if not patch or len(patch) not in (2, 3) or not all(_is_int(p) and p >= 8 for p in patch):
                yield f"patch must be 2 or 3 integers ≥ 8, got {self.patch!r}"
        if not _is_int(self.width) or self.width < 1:
            yield f"width must be an integer ≥ 1, got {self.width!r}"
        if not _is_int(self.depth) or not 2 <= self.depth <= 6:
            yield f"depth must be an integer from 2 to 6, got {self.depth!r}"
        if not _is_real(self.lr) or self.lr <= 0:
            yield f"learning rate must be > 0, got {self.lr!r}"
        if not _is_int(self.seed) or self.seed < 0:
            yield f"seed must be an integer ≥ 0, got {self.seed!r}"
        if not _is_real(self.val_fraction) or not 0.0 < self.val_fraction < 1.0:
            yield f"validation fraction must be in (0, 1), got {self.val_fraction!r}"
        if not _is_real(self.keep) or not 0.0 < self.keep <= 1.0:
            yield f"keep must be a quantile in (0, 1] (1 = no filtering), got {self.keep!r}"
        if not _is_real(self.issue_keep) or not 0.0 < self.issue_keep <= 1.0:
            yield f"issue keep must be a quantile in (0, 1] (1 = no filtering), got {self.issue_keep!r}"
        if self.label_issues not in LABEL_ISSUE_MODES:
            yield f"label issues must be one of {', '.join(LABEL_ISSUE_MODES)}, got {self.label_issues!r}"
        if not _is_real(self.alpha) or self.alpha < 0:
            yield f"alpha must be ≥ 0, got {self.alpha!r}"
        if not _is_real(self.beta) or not 0.0 <= self.beta <= 1.0:
            yield f"beta must be in [0, 1], got {self.beta!r}"
        if self.noise_training not in NOISE_TRAINING:
            yield f"noise training must be one of {', '.join(NOISE_TRAINING)}, got {self.noise_training!r}"
        if self.epsilon not in EPSILONS:
            yield f"epsilon must be one of {', '.join(EPSILONS)}, got {self.epsilon!r}"
        if not _is_real(self.noise_weight) or self.noise_weight < 0:
            yield f"noise weight must be ≥ 0, got {self.noise_weight!r}"
        if self.svd_mode not in SVD_MODES:
            yield f"svd mode must be one of {', '.join(SVD_MODES)}, got {self.svd_mode!r}"
        if self.energy not in ENERGIES:
            yield f"energy must be one of {', '.join(ENERGIES)}, got {self.energy!r}"
        if self.name is not None and not (isinstance(self.name, str) and _NAME_RE.match(self.name)):
            yield (f"run name {self.name!r} must be 1-100 letters, digits, '.', '_' or '-' "
                   "and start with a letter or digit")
        for flag in ("augment", "classwise", "duo", "denoise"):
            if not isinstance(getattr(self, flag), bool):
                yield f"{flag} must be true or false, got {getattr(self, flag)!r}"

    # ------------------------------------------------------------------ derived values

    @property
    def filtering(self) -> bool:
        """Whether AUV filtering is on (``keep < 1``)."""
        return self.keep < 1.0

    @property
    def issue_filtering(self) -> bool:
        """Whether label-issue filtering is on (``issue_keep < 1``)."""
        return self.issue_keep < 1.0

    @property
    def needs_label_issues(self) -> bool:
        """Whether the run must have the label-issue pass (explicit weighting or filtering)."""
        return self.issue_filtering or self.label_issues in ("relabel", "weight")

    @property
    def uses_label_issues(self) -> bool:
        """Whether the run wants the label-issue pass at all (``"auto"`` included)."""
        return self.issue_filtering or self.label_issues != "off"

    @property
    def weighting(self) -> bool:
        """Whether the DUO weights are applied (DUO on and ``alpha > 0``)."""
        return self.duo and self.alpha > 0

    @property
    def denoising(self) -> bool:
        """Whether the DUO label denoising is applied."""
        return self.duo and self.denoise

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``patch`` as a list)."""
        data = asdict(self)
        data["patch"] = list(self.patch) if self.patch is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainSettings":
        """Inverse of :meth:`to_dict`; unknown keys are refused (a newer version wrote them)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training settings {', '.join(unknown)} (written by a newer version?)")
        values = dict(data)
        if values.get("patch") is not None:
            values["patch"] = tuple(values["patch"])
        return cls(**values)

    def differences(self, other: "TrainSettings", ignore=RESUMABLE_CHANGES) -> list[str]:
        """``"name: mine vs theirs"`` for every setting that differs, except ``ignore``."""
        out = []
        for f in fields(self):
            if f.name in ignore:
                continue
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine != theirs:
                out.append(f"{f.name}: {theirs!r} in the stored run vs {mine!r} now")
        return out


# ---------------------------------------------------------------------- one description for the CLI and the form

@dataclass(frozen=True)
class SettingSpec:
    """How one :class:`TrainSettings` field is offered: ``napari-aleatoric train``'s option and the
    retraining panel's form row are both made from these (:func:`setting_specs`), so a field added
    to :class:`TrainSettings` appears in both with its default, choices and help.

    ``kind``: ``"int"``, ``"float"``, ``"bool"``, ``"str"`` or ``"sizes"`` (a tuple of ints);
    ``optional``: ``None`` is allowed and means :attr:`auto`.
    """

    name: str
    kind: str
    default: Any
    optional: bool
    help: str
    label: str
    choices: tuple | None = None
    auto: str | None = None
    suggestions: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    decimals: int | None = None

    @property
    def option(self) -> str:
        """The command-line option, ``--issue-keep`` for ``issue_keep``."""
        return "--" + self.name.replace("_", "-")

    def default_text(self) -> str:
        """The default as ``--help`` names it."""
        if self.default is None:
            return self.auto or "none"
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)

    def parse(self, text: str):
        """A value of this setting from text (the CLI and the form's text fields); ``""`` is ``None``
        for an optional setting. Raises :class:`ValueError` saying what was expected."""
        text = text.strip()
        if text == "" and self.optional:
            return None
        if self.kind == "sizes":
            return parse_sizes(text)
        convert, expected = {"int": (int, "an integer"), "float": (float, "a number")}.get(self.kind, (str, ""))
        try:
            return convert(text)
        except ValueError:
            raise ValueError(f"expected {expected}, got {text!r}") from None


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"32,64,64"`` or ``"240x208"`` → a tuple of ints (ValueError otherwise)."""
    try:
        return tuple(int(p) for p in text.lower().replace("x", ",").split(","))
    except ValueError:
        raise ValueError(f"expected sizes like 32,64,64 or 240x208, got {text!r}") from None


_KINDS = {int: "int", float: "float", bool: "bool", str: "str"}


def setting_specs() -> tuple[SettingSpec, ...]:
    """One :class:`SettingSpec` per :class:`TrainSettings` field, in field order."""
    import typing  # noqa: PLC0415

    hints = typing.get_type_hints(TrainSettings)
    specs = []
    for f in fields(TrainSettings):
        args = [a for a in typing.get_args(hints[f.name]) if a is not type(None)]
        optional = type(None) in typing.get_args(hints[f.name])
        base = args[0] if optional and len(args) == 1 else hints[f.name]
        kind = "sizes" if typing.get_origin(base) is tuple else _KINDS[base]
        meta = f.metadata
        specs.append(SettingSpec(
            name=f.name, kind=kind, default=f.default, optional=optional, help=meta["help"],
            label=meta["label"] or f.name.replace("_", " "), choices=meta["choices"], auto=meta["auto"],
            suggestions=meta["suggestions"], minimum=meta["minimum"], maximum=meta["maximum"], step=meta["step"],
            decimals=meta["decimals"]))
    return tuple(specs)


#: Named strategies (CLI ``--strategy``, the retraining panel, the benchmark): the settings each one sets.
STRATEGIES: dict[str, dict[str, Any]] = {
    "default": dict(keep=1.0, duo=False, issue_keep=1.0, label_issues="auto"),
    "plain": dict(keep=1.0, duo=False, issue_keep=1.0, label_issues="off"),
    "auv-filter": dict(keep=0.9, duo=False, issue_keep=1.0, label_issues="off"),
    "duo": dict(keep=1.0, duo=True, issue_keep=1.0, label_issues="off"),
    "auv-filter+duo": dict(keep=0.9, duo=True, issue_keep=1.0, label_issues="off"),
    "issue-filter": dict(keep=1.0, duo=False, issue_keep=0.8, label_issues="off"),
    "issue-weight": dict(keep=1.0, duo=False, issue_keep=1.0, label_issues="weight"),
    "issue-relabel": dict(keep=1.0, duo=False, issue_keep=1.0, label_issues="relabel"),
    "issue-filter+relabel": dict(keep=1.0, duo=False, issue_keep=0.8, label_issues="relabel"),
}


def with_strategy(settings: TrainSettings, strategy: str) -> TrainSettings:
    """``settings`` with the fields of a named strategy (:data:`STRATEGIES`); ValueError if unknown."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r} (choose one of {', '.join(STRATEGIES)})")
    return replace(settings, **STRATEGIES[strategy])


def strategy_of(settings: TrainSettings) -> str | None:
    """The name of the strategy ``settings`` match, or ``None`` for another combination."""
    for name, values in STRATEGIES.items():
        if all(getattr(settings, key) == value for key, value in values.items()):
            return name
    return None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
