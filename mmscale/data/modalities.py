"""Modality ids shared by the data pipeline, the model and the records."""

MODALITIES = ("text", "image", "audio")
TEXT, IMAGE, AUDIO = 0, 1, 2
MODALITY_ID = {name: i for i, name in enumerate(MODALITIES)}
