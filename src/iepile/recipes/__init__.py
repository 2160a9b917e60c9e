"""Recipes: a YAML manifest of steps (build, train, sample, tune, predict, report) run in order, each cached by a
key of its settings, behind ``iepile reproduce`` and ``make reproduce``. Outside the pipeline's stages, over them."""
