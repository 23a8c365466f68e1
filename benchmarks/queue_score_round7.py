"""The queue after the flag's seventh round (docs/label_quality.md): its formula stays, its flag gains the outline.

No choice is made here: the queue's formula (``flagged_first``: flagged cases first, each group by
the mean of the percentile ranks of ``label_issue`` and the worst class's contradicted share) is
scored with the sixth round's flag (``worst_outline`` left out of the table) and with the product's
flag (the seventh round's, which reads it), on the queue rounds' tuning sets: the label-error
replicates (``label_error_per_class.py``'s JSON with ``outline``), the noisy-training sets (their
cached maps) and every issue-16 set with errors of the ``--issue16`` folders (re-scored tables)::

    python benchmarks/queue_score_round7.py --results benchmarks/results/results.json \\
        --per-class benchmarks/results/label_error_per_class_v10.json \\
        --noisy /work/bench12data/{mni,ct}-c{100,1,2,3,4,5} \\
        --issue16 /work/fresh{,2,3,4,5,6,7,8,9,10,11,12}/{ct_sizes,mni_subtle,ct_rare,nuclei_tiles,mni_small} \\
        --out benchmarks/results/queue_score_round7.json
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import queue_score_round4 as round4  # noqa: E402
import queue_score_round6 as round6  # noqa: E402
from queue_score_round4 import ranks01, worst  # noqa: E402

FLAGS = ("sixth round's flag", "seventh round's flag")


def queue_scores(columns: dict) -> dict[str, np.ndarray]:
    """``flagged_first`` with each flag, for one set's :func:`queue_score_round6.set_columns`."""
    base = 0.5 * (ranks01(columns["label_issue"]) + ranks01(worst(columns["per_class"])))
    return {name: base + round6.product_flags(columns, outline=outline)
            for name, outline in zip(FLAGS, (False, True))}


def main(argv=None) -> int:
    args = round4.parsed_arguments(__doc__.splitlines()[0], argv)
    sets = round6.tuning_sets(args, queue_scores, FLAGS)
    ct_sizes = [v for name, v in sets.items() if name.endswith("/ct_sizes")]
    summary = {f: {"worst": min(v[f] for v in sets.values()), "mean": float(np.mean([v[f] for v in sets.values()])),
                   "mean varied-size CT": float(np.mean([v[f] for v in ct_sizes]))} for f in FLAGS}
    print(f"{'set':<28} " + " ".join(f"{f:>22}" for f in FLAGS))
    for name, values in sets.items():
        print(f"{name:<28} " + " ".join(f"{values[f]:>22.3f}" for f in FLAGS))
    for key in summary[FLAGS[0]]:
        print(f"{key:<28} " + " ".join(f"{summary[f][key]:>22.4f}" for f in FLAGS))
    if args.out:
        args.out.write_text(json.dumps({"round": 7, "command": " ".join(["python", *sys.argv]),
                                        "machine": platform.platform(), "sets": sets, "summary": summary},
                                       indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
