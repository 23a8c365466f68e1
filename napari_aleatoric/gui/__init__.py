"""napari GUI of napari-aleatoric: the review panel, its workers, and the npe2 contributions' Qt side.

Only this package imports Qt or napari. It stays thin: every computation is a call into the core
(``data``, ``models``, ``pipelines``, ``review``); long work runs in napari thread workers.

Modules:
    sessions       one review session (``napari_aleatoric.session.ReviewSession``) per viewer, shared
                   by the panels (no Qt)
    review_panel   the dock widget (dataset, scoring, queue, case, correction, history): a view of
                   the viewer's review session
    training_panel the retraining dock widget (dataset, weights preview, training worker, Stop),
                   made of the views below
    training_form  its settings form, a row per ``TrainSettings`` field (``setting_specs``)
    training_plot  its live plot (loss per step, validation Dice per epoch)
    training_models its run list, Predict, and scoring imagesTs with the trained model's prompts
    docking        two panels side by side in the right dock area (Qt's public API only)
    queue          the sortable, filterable ranked queue table
    case_view      loading a case with its cached maps, and the layers that show it (no Qt)
    assist         foundation-model assisted correction: prompts, preview, apply (pure parts no Qt)
    sample         opening datasets and the bundled samples in a viewer
    launch         ``open_review_app`` used by ``napari-aleatoric demo``
    notify         notifications
"""
