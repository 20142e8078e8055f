"""The architecture's promises: one-way dependencies and no process-wide side effects on import."""

import ast
import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def _imports(path):
  tree = ast.parse(path.read_text(encoding="utf-8"))
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      yield node.module


@pytest.mark.parametrize("package, forbidden", [
    ("tfdecomp", ("trainers", "savedmodels")),
    ("savedmodels", ("trainers",)),
])
def test_dependencies_point_one_way(package, forbidden):
  offenders = []
  for path in sorted((REPO / package).rglob("*.py")):
    for name in _imports(path):
      if name.split(".")[0] in forbidden:
        offenders.append(f"{path.relative_to(REPO)} imports {name}")
  assert not offenders, offenders


def _lines(path):
  return len(path.read_text(encoding="utf-8").splitlines())


def test_entry_points_stay_thin():
  # Before the library owned the procedure, train + evaluate + their shared start-up held 921.
  core = sum(_lines(REPO / "trainers" / name) for name in ("train.py", "evaluate.py", "_cli.py"))
  assert core < 921 // 2, f"trainers' train/evaluate/_cli hold {core} lines"
  for path in (REPO / "trainers").glob("*.py"):
    if path.name != "_cli.py":
      assert _lines(path) <= 160, f"{path.name} is {_lines(path)} lines: more than a screen or two"


_PROBE = r"""
import json, os, sys, warnings
env = dict(os.environ)
st = os.fstat(2)
# Third-party libraries install warning filters of their own on import (TensorFlow, TFP): load
# them first, so that what is compared is what tfdecomp adds.
import tensorflow, tensorflow_probability, keras, tensorflow_datasets, matplotlib, sklearn
filters = list(warnings.filters)
import tfdecomp
import tfdecomp.data, tfdecomp.training, tfdecomp.evaluation, tfdecomp.runs, tfdecomp.plots
import tfdecomp.metrics
st_after = os.fstat(2)
changed = sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k))
print(json.dumps({
    "env_changed": changed,
    "fd2_same": (st.st_dev, st.st_ino) == (st_after.st_dev, st_after.st_ino),
    "filters_same": filters == list(warnings.filters),
}))
sys.stderr.write("stderr-still-works\n")
"""


def test_import_tfdecomp_leaves_the_process_alone():
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                        cwd=REPO, env=env, timeout=300)
  assert done.returncode == 0, done.stderr
  report = json.loads(done.stdout.strip().splitlines()[-1])
  assert report == {"env_changed": [], "fd2_same": True, "filters_same": True}
  assert "stderr-still-works" in done.stderr
  # What TensorFlow's C++ start-up writes to descriptor 2 (CUDA probing, oneDNN notes) reaches
  # the user exactly as with a bare `import tensorflow`: nothing was redirected meanwhile.
  bare = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True,
                        text=True, cwd=REPO, env=env, timeout=300)
  native = [line.split("] ", 1)[1] for line in bare.stderr.splitlines() if ".cc:" in line]
  for message in native:
    assert message in done.stderr, message
