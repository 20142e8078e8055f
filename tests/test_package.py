"""The package imports and its public surface is what __all__ says."""

import importlib

import tfdecomp


def test_all_names_resolve():
  for name in tfdecomp.__all__:
    assert getattr(tfdecomp, name) is not None, name


def test_entry_point_packages_import():
  for name in ("trainers", "savedmodels"):
    importlib.import_module(name)
