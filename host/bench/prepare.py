"""Getting a device ready for its trials: which benchmark_model it runs, and the files it needs.

Tool choice, in order: ``--binary PATH`` (one-off) > the cached tool for the device's ABIs >
the device's own ``benchmark_model`` on its shell PATH (the emulated device) > an error naming the
ABI and both ways to get a tool. A binary is checked against the device's ABIs from its ELF
header before anything is pushed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from host.bench.trial import DeviceSession, builtin_tool
from host.devices.elf import SCRIPT
from host.devices.push import REMOTE_BIN_DIR, REMOTE_DIR, PushItem, push_files, remote_model_path
from host.devices.shell import DeviceShell
from host.devices.state import FIXED_PERFORMANCE_MIN_SDK, StateReader
from host.devices.tools import cached_tool_for, check_binary_for, missing_tool_message
from host.hashing import file_sha256
from host.errors import DeviceError, ToolError
from host.records import DeviceFacts, ModelFile, ToolInfo

__all__ = ["prepare_session", "BUILTIN_COMMAND"]

BUILTIN_COMMAND = "benchmark_model"
_PROBE_TIMEOUT_S = 60.0
_NOT_FOUND = 127


def _remote_binary(sha256: str) -> str:
    return f"{REMOTE_BIN_DIR}/benchmark_model-{sha256[:16]}"


def _choose_tool(
    shell: DeviceShell, facts: DeviceFacts, binary: Path | None, home: Path
) -> tuple[ToolInfo, Path | None, bool]:
    """(tool, local file to push or None for the builtin, whether it writes --samples_file)."""
    if binary is not None:
        if not binary.is_file():
            raise ToolError(f"benchmark binary {binary} does not exist")
        abi = check_binary_for(binary, facts)
        info = ToolInfo(
            sha256=file_sha256(binary),
            abi=facts.abi if abi == SCRIPT else abi,
            path=str(binary.resolve()),
            source=f"binary:{binary.resolve()}",
        )
        return info, binary, False
    cached = cached_tool_for(home, facts)
    if cached is not None and cached.path is not None:
        path = Path(cached.path)
        check_binary_for(path, facts)
        return cached, path, False
    probe = shell.run([BUILTIN_COMMAND, "--help"], timeout=_PROBE_TIMEOUT_S)
    if probe.returncode == _NOT_FOUND:
        raise ToolError(missing_tool_message(facts))
    return builtin_tool(facts.abi, None), None, "--samples_file" in probe.output


def prepare_session(
    shell: DeviceShell,
    facts: DeviceFacts,
    models: Sequence[ModelFile],
    *,
    binary: Path | None,
    home: Path,
    note: Callable[[str], None] = lambda message: None,
    work: str | None = None,
) -> DeviceSession:
    """Chooses the tool, pushes what the device lacks, makes the run's work folder ``work`` (its
    outputs go there), finds its state files, and turns on fixed-performance mode where the device has it.

    Raises:
        ToolError, WrongAbiError: no usable benchmark_model for this device.
        DeviceError (and subclasses): the device failed or has no room.
    """
    tool, local_tool, samples = _choose_tool(shell, facts, binary, home)
    items = [PushItem(Path(m.path), m.sha256, remote_model_path(m.sha256)) for m in models]
    command = BUILTIN_COMMAND
    if local_tool is not None:
        command = _remote_binary(tool.sha256)
        items.insert(0, PushItem(local_tool, tool.sha256, command, executable=True))
    pushed = push_files(shell, items)
    if any(p.pushed for p in pushed):
        note(f"pushed {sum(p.pushed for p in pushed)} file(s)")
    if work is not None:
        made = shell.run(["mkdir", "-p", work])
        if made.returncode != 0:
            raise DeviceError(f"cannot make the run's folder {work} on the device: {made.output.strip()}", facts.serial)
    state = StateReader(shell, facts)
    state.discover()
    session = DeviceSession(
        shell=shell,
        facts=facts,
        state=state,
        tool=tool,
        tool_command=command,
        samples=samples,
        remote_models={m.sha256: remote_model_path(m.sha256) for m in models},
        work_dir=work or REMOTE_DIR,
    )
    session.fixed_performance = state.set_fixed_performance(True)
    if session.fixed_performance:
        note("fixed-performance mode on for the run (off again when it ends)")
    else:
        why = _no_fixed_performance(facts, state.fixed_performance_refusal)
        if why is not None:
            note(why)
    return session


def _no_fixed_performance(facts: DeviceFacts, refusal: str | None) -> str | None:
    """Why the clocks are left to the governor on this device; None for the lab's plain emulated
    device, which has no ``cmd`` and no clocks of its own to hold."""
    if facts.sdk is not None and facts.sdk < FIXED_PERFORMANCE_MIN_SDK:
        return (f"fixed-performance mode skipped: Android {facts.release or '?'} (SDK {facts.sdk}) predates it "
                f"(SDK {FIXED_PERFORMANCE_MIN_SDK}+); clocks follow the governor, so watch for throttled trials")
    if refusal is not None:
        return f"fixed-performance mode unavailable (`cmd power` answered: {refusal}); clocks follow the governor"
    if facts.kind == "emulated":
        return None
    return "fixed-performance mode unavailable (no `cmd` on the device); clocks follow the governor"
