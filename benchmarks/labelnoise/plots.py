"""PNG figures of the benchmark results (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import metrics as M


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _best_set(entry: dict) -> dict | None:
    return entry.get("all_replicates") or entry.get("same_cases")


def auroc_overview(results: dict, path: Path) -> Path:
    """One panel per dataset: AUROC and 95 % CI of every method (random's null range shaded)."""
    plt = _plt()
    names = list(results["datasets"])
    methods = [m for m in results["methods"]]
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names) + 2.5, 0.38 * len(methods) + 1.6),
                             sharey=True, squeeze=False)
    colors = {"paper": "#d62728", "label-aware": "#1f77b4", "baseline": "#7f7f7f", "combination": "#2ca02c"}
    for ax, ds in zip(axes[0], names):
        ev = results["datasets"][ds]["methods"]
        null = _best_set(ev["random"])["all"]["auroc_ci"]
        ax.axvspan(null[0], null[1], color="#dddddd", zorder=0, label="random: 95% range")
        ax.axvline(0.5, color="#999999", lw=0.8)
        for i, m in enumerate(methods):
            entry = ev.get(m["name"])
            if not entry or m["name"] == "random":
                continue
            s = _best_set(entry)["all"]
            ci = s["auroc_ci"]
            ax.errorbar(s["auroc"], i, xerr=[[s["auroc"] - ci[0]], [ci[1] - s["auroc"]]], fmt="o",
                        color=colors.get(m["group"], "k"), capsize=2, ms=4)
        ax.set_title(f"{ds} ({_best_set(ev['random'])['all']['positives']} corrupted)")
        ax.set_xlim(0, 1)
        ax.set_xlabel("AUROC (corrupted vs clean case)")
    axes[0][0].set_yticks(range(len(methods)))
    axes[0][0].set_yticklabels([m["label"] for m in methods], fontsize=8)
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def auroc_by_kind(results: dict, path: Path) -> Path:
    """Method × error-kind AUROC matrices, one per dataset."""
    plt = _plt()
    names = list(results["datasets"])
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 + 0.75 * 7 * len(names), 0.36 * len(results["methods"]) + 2.2),
                             squeeze=False)
    for ax, ds in zip(axes[0], names):
        ev = results["datasets"][ds]
        kinds = ev["kinds"]
        rows = [n for n in ev["methods"]]
        mat = np.array([[_best_set(ev["methods"][n])[k]["auroc"] for k in kinds] for n in rows], dtype=float)
        im = ax.imshow(mat, cmap="RdBu_r", vmin=0, vmax=1, aspect="auto")
        for (i, j), v in np.ndenumerate(mat):
            if math.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(kinds)))
        ax.set_xticklabels([k.replace("_", "\n") for k in kinds], fontsize=7)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(rows if ax is axes[0][0] else [""] * len(rows), fontsize=7)
        ax.set_title(ds)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.6, label="AUROC")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


ROC_METHODS = ("auv_sigma2_raw", "auv_sigma2_masknorm", "fm_disagreement", "dice_z_max", "cleanlab_softmin",
               "fm_disagreement_given_auv")


def roc_curves(results: dict, path: Path) -> Path:
    """ROC curves (replicates concatenated) of the key methods."""
    plt = _plt()
    names = list(results["datasets"])
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4), squeeze=False)
    for ax, ds in zip(axes[0], names):
        ev = results["datasets"][ds]
        for name in ROC_METHODS:
            if name not in ev["scores"]:
                continue
            s, y = [], []
            for r, scores in ev["scores"][name].items():
                s += [np.nan if v is None else v for v in scores]
                y += ev["cases"][r]["corrupted"]
            fpr, tpr = M.roc_curve(np.array(s, float), np.array(y, bool))
            ax.plot(fpr, tpr, label=name, lw=1.2)
        ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls="--")
        ax.set_title(ds)
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def heatmap_aurocs(results: dict, path: Path) -> Path:
    """Distribution of the pixel AUROC of each heatmap per dataset."""
    plt = _plt()
    names = list(results["datasets"])
    hnames = list(results["heatmap_methods"])
    fig, ax = plt.subplots(figsize=(1.6 * len(names) * len(hnames) + 1, 3.6))
    data, labels, positions = [], [], []
    for i, ds in enumerate(names):
        for j, h in enumerate(hnames):
            a = [e["auroc"] for e in results["datasets"][ds]["heatmaps"][h]["entries"] if math.isfinite(e["auroc"])]
            data.append(a if a else [math.nan])
            labels.append(f"{ds}\n{h}")
            positions.append(i * (len(hnames) + 1) + j)
    ax.boxplot(data, positions=positions, widths=0.7)
    ax.axhline(0.8, color="#2ca02c", ls="--", lw=0.8, label="target 0.8")
    ax.axhline(0.5, color="#999999", lw=0.8)
    ax.set_xticks(positions)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("pixel AUROC vs injected error mask")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def example_records(corruptions: list[dict], per_kind: int = 1) -> list[dict]:
    """The corruption records shown in the examples figure: the first ``per_kind`` of each kind."""
    chosen, seen = [], {}
    for rec in corruptions:
        if seen.get(rec["kind"], 0) < per_kind:
            seen[rec["kind"]] = seen.get(rec["kind"], 0) + 1
            chosen.append(rec)
    return chosen


