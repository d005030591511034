"""Devices: the adb server, discovery and facts, state snapshots, pushing, benchmark tools, and
the emulated devices the lab starts itself."""

from __future__ import annotations

from host.devices.adb import adb_client, adb_executable, server_address
from host.devices.discovery import DeviceEntry, list_devices, select_devices
from host.devices.emulated import (
    EmulatedDeviceHandle,
    list_emulated_devices,
    start_emulated_device,
    stop_emulated_device,
)
from host.devices.errors import DeviceGoneError, NoSpaceError, ShellTimeoutError, WrongAbiError
from host.devices.facts import read_facts
from host.devices.push import PushItem, PushResult, push_files, remote_model_path
from host.devices.shell import DeviceShell, ShellResult
from host.devices.state import StateReader
from host.devices.tools import CachedTool, add_tool, cached_tool_for, fetch_tool, list_tools

__all__ = [
    "adb_client",
    "adb_executable",
    "server_address",
    "DeviceEntry",
    "list_devices",
    "select_devices",
    "EmulatedDeviceHandle",
    "list_emulated_devices",
    "start_emulated_device",
    "stop_emulated_device",
    "DeviceGoneError",
    "NoSpaceError",
    "ShellTimeoutError",
    "WrongAbiError",
    "read_facts",
    "PushItem",
    "PushResult",
    "push_files",
    "remote_model_path",
    "DeviceShell",
    "ShellResult",
    "StateReader",
    "CachedTool",
    "add_tool",
    "cached_tool_for",
    "fetch_tool",
    "list_tools",
]
