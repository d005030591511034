"""The model build pipeline (``lab build``): train, check for XNNPACK, prune, convert, verify, cache.

Importing this package never imports TensorFlow; the functions that need it import it when they
run and raise ``MissingExtraError`` (``pip install 'lab[build]'``) when it is missing.
"""

from __future__ import annotations

from host.builder.pipeline import BuildResult, build, check_spec, run_build
from host.builder.progress import STAGES, BuildProgress, NullProgress, Stage
from host.builder.recipes import ModelFileError
from host.builder.spec import GUIDE_DEFAULTS, QUICK_DEFAULTS, BuildSpec, Hyperparameters
from host.builder.xnnpack_check import (
    CheckReport,
    ModelProblem,
    check_model,
    check_model_file,
    find_problems,
    fix_keepdims,
)

__all__ = [
    "BuildSpec",
    "Hyperparameters",
    "GUIDE_DEFAULTS",
    "QUICK_DEFAULTS",
    "BuildResult",
    "BuildProgress",
    "NullProgress",
    "Stage",
    "STAGES",
    "ModelFileError",
    "CheckReport",
    "ModelProblem",
    "build",
    "run_build",
    "check_spec",
    "check_model",
    "check_model_file",
    "find_problems",
    "fix_keepdims",
]
