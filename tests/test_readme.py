"""README.md's Python blocks run as written.

Every fenced block whose info string is exactly `python` is executed, in order, in one fresh
process (later blocks may use names defined by earlier ones), from a temporary working directory.
A block meant only for reading is fenced as `python notest`.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def python_blocks(text):
  return re.findall(r"^```python[ \t]*\n(.*?)^```", text, flags=re.S | re.M)


def test_the_readme_has_runnable_blocks():
  blocks = python_blocks((REPO / "README.md").read_text(encoding="utf-8"))
  assert len(blocks) >= 3
  assert not python_blocks("```python notest\nraise SystemExit(1)\n```\n")


@pytest.mark.slow
def test_readme_python_blocks_run(tmp_path):
  blocks = python_blocks((REPO / "README.md").read_text(encoding="utf-8"))
  script = "\n\n".join(f"# --- README block {i + 1}\n{block}" for i, block in enumerate(blocks))
  (tmp_path / "readme_blocks.py").write_text(script, encoding="utf-8")
  env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
  done = subprocess.run([sys.executable, "readme_blocks.py"], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=900)
  assert done.returncode == 0, done.stderr[-3000:]
