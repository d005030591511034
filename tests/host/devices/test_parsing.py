"""Reading what devices print: df, dumpsys battery, thermal temperatures, sectioned output."""

from __future__ import annotations

from host.devices.discovery import state_problem
from host.devices.push import parse_df_available
from host.devices.state import millidegrees_to_c, parse_battery


def test_df_toybox() -> None:
    text = (
        "Filesystem      1K-blocks     Used Available Use% Mounted on\n"
        "/dev/block/dm-5 115249236 23456789  91792447  21% /data\n"
    )
    assert parse_df_available(text) == 91792447 * 1024


def test_df_wrapped_row() -> None:
    text = (
        "Filesystem 1K-blocks Used Available Use% Mounted on\n"
        "/dev/mapper/a-very-long-volume-name\n"
        "             2048000  1024000   1024000  50% /data\n"
    )
    assert parse_df_available(text) == 1024000 * 1024


def test_df_old_toolbox() -> None:
    text = (
        "Filesystem               Size     Used     Free   Blksize\n"
        "/data                   12.8G     3.3G     9.5G   4096\n"
    )
    assert parse_df_available(text) == int(9.5 * (1 << 30))


def test_df_human_readable() -> None:
    text = "Filesystem      Size  Used Avail Use% Mounted on\n/dev/block/lab  50G   20G   30G  40% /data\n"
    assert parse_df_available(text) == 30 * (1 << 30)


def test_df_unreadable() -> None:
    assert parse_df_available("") is None
    assert parse_df_available("df: /data/local/tmp/lab: No such file or directory\n") is None
    assert parse_df_available("Filesystem Size\n/data 1G\n") is None


def test_battery() -> None:
    text = """Current Battery Service state:
  AC powered: false
  USB powered: true
  Wireless powered: false
  Max charging current: 500000
  status: 2
  health: 2
  present: true
  level: 85
  scale: 100
  voltage: 4168
  temperature: 293
  technology: Li-ion
"""
    assert parse_battery(text) == (85, 29.3, True)
    discharging = text.replace("status: 2", "status: 3").replace("USB powered: true", "USB powered: false")
    assert parse_battery(discharging) == (85, 29.3, False)
    no_status = "\n".join(line for line in text.splitlines() if "status" not in line)
    assert parse_battery(no_status)[2] is True  # powered over USB
    assert parse_battery("/system/bin/sh: dumpsys: inaccessible or not found") == (None, None, None)


def test_thermal_units() -> None:
    assert millidegrees_to_c("45000\n") == 45.0
    assert millidegrees_to_c("38") == 38.0
    assert millidegrees_to_c("-") is None
    assert millidegrees_to_c("") is None


def test_what_to_do_about_each_adb_state() -> None:
    assert state_problem("device") is None
    unauthorized = state_problem("unauthorized")
    assert unauthorized is not None and "accept the 'Allow USB debugging?' prompt" in unauthorized
    offline = state_problem("offline")
    assert offline is not None and "adb reconnect offline" in offline
    no_permissions = state_problem("no")  # adb lists "no permissions (...)"; its first word is the state
    assert no_permissions is not None and "udev rule" in no_permissions
    assert state_problem("recovery") == "in recovery: reboot it into Android"
    assert state_problem("host") == "host: not ready for commands"
