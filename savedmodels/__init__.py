"""Export of trained models as SavedModels, and loading them back for serving and evaluation.

`savedmodels.export(model, path, input_shape)` writes one; `savedmodels.load(path)` reads it.
The command line is `python -m savedmodels --run DIR [--out DIR] [--overwrite]`.
"""

from savedmodels.exporter import ExportedModel
from savedmodels.exporter import export
from savedmodels.exporter import export_version
from savedmodels.exporter import load

__all__ = ["ExportedModel", "export", "export_version", "load"]
