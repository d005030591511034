"""lab: the on-device benchmarking lab's host side (everything that runs on the controlling machine)."""

__version__ = "0.1.0"
