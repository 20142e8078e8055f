"""A mixin for small immutable objects described entirely by their `get_config()`."""


class ConfigObject:
  """Rebuilt from its config, printed as its constructor call, equal when configs are equal.

  Subclasses implement `get_config()` returning the constructor's keyword arguments.
  """

  def get_config(self):
    return {}

  @classmethod
  def from_config(cls, config):
    return cls(**config)

  def __repr__(self):
    args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
    return f"{type(self).__name__}({args})"

  def __eq__(self, other):
    return type(self) is type(other) and self.get_config() == other.get_config()

  def __hash__(self):
    return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))
