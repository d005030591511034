"""The lab's errors: one root, small subclasses that carry what went wrong.

Only the CLI turns these into exit codes (see ``host.cli.main``); library code raises them.

    LabError                      exit 1 unless a subclass says otherwise
    ├── UsageError                bad option or argument value (exit 2)
    ├── ConfigError               environment or configuration is unusable (exit 2)
    ├── StoreError                the result store cannot be opened, read or written
    │   ├── SchemaError           database schema newer/older than the code
    │   ├── DatabaseUnreachableError  the database server does not answer (exit 2)
    │   └── NotFoundError         an id (run, model, device) that is not in the store
    ├── DeviceError               adb server or device failed
    │   ├── NoDeviceError         nothing to run on (exit 2)
    │   └── DeviceNotFoundError   an unknown serial (exit 2)
    ├── ToolError                 no usable benchmark_model binary
    ├── BenchError                a benchmark trial failed (kept as data, rarely raised)
    ├── BuildError                the model build pipeline failed
    │   ├── DatasetError          dataset missing, unknown or malformed
    │   ├── ModelCheckError       model rejected by the XNNPACK sparse-inference check
    │   └── MissingExtraError     an optional dependency is not installed
    └── DockerError               the Docker engine or an image is unavailable
"""

from __future__ import annotations

__all__ = [
    "LabError",
    "UsageError",
    "ConfigError",
    "StoreError",
    "SchemaError",
    "DatabaseUnreachableError",
    "NotFoundError",
    "DeviceError",
    "NoDeviceError",
    "DeviceNotFoundError",
    "ToolError",
    "BenchError",
    "BuildError",
    "DatasetError",
    "ModelCheckError",
    "MissingExtraError",
    "DockerError",
]


class LabError(Exception):
    """Root of the lab's errors. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(LabError):
    exit_code = 2


class ConfigError(LabError):
    exit_code = 2


class StoreError(LabError):
    pass


class SchemaError(StoreError):
    exit_code = 2


class DatabaseUnreachableError(StoreError):
    exit_code = 2


class NotFoundError(StoreError):
    exit_code = 2


class DeviceError(LabError):
    def __init__(self, message: str, serial: str | None = None) -> None:
        super().__init__(message)
        self.serial = serial


class NoDeviceError(DeviceError):
    exit_code = 2


class DeviceNotFoundError(DeviceError):
    exit_code = 2


class ToolError(LabError):
    exit_code = 2


class BenchError(LabError):
    def __init__(self, message: str, raw_output: str = "") -> None:
        super().__init__(message)
        self.raw_output = raw_output


class BuildError(LabError):
    pass


class DatasetError(BuildError):
    exit_code = 2


class ModelCheckError(BuildError):
    """The model cannot use XNNPACK's sparse path; ``problems`` holds one message per rule broken."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class MissingExtraError(BuildError):
    exit_code = 2

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed: pip install 'lab[{extra}]'")
        self.package = package
        self.extra = extra


class DockerError(LabError):
    exit_code = 2
