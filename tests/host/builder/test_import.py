"""Without TensorFlow: ``import host.builder`` works and a build names the extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = """
import sys
for name in ("tensorflow", "tf_keras", "tensorflow_model_optimization"):
    sys.modules[name] = None  # makes `import tensorflow` raise ImportError, as if not installed
from pathlib import Path
import host.builder, host.cli
from host.builder import BuildSpec, build, check_spec
from host.errors import MissingExtraError
home = Path(sys.argv[1])
for call in (lambda: build(BuildSpec(dataset="synthetic:20"), home), lambda: check_spec(BuildSpec())):
    try:
        call()
    except MissingExtraError as exc:
        print(exc)
print(sorted(p.name for p in (home / "artifacts").iterdir()))
print("tensorflow" in sys.modules and sys.modules["tensorflow"] is not None)
"""


def test_build_without_tensorflow(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "tensorflow is not installed: pip install 'lab[build]'",
        "tensorflow is not installed: pip install 'lab[build]'",
        "[]",
        "False",
    ]