def example_maps_path(out: Path, dataset: str, variant: str) -> Path:
    """Where the run keeps the app's label-issue maps of an example case (``(C, D, H, W)`` float16)."""
    return out / "work" / "examples" / dataset / f"{variant}.npy"


def examples(results: dict, out: Path, dataset: str, path: Path, per_kind: int = 1) -> Path | None:
    """A corrupted case of each kind, on its most changed slice: image with clean (green) and given
    (red) outline, the error mask, the app's label-issue map (the viewer's heatmap), and the
    foundation model's entropy map and |p − annotation| of the changed class."""
    from napari_aleatoric.data.dataset import load_case, open_dataset

    plt = _plt()
    root = out / "work" / f"{dataset}_raw"
    if not root.is_dir():
        return None
    ds = open_dataset(root)
    info = results["datasets"][dataset]["info"]
    classes = list(info["classes"])
    chosen = example_records(info["corruptions"], per_kind)
    if not chosen:
        return None
    fig, axes = plt.subplots(len(chosen), 5, figsize=(12.5, 2.6 * len(chosen)), squeeze=False)
    for row, rec in zip(axes, chosen):
        variant = rec["variant"]
        case = load_case(ds, ds.case(variant))
        clean = load_case(ds, ds.case(rec["case"])).label
        image, label = case.image, case.label
        with np.load(root.parent.parent / "data" / dataset / "errors" / f"{variant}.npz") as npz:
            errors = npz["class_errors"]
        with np.load(ds.state_dir / "cache" / "maps" / f"{variant}.npz") as npz:
            probs, heat = npz["probabilities"].astype(np.float32), npz["heatmaps"].astype(np.float32)
        c = classes.index(rec["class"]) if rec.get("class") in classes else 0
        if image.ndim == 2:
            image, label, clean = image[None], label[None], clean[None]
        err = errors[c].reshape(label.shape)
        d = int(np.argmax(err.reshape(err.shape[0], -1).sum(axis=1)))
        value = info["classes"][classes[c]]
        row[0].imshow(image[d], cmap="gray")
        row[0].contour(clean[d] == value, levels=[0.5], colors="lime", linewidths=0.7)
        row[0].contour(label[d] == value, levels=[0.5], colors="red", linewidths=0.7)
        row[0].set_title(f"{rec['kind']} ({classes[c]})", fontsize=8)
        row[1].imshow(err[d], cmap="gray")
        row[1].set_title("injected error mask", fontsize=8)
        a1 = M.pixel_auroc(heat[c], err)
        a2 = M.pixel_auroc(np.abs(probs[c] - (label == value)), err)
        issue_file = example_maps_path(out, dataset, variant)
        if issue_file.is_file():
            issue = np.load(issue_file).astype(np.float32)
            row[2].imshow(issue[c, d], cmap="magma", vmin=0, vmax=1)
            row[2].set_title(f"label-issue map, the app's (AUROC {M.pixel_auroc(issue[c], err):.2f})", fontsize=8)
        row[3].imshow(heat[c, d], cmap="magma", vmin=0, vmax=1)
        row[3].set_title(f"FM entropy map (AUROC {a1:.2f})", fontsize=8)
        row[4].imshow(np.abs(probs[c, d] - (label[d] == value)), cmap="magma", vmin=0, vmax=1)
        row[4].set_title(f"FM |p − annotation| (AUROC {a2:.2f})", fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def difficulty_scatter(results: dict, path: Path) -> Path | None:
    """Per dataset: the paper's AUV against the cross-validated task model's per-case Dice."""
    names = [ds for ds in results["datasets"] if "difficulty" in results["datasets"][ds]]
    if not names:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    for ax, ds in zip(axes[0], names):
        d = results["datasets"][ds]["difficulty"]
        ids = sorted(d["cases"])
        auv = np.array([d["cases"][c]["scores"]["auv_sigma2"] for c in ids], dtype=np.float64)
        dice = np.array([d["cases"][c]["dice"] for c in ids], dtype=np.float64)
        ax.scatter(auv, dice, s=14, color="#d62728")
        c = d["correlations"]["auv_sigma2"]
        ax.set_title(f"{ds}: Spearman(AUV, 1 − Dice) {c.get('spearman', math.nan):.2f}", fontsize=9)
        ax.set_xlabel("paper AUV (σ², raw input)")
        ax.set_ylabel(f"{d['config']['folds']}-fold task-model Dice")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def make_all(results: dict, out: Path) -> list[str]:
    """Every figure into ``out/plots``; returns their paths."""
    folder = out / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    made = [auroc_overview(results, folder / "auroc_overview.png"),
            auroc_by_kind(results, folder / "auroc_by_kind.png"),
            roc_curves(results, folder / "roc.png"),
            heatmap_aurocs(results, folder / "heatmap_auroc.png"),
            difficulty_scatter(results, folder / "difficulty.png")]
    for ds in results["datasets"]:
        made.append(examples(results, out, ds, folder / f"examples_{ds}.png"))
    return [str(p) for p in made if p is not None]
