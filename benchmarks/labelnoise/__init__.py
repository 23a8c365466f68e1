"""Label-error benchmark: does a ranking put the wrongly annotated cases first?

Modules:
    corruptions  named annotation errors (erosion, dilation, shift, missing structure, spurious
                 blob, class swap, coarse polygon) with records that re-create them exactly;
    datasets     the benchmark datasets (MNI152 MRI slices, stardist nuclei tiles, synthetic CT
                 volumes) with clean labels and corrupted variants, deterministic by seed;
    methods      the case-level scores and pixel heatmaps being compared; adding a method is one
                 decorated function (see :func:`methods.method`);
    metrics      AUROC / AUPRC / precision at top 10 %, bootstrap intervals, pixel AUROC;
    plots        the PNG figures.

Entry point: ``python benchmarks/run_all.py`` (see its ``--help``).
"""
