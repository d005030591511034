"""The device side of lab: a LiteRT benchmark_model runner, device facts, and the emulated device.

Imports only the standard library at import time; numpy and ai-edge-litert are imported by the
functions that need them. Never imports ``host``.
"""

__version__ = "0.1.0"
