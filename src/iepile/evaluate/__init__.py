"""``iepile eval``: score model answers against gold annotations (see :func:`evaluate_file`)."""
