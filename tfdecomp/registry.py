"""Name -> factory registries: one per concept (priors, divergences, networks, likelihoods, data sets).

Each concept's module owns one `Registry`; the library, the command lines and the conformance
tests all read it, so adding a prior, a network or a data set is one new piece plus one
`REGISTRY.register(...)` line, and every path (CLI flags, config validation, the conformance
suite) picks it up.

  PRIORS = Registry("prior")
  @PRIORS.register("student_t")
  def _student_t(latent_dim, *, df=9.0, ...): ...
  PRIORS.build("student_t", latent_dim=10, df=5.0, gamma=0.8)   # unused options are dropped
"""

import inspect
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

__all__ = ["Registry", "UnknownNameError"]


class UnknownNameError(ValueError):
  """A name that is not in a registry; the message lists the valid names."""


class Registry:
  """An ordered mapping from names to factories, with one-line errors.

  Args:
    kind: what the entries are ("prior", "network", ...), used in error messages.
  """

  def __init__(self, kind: str):
    self.kind = kind
    self._entries: Dict[str, Callable[..., Any]] = {}
    self._info: Dict[str, dict] = {}

  def register(self, name: str, factory: Optional[Callable[..., Any]] = None, **info):
    """Registers `factory` under `name` (usable as a decorator when `factory` is omitted).

    Args:
      name: the entry's name (what a user types, e.g. on the command line).
      factory: a callable building the entry.
      **info: free-form facts about the entry that other code reads (e.g. the input shapes a
        network accepts), available from `info(name)`.

    Raises:
      ValueError: if `name` is already registered.
    """
    def add(fn):
      if name in self._entries:
        raise ValueError(f"a {self.kind} named {name!r} is already registered.")
      self._entries[name] = fn
      self._info[name] = dict(info)
      return fn
    return add if factory is None else add(factory)

  def names(self) -> Tuple[str, ...]:
    """The registered names, in registration order."""
    return tuple(self._entries)

  def __contains__(self, name) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(self._entries)

  def __len__(self) -> int:
    return len(self._entries)

  def check(self, name) -> str:
    """Returns `name` if registered.

    Raises:
      UnknownNameError: naming the valid choices.
    """
    if name not in self._entries:
      raise UnknownNameError(
          f"unknown {self.kind} name {name!r}; choose one of {', '.join(self._entries)}.")
    return name

  def get(self, name) -> Callable[..., Any]:
    """The factory registered under `name` (raises `UnknownNameError`)."""
    return self._entries[self.check(name)]

  def info(self, name) -> dict:
    """The facts registered with `name`."""
    return dict(self._info[self.check(name)])

  def build(self, name, *args, **options):
    """Calls the factory of `name` with `args` and those `options` its signature accepts.

    Options a factory does not name are dropped (a config carries the options of every entry,
    e.g. `df` is only read by the Student-t prior); a factory with `**kwargs` receives them all.
    """
    factory = self.get(name)
    return factory(*args, **self.accepted_options(name, options))

  def accepted_options(self, name, options: dict) -> dict:
    """The subset of `options` that the factory of `name` takes as keyword arguments."""
    factory = self.get(name)
    try:
      params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
      return dict(options)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
      return dict(options)
    names = {p.name for p in params
             if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)}
    return {k: v for k, v in options.items() if k in names}

  def __repr__(self):
    return f"Registry({self.kind!r}: {', '.join(self._entries)})"
