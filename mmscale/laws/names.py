"""The laws `mmscale fit --law` knows, in a module without imports so the flag (and its --help)
can list them without loading the fitter."""

LAWS = ("chinchilla", "mixed_modal", "sparsity", "compression")
