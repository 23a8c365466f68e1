"""Noisy-label training benchmark (issue 12): datasets with clean and noisy labels side by side.

:mod:`.data` assembles, for a dataset (``mni`` 2D MRI slices, ``ct`` 3D synthetic CT) and a
corruption seed, two nnU-Net v2 raw folders with the same images and cases, ``clean/`` and
``noisy/``, and ``truth.json`` (split, corrupted cases, clean label paths). See ``CALIBRATION.md``
for how the noise level and the training budget were chosen.
"""
