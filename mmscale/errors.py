"""User-facing errors: one clear line and a non-zero exit, never a traceback."""


class UserError(Exception):
  """A mistake in the user's input (config, files, grid). The CLI prints it and exits 2."""

  exit_code = 2


class ConfigError(UserError):
  """A config value that is not allowed: names the key, the value and what is allowed."""

  def __init__(self, key: str, value, allowed: str):
    self.key, self.value, self.allowed = key, value, allowed
    super().__init__(f"config.{key}={value!r}: {allowed}")
