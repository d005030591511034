"""Errors of the device layer, under ``host.errors.DeviceError`` / ``ToolError``.

    DeviceError
    ├── DeviceGoneError       the device left mid-operation (unplugged, process killed, offline)
    ├── ShellTimeoutError     a device command ran past its time limit
    ├── NoSpaceError          not enough free space under /data/local/tmp for a push
    └── DeviceBusyError       another run holds the device's lock
    ToolError
    └── WrongAbiError         a benchmark binary built for another CPU than the device's
"""

from __future__ import annotations

from host.errors import DeviceError, ToolError

__all__ = ["DeviceGoneError", "ShellTimeoutError", "NoSpaceError", "DeviceBusyError", "WrongAbiError"]


class DeviceGoneError(DeviceError):
    """The device stopped answering: adb reports it missing or offline, or the stream broke.

    ``output`` is what the interrupted command printed before.
    """

    def __init__(self, message: str, serial: str | None = None, output: str = "") -> None:
        super().__init__(message, serial)
        self.output = output


class ShellTimeoutError(DeviceError):
    """A shell command did not finish in time. ``output`` is what it printed before."""

    def __init__(self, message: str, serial: str | None = None, output: str = "") -> None:
        super().__init__(message, serial)
        self.output = output


class NoSpaceError(DeviceError):
    pass


class WrongAbiError(ToolError):
    """``binary_abi`` is what the ELF header says; ``device_abis`` what the device runs."""

    def __init__(self, message: str, binary_abi: str, device_abis: tuple[str, ...]) -> None:
        super().__init__(message)
        self.binary_abi = binary_abi
        self.device_abis = device_abis


class DeviceBusyError(DeviceError):
    """Another run holds the device's lock (``host.devices.lock``)."""
