"""Label quality learned from the dataset itself on frozen foundation-model features.

A small classifier is trained with K-fold cross-validation by case on per-pixel features (the
foundation model's image embedding plus multi-scale intensity filters), so every pixel of every
case gets class probabilities from a model that never saw that case's annotation. Where the
annotation disagrees with those out-of-sample probabilities, it is likely wrong.
"""
