"""The device agent's errors.

    AgentError
    ├── OutputParseError     benchmark_model output that cannot be read (quotes the text)
    ├── RunnerError          the runner could not load or run a model
    └── ProtocolError        malformed ADB traffic (closes that connection only)
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
