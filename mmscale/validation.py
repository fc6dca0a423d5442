"""The checks every stage's config validator is made of, each raising a one-line ConfigError.

One wording per kind of value, so `config.model.depth=0` and `config.data.batch_size=0` read
alike. A config choice is checked against its registry: `choice(key, name, REGISTRY)` accepts the
registry's keys and lists them sorted, so the allowed names are written once, where the
implementations are.
"""

import math
import numbers

from mmscale.errors import ConfigError


def integer(key, value, minimum=1):
  """An int (not a bool) >= minimum."""
  if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    raise ConfigError(key, value, f"must be {what}")


def number(key, value, minimum=0, strict=True):
  """A finite real (not a bool) > minimum, or >= minimum when not strict."""
  ok = (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        and (value > minimum if strict else value >= minimum))
  if not ok:
    raise ConfigError(key, value, f"must be a finite number {'>' if strict else '>='} {minimum}")


def unit_interval(key, value):
  """A fraction in [0, 1): Adam's betas, the cool-down share."""
  if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= value < 1):
    raise ConfigError(key, value, "must be a number in [0, 1)")


def boolean(key, value):
  if not isinstance(value, bool):
    raise ConfigError(key, value, "must be True or False")


def one_of(key, value, allowed):
  """`value` is one of `allowed`, listed in the order given."""
  if value not in allowed:
    raise ConfigError(key, value, f"must be one of {', '.join(map(repr, allowed))}")


def choice(key, value, registry):
  """`value` names an entry of `registry` (a dict or set of names); the error lists them sorted."""
  if not isinstance(value, str) or value not in registry:
    one_of(key, value, sorted(registry))
