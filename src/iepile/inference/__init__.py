"""Stage 4, answering: generators (transformers, vLLM), ``predict`` over instruction files, ``extract`` from raw
text with a schema (split, answer, merge, ground), constrained decoding, the recall threshold and answer parsing."""
