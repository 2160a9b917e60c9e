"""Stage 1, datasets to records: one reader per format (``formats/``), cleaning, corpus building with balancing and
dataset cards, and hard-negative mining."""
