"""The emulated device: ADB device protocol on TCP, a sandboxed file system and shell.

``python -m device_agent emulator`` (``server.main``) serves one device. The modules, bottom up:

    protocol   packet framing, commands, limits
    streams    one connection: handshake, streams, flow control, bad input
    services   the OPEN-able services (shell v1/v2, exec) and their dispatch
    sync       the sync: service (STAT, STA2/LST2, LIST, SEND, RECV)
    sandbox    device paths → the sandbox root and read-only /proc and /sys views
    shparse    the shell language → commands; shell runs them; commands is the command table
    process    real processes: the built-in benchmark_model and pushed executables
    props      getprop's table and the CNXN banner
    device     what all connections of one device share
    launch     start a device in a child process (tests, benchmarks, the host)
"""
