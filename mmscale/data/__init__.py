"""Data: sources (procedural, ArrayRecord shards, TFDS, prepared corpora, WebDataset tar, Parquet,
OBELICS rows, Hugging Face datasets), tokenizers (byte, BPE, SentencePiece, tokenizer.json),
augmentation, packing, Grain mixing of modality streams, and the train/eval pipeline (see
pipeline.py)."""
