"""Fine-tuning components; :func:`iepile.training.recipe.train` is the recipe that runs them top to bottom."""
