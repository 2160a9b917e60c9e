"""Fine-tuning components; :func:`iepile.train.train` is the recipe that runs them top to bottom."""
