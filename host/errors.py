"""The lab's errors: one root, small subclasses that carry what went wrong.

Only the CLI turns these into exit codes (``exit_code``, see ``host.cli.main``); library code
raises them. This is the whole tree of the host's errors, wherever each class is defined: one
defined outside this module names its module in brackets; an exit code is given where it differs
from the parent's. ``tests/test_errors_tree.py`` checks the page both ways (every subclass of
``LabError`` is here under its real parent with its exit code; every name here exists). The
device agent's own errors (``AgentError``: device_agent never imports host) are listed in
``device_agent.errors``.

    LabError                      the root: the CLI prints the message and exits (exit 1)
    ├── UsageError                a bad option or argument value (exit 2)
    │   └── FarmNeedsServerError  the farm pointed at SQLite, a file other hosts cannot share [host.farm._errors]
    ├── ConfigError               the environment or configuration is unusable (exit 2)
    ├── StoreError                the result store cannot be opened, read or written
    │   ├── SchemaError           the database schema is newer than this code (exit 2)
    │   ├── DatabaseUnreachableError  the database server does not answer (exit 2)
    │   ├── NotFoundError         an id (run, model, device) that is not in the store (exit 2)
    │   └── ImportFileError       a line of an import file that cannot be read (exit 2) [host.store.queries.transfer]
    ├── DeviceError               the adb server or a device failed
    │   ├── NoDeviceError         nothing to run on (exit 2)
    │   ├── DeviceNotFoundError   an unknown serial (exit 2)
    │   ├── DeviceGoneError       the device left mid-operation (unplugged, killed, offline) [host.devices.errors]
    │   ├── ShellTimeoutError     a device command ran past its time limit [host.devices.errors]
    │   ├── OutputTooLargeError   a device command printed more than the host reads of it [host.devices.errors]
    │   ├── NoSpaceError          not enough free space under /data/local/tmp [host.devices.errors]
    │   └── DeviceBusyError       another run holds the device's lock [host.devices.errors]
    ├── ToolError                 no usable benchmark_model binary (exit 2)
    │   └── WrongAbiError         a binary built for another CPU than the device's [host.devices.errors]
    ├── BuildError                the model build pipeline failed
    │   ├── DatasetError          dataset missing, unknown or malformed (exit 2)
    │   ├── ModelCheckError       model rejected by the XNNPACK sparse-inference check (exit 2)
    │   ├── MissingExtraError     an optional dependency is not installed (exit 2)
    │   ├── ModelFileError        the --model file is missing, wrong or unloadable (exit 2) [host.builder.recipes]
    │   └── ContainerBuildError   the build failed in the container; keeps its exit code [host.builder.docker]
    ├── DockerError               the Docker engine or an image is unavailable (exit 2)
    │   ├── EngineUnavailableError  no engine answers at DOCKER_HOST [host.images]
    │   ├── ImageMissingError     the engine lacks an image; names the command that builds it [host.images]
    │   └── ImageBuildError       an image build failed; holds the builder's last lines (exit 1) [host.images]
    ├── FarmError                 the farm cannot do it (no device for --all, a job gone) (exit 2) [host.farm._errors]
    ├── JobTimeoutError           `lab submit --wait --timeout` ran out with jobs unfinished [host.farm._errors]
    ├── _JobLost                  inside the farm agent: the job stopped being this agent's [host.farm._agent]
    └── _JobReleased              inside the farm agent: it gives its jobs back (SIGTERM) [host.farm._agent]
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
