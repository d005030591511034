"""The emulated device: ADB device protocol on TCP, a sandboxed file system and shell.

``python -m device_agent emulator`` (``server.main``) serves one device. The modules, bottom up:

    limits     every limit the device enforces (documented in docs/PROTOCOL.md)
    protocol   packet framing and commands
    auth       ADB authentication: adb's RSA key format, tokens, signatures, authorized keys
    streams    one connection: handshake, AUTH, streams, flow control, bad input (no thread of its own)
    services   the OPEN-able services (shell v1/v2, exec) and their dispatch
    sync       the sync: service (STAT, STA2/LST2, LIST, SEND, RECV)
    sandbox    device paths → the sandbox root and read-only /proc and /sys views
    shparse    the shell language → commands; shell runs them; commands is the command table
    process    real processes: the built-in benchmark_model and pushed executables
    confine    how those processes are confined (namespaces, uid, limits, clean environment);
               _confine_exec runs each one so (standard library only)
    props      getprop's table and the CNXN banner
    phone      a phone profile (device_agent/profiles) come alive: heat, caps, its files and dumpsys;
               phone_runner pads benchmark_model's invokes to the phone's simulated speed
    device     what all connections of one device share
    server     the event loop, the worker pool, the options (``main``)
    launch     start a device in a child process (tests, benchmarks, the host)
"""
