"""Data: sources (procedural, ArrayRecord shards, TFDS, prepared corpora), tokenizers, packing,
Grain mixing of modality streams, and the train/eval pipeline (see pipeline.py)."""
