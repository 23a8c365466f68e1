"""CPU inference paths for the foundation model (issue 14, item 5): where a 2D case's time goes, and
whether bf16, channels-last memory or ``torch.compile`` make the encoder faster without changing
what it computes.

For one 256×256 slice of the bundled MNI sample (3-channel model input) it measures, median of
``--repeats`` runs after two warm-ups, on this process's torch threads:

- the image encoder (``FoundationModel.embed``) in float32, as the product runs it;
- the mask decoder for one box prompt per class (``decode``, B = 2 classes);
- the encoder under ``torch.autocast("cpu", torch.bfloat16)`` (uses AVX-512 BF16 / AMX where the
  CPU has them), in channels-last memory format, and compiled with ``torch.compile`` (``--compile``;
  the first call compiles, minutes);

- a whole 2D case as the product scores it (``score_dataset`` on ``--cases`` synthetic 256² cases
  with 3 classes, no label-quality pass): wall seconds per case after the first, and the part
  inside the model;

and for each variant the largest difference of the embedding and of the decoded class
probabilities (sigmoid of the mask logits) against float32. The encoder's FLOP count is the
analytic figure of issue 14 (75 GFLOPs per 256² slice, ``--gflops``); the floor is
``GFLOPs / measured float32 matmul GFLOP/s`` of this CPU (a 2048² matmul, same threads).

Usage::

    OMP_NUM_THREADS=2 python benchmarks/bench_cpu_inference.py --compile --out benchmarks/results/cpu_inference.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch


def median_seconds(fn, repeats: int) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` runs after two warm-up calls."""
    fn()
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def matmul_gflops(repeats: int) -> float:
    """float32 GFLOP/s of a 2048 × 2048 matmul on this process's threads (the CPU's usable peak)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    seconds = median_seconds(lambda: a @ b, repeats)
    return 2 * 2048 ** 3 / seconds / 1e9


def sample_slice() -> tuple[torch.Tensor, np.ndarray]:
    """A bundled MNI slice as ``(1, 3, 256, 256)`` model input in [0, 1], and its label."""
    from napari_aleatoric.data.dataset import load_case, open_dataset
    from napari_aleatoric.sample_data import dataset_path

    ds = open_dataset(dataset_path("Dataset001_MNIBrainSlices"))
    case = load_case(ds, ds.cases[10])
    image = case.image.astype(np.float32)
    image = (image - image.min()) / max(float(np.ptp(image)), 1e-6)
    tensor = torch.from_numpy(image)[None, None]
    tensor = torch.nn.functional.interpolate(tensor, size=(256, 256), mode="bilinear", align_corners=False)
    return tensor.repeat(1, 3, 1, 1), case.label


def class_boxes(label: np.ndarray) -> torch.Tensor:
    """``(C, 4)`` boxes around each foreground class, in 256² model pixels."""
    scale = 256 / np.array(label.shape[::-1] * 2, np.float32)
    boxes = []
    for value in sorted(int(v) for v in np.unique(label) if v):
        rows, cols = np.nonzero(label == value)
        boxes.append(np.array([cols.min(), rows.min(), cols.max(), rows.max()], np.float32) * scale)
    return torch.from_numpy(np.stack(boxes))


def whole_case_seconds(cases: int) -> dict:
    """Wall and model seconds per 2D case (mean over the cases after the first) of a scoring run."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from synthetic import make_2d_dataset

    from napari_aleatoric.pipelines.scoring import CaseScored, score_dataset

    with tempfile.TemporaryDirectory() as folder:
        root = make_2d_dataset(Path(folder) / "cases", cases)
        walls, forwards = [], []
        last = time.perf_counter()
        for event in score_dataset(root, "litemedsam", device="cpu", label_quality=False):
            if isinstance(event, CaseScored):
                now = time.perf_counter()
                walls.append(now - last)
                forwards.append(event.result.forward_seconds)
                last = now
    return {"cases": cases, "wall_seconds_per_case": round(statistics.mean(walls[1:]), 3),
            "model_seconds_per_case": round(statistics.mean(forwards[1:]), 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gflops", type=float, default=75.0, help="encoder GFLOPs per slice (issue 14's figure)")
    parser.add_argument("--compile", action="store_true", help="also try torch.compile (compiles for minutes)")
    parser.add_argument("--cases", type=int, default=6, help="synthetic 2D cases scored whole (0: skip)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from napari_aleatoric.models.registry import load_model

    model = load_model("litemedsam", "cpu")
    images01, label = sample_slice()
    boxes = class_boxes(label)
    encoder = model.image_encoder

    def encode(module=encoder, autocast=False, channels_last=False):
        def run():
            x = model.pixel_normaliser(images01)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
                return module(x).float()
        return run

    def probabilities(embedding: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(model.decode(embedding, boxes=boxes).logits)

    reference = encode()()
    reference_p = probabilities(reference)
    results = {"threads": torch.get_num_threads(), "torch": torch.__version__, "cpu": platform.processor(),
               "machine": platform.machine(), "load_average_start": list(os.getloadavg()),
               "matmul_gflops": round(matmul_gflops(args.repeats), 1), "encoder_gflops": args.gflops,
               "variants": {}}
    results["decoder_seconds_per_case"] = round(median_seconds(lambda: model.decode(reference, boxes=boxes),
                                                               args.repeats), 4)
    variants = {"float32": encode(), "bf16_autocast": encode(autocast=True)}
    encoder_cl = encoder.to(memory_format=torch.channels_last)
    variants["float32_channels_last"] = encode(encoder_cl, channels_last=True)
    if args.compile:
        variants["float32_compiled"] = encode(torch.compile(encoder))
    for name, run in variants.items():
        started = time.perf_counter()
        embedding = run()  # for a compiled module: the compilation
        first = time.perf_counter() - started
        seconds = median_seconds(run, args.repeats)
        p = probabilities(embedding)
        results["variants"][name] = {
            "encoder_seconds": round(seconds, 4), "first_call_seconds": round(first, 2),
            "speedup_vs_float32": None,
            "embedding_max_abs_diff": float((embedding - reference).abs().max()),
            "embedding_rel_l2_diff": float((embedding - reference).norm() / reference.norm()),
            "probability_max_abs_diff": float((p - reference_p).abs().max()),
            "mask_pixels_changed": int(((p > 0.5) != (reference_p > 0.5)).sum()),
        }
        print(name, json.dumps(results["variants"][name]), flush=True)
    base = results["variants"]["float32"]["encoder_seconds"]
    for entry in results["variants"].values():
        entry["speedup_vs_float32"] = round(base / entry["encoder_seconds"], 2)
    results["floor_seconds"] = round(args.gflops / results["matmul_gflops"], 3)
    if args.cases > 1:
        results["whole_case"] = whole_case_seconds(args.cases)
    results["load_average_end"] = list(os.getloadavg())
    print(json.dumps({k: v for k, v in results.items() if k != "variants"}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
