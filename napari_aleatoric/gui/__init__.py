"""napari GUI of napari-aleatoric: the review panel, its workers, and the npe2 contributions' Qt side.

Only this package imports Qt or napari. It stays thin: every computation is a call into the core
(``data``, ``models``, ``pipelines``, ``review``); long work runs in napari thread workers.

Modules:
    sessions       one review session (``napari_aleatoric.session.ReviewSession``) per viewer, shared
                   by the panels (no Qt)
    review_panel   the review dock widget: a view of the viewer's review session, composed of
        scoring_box    the dataset and scoring controls (score, cancel, refresh, export, Dask scheduler,
                       progress, message line)
        case_actions   the Case tab: the summary and history, decisions, save, revert
        case_summary   the case's summary text and revision history
        assist_box     the Correct tab: class painted, prompts, preview, apply
        case_display   the case shown in the viewer (layers, slider, annotation setup, unsaved edits)
    training_panel the retraining dock widget (dataset, weights preview, training worker, Stop),
                   made of the views below
    training_form  its settings form, a row per ``TrainSettings`` field (``setting_specs``)
    training_plot  its live plot (loss per step, validation Dice per epoch)
    training_models its run list, Predict, and scoring imagesTs with the trained model's prompts
    docking        two panels side by side in the right dock area (Qt's public API only)
    queue          the sortable, filterable ranked queue table
    case_view      loading a case with its cached maps, and the layers that show it (no Qt)
    case_layers    putting, ordering and removing the case layers; the viewer's title
    edits          following the annotation layer's edits (unsaved or not)
    workers        napari workers whose errors become notifications
    assist         foundation-model assisted correction: prompts, preview, apply (pure parts no Qt)
    sample         opening datasets and the bundled samples in a viewer
    launch         ``open_review_app`` used by ``napari-aleatoric demo``
    notify         notifications
"""
