"""Modality ids of batch["modality"]: the position of each name in contract.MODALITIES."""

from mmscale.contract import MODALITIES

TEXT, IMAGE, AUDIO = (MODALITIES.index(m) for m in ("text", "image", "audio"))
MODALITY_ID = {name: i for i, name in enumerate(MODALITIES)}
