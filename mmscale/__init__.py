"""mmscale: scaling-law studies of native multimodal models in JAX."""

__version__ = "0.1.0"
