"""Errors of the device layer, under ``host.errors.DeviceError`` and ``ToolError``.

Their place in the tree of the lab's errors, with a line each, is on the page of ``host.errors``.
"""

from __future__ import annotations

from host.errors import DeviceError, ToolError

__all__ = ["DeviceGoneError", "ShellTimeoutError", "OutputTooLargeError", "NoSpaceError", "DeviceBusyError", "WrongAbiError"]


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


class OutputTooLargeError(DeviceError):
    """A shell command printed more than its ``max_output``; the host stopped reading there.

    ``output`` is the start of what it printed (up to the cap).
    """

    def __init__(self, message: str, serial: str | None = None, output: str = "") -> None:
        super().__init__(message, serial)
        self.output = output


class NoSpaceError(DeviceError):
    """Not enough free space on the device (before a push, or found full after a trial)."""


class WrongAbiError(ToolError):
    """``binary_abi`` is what the ELF header says; ``device_abis`` what the device runs."""

    def __init__(self, message: str, binary_abi: str, device_abis: tuple[str, ...]) -> None:
        super().__init__(message)
        self.binary_abi = binary_abi
        self.device_abis = device_abis


class DeviceBusyError(DeviceError):
    """Another run holds the device's lock (``host.devices.lock``)."""
