"""The label-quality pass, re-exported from :mod:`napari_aleatoric.labelquality.assess` (its home,
below both ``pipelines`` and ``training``, which both run it) for the code that imports it from here."""

from ..labelquality.assess import (MIN_CASES, QUALITY_VERSION, LabelQuality, LabelQualityFinished,  # noqa: F401
                                   LabelQualityProgress, assess_label_quality, cached_label_quality,
                                   load_issue_maps, quality_cache_dir, quality_key, run_key)
