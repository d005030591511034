"""The device agent's errors: the whole tree, wherever each class is defined.

A class defined outside this module names its module in brackets. ``tests/test_errors_tree.py``
checks this page both ways (every subclass of ``AgentError`` is here under its real parent; every
name here exists). device_agent never imports host: the host's errors (``LabError``) have their
own page in ``host.errors``.

    AgentError                    the root of the device agent's errors
    ├── OutputParseError          benchmark_model output that cannot be read (quotes the text)
    ├── RunnerError               the runner could not load or run a model
    │   └── BenchmarkFailed       a failed run, as the ERROR: lines benchmark_model prints [device_agent.failure]
    ├── ProtocolError             malformed ADB traffic (closes that connection only)
    ├── AuthError                 an ADB key file that cannot be read, parsed or created [device_agent.emulator.auth]
    ├── EmulatorStartError        the emulated device did not start listening [device_agent.emulator.launch]
    ├── ShellSyntaxError          a command line the emulated shell cannot parse [device_agent.emulator.shparse]
    ├── SandboxError              a device path that cannot be used as asked [device_agent.emulator.sandbox]
    │   └── PathEscapeError       a path whose symbolic links lead out of the sandbox [device_agent.emulator.sandbox]
    └── QemuError                 a QEMU userland problem (an unknown CPU, a failed tool) [device_agent.qemu.errors]
        ├── MissingToolError      a host tool is missing; names its Debian package [device_agent.qemu.errors]
        ├── MissingUserlandError  no prepared userland; gives the command that prepares it [device_agent.qemu.errors]
        ├── PrepareError          a preparation step failed; quotes the tool's output [device_agent.qemu.errors]
        ├── MirrorError           the Debian mirror cannot be reached or answered wrongly [device_agent.qemu.errors]
        └── NoSpaceError          not enough free disk for the userland [device_agent.qemu.errors]
"""

from __future__ import annotations

__all__ = ["AgentError", "OutputParseError", "RunnerError", "ProtocolError"]


class AgentError(Exception):
    """Root of the device agent's errors."""


class OutputParseError(AgentError):
    """benchmark_model output that cannot be read. ``text`` is the offending excerpt."""

    def __init__(self, message: str, text: str = "") -> None:
        super().__init__(f"{message}: {text!r}" if text else message)
        self.text = text


class RunnerError(AgentError):
    pass


class ProtocolError(AgentError):
    pass
