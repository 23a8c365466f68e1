"""napari-aleatoric: find and fix the medical-image annotations most likely to be wrong.

The core (``data``, ``models``, ``uncertainty``, ``pipelines``, ``cli``) never imports Qt or
napari; only :mod:`napari_aleatoric.gui` does.
"""

__version__ = "0.1.0"
