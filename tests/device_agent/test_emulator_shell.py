"""The emulated shell's language and commands, run in-process on a real sandbox folder."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from device_agent.emulator.device import Device
from device_agent.emulator.props import device_props
from device_agent.emulator.sandbox import Sandbox
from device_agent.emulator.shell import Shell
from device_agent.emulator.shio import BufferSink, BytesSource
from device_agent.emulator.shparse import ShellSyntaxError, parse


class Run:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.device = Device(Sandbox(root), device_props())
        self.shell = Shell(self.device, BufferSink(), BufferSink())

    def __call__(self, text: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        out, err = BufferSink(), BufferSink()
        self.shell.stdout, self.shell.stderr = out, err
        if stdin is not None:
            self.shell.stdin = BytesSource(stdin)
        status = self.shell.run(text)
        return status, out.getvalue().decode(), err.getvalue().decode()


@pytest.fixture
def run(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    return Run(root)


@pytest.mark.parametrize(("text", "expected"), [
    ("echo a   b", "a b\n"),
    ("echo 'a   b' \"c  d\"", "a   b c  d\n"),
    ("echo it\\'s \"say \\\"hi\\\"\" 'back\\slash'", "it's say \"hi\" back\\slash\n"),
    ("echo \"$HOME\" '$HOME' \\$HOME ${TMPDIR}", "/ $HOME $HOME /data/local/tmp\n"),
    ("echo a\\\nb", "ab\n"),
    ("echo x # a comment", "x\n"),
    ("echo a#b", "a#b\n"),
    ("echo -n no newline", "no newline"),
    ("echo -e 'tab\\there\\n'", "tab\there\n\n"),
    ("echo $NOPE x", "x\n"),
    ("echo \"$NOPE\" x", " x\n"),
    ("A=1; echo $A; B=2 true; echo \"[$B]\"", "1\n[]\n"),
    ("echo one\necho two", "one\ntwo\n"),
    ("true && echo yes || echo no", "yes\n"),
    ("false && echo yes || echo no", "no\n"),
    ("false; echo $?; true; echo ${?}", "1\n0\n"),
    ("nosuch; echo $?", "127\n"),
    ("false || false && echo never; echo $?", "1\n"),
    ("true ||\necho skipped\necho after", "after\n"),
])
def test_language(run, text, expected):
    status, out, _ = run(text)
    assert out == expected


@pytest.mark.parametrize(("text", "message"), [
    ("echo 'open", "unterminated quoted string starting at column 6"),
    ('echo "open', "unterminated quoted string starting at column 6"),
    ("; echo", "unexpected ';': a command is missing before it"),
    ("echo a ;; echo b", "unexpected ';': a command is missing before it"),
    ("echo &&", "unexpected end of command after '&&'"),
    ("| echo", "unexpected '|': a command is missing before it"),
    ("echo $(id)", "command substitution $( ) is not supported by the emulated device's shell"),
    ("echo `id`", "command substitution (`…`) is not supported"),
    ("sleep 1 &", "background jobs (&) are not supported"),
    ("(echo)", "subshells ( ) are not supported"),
    ("cat <<EOF", "here-documents (<<) are not supported"),
    ("echo >", "redirection > has no target"),
    ("echo ${a b}", "bad substitution"),
    ("echo 2>&7", "bad file descriptor in >&7"),
])
def test_syntax_errors_name_the_problem(run, text, message):
    with pytest.raises(ShellSyntaxError, match=message.replace("(", r"\(").replace(")", r"\)").replace("$", r"\$")):
        parse(text)
    status, out, err = run(text)
    assert (status, out) == (2, "")
    assert err.startswith("/system/bin/sh: syntax error: ") and message in err


def test_exit_stops_the_script(run):
    assert run("echo a; exit 4; echo b") == (4, "a\n", "")
    assert run("false; exit") == (1, "", "")
    assert run("exit 300") == (44, "", "")


def test_redirections(run):
    assert run("echo hi > /data/local/tmp/f; echo more >> /data/local/tmp/f; cat /data/local/tmp/f") == (0, "hi\nmore\n", "")
    assert run("ls /nope 2>/dev/null; echo $?") == (0, "1\n", "")
    assert run("ls /nope 2>&1") == (1, "ls: /nope: No such file or directory\n", "")
    assert run("ls /nope 2>&1 >/dev/null") == (1, "ls: /nope: No such file or directory\n", "")
    assert run("ls /nope >/dev/null 2>&1") == (1, "", "")
    assert run("echo err >&2") == (0, "", "err\n")
    assert run("ls /nope &> /data/local/tmp/both; cat /data/local/tmp/both")[1] == "ls: /nope: No such file or directory\n"
    assert run("cd /data/local/tmp && sha256sum < f")[1] == hashlib.sha256(b"hi\nmore\n").hexdigest() + "  -\n"
    assert run("echo x > /data/local/tmp/missing/f") == (
        1, "", "/system/bin/sh: can't create /data/local/tmp/missing/f: No such file or directory\n")


def test_pipes_pass_output_along(run):
    assert run("echo abc | sha256sum")[1] == hashlib.sha256(b"abc\n").hexdigest() + "  -\n"
    assert run("echo abc | cat | cat -") == (0, "abc\n", "")
    assert run("nosuch | echo after; echo $?") == (0, "after\n0\n", "/system/bin/sh: nosuch: inaccessible or not found\n")


def test_files(run):
    assert run("mkdir -p /data/local/tmp/a/b && cd /data/local/tmp/a && pwd") == (0, "/data/local/tmp/a\n", "")
    assert run("echo data > b/f.txt; ls; ls b") == (0, "b\nf.txt\n", "")
    assert run("mkdir b") == (1, "", "mkdir: b: File exists\n")
    assert run("mkdir x/y") == (1, "", "mkdir: x/y: No such file or directory\n")
    assert run("chmod 750 b/f.txt")[0] == 0
    assert stat.S_IMODE(os.stat(run.root / "a/b/f.txt").st_mode) == 0o750
    assert run("chmod go-rx,u-w b/f.txt")[0] == 0
    assert stat.S_IMODE(os.stat(run.root / "a/b/f.txt").st_mode) == 0o500
    assert run("chmod a+w b/f.txt")[0] == 0 and stat.S_IMODE(os.stat(run.root / "a/b/f.txt").st_mode) == 0o722
    assert run("chmod bad b/f.txt") == (1, "", "chmod: bad mode 'bad'\n")
    status, out, _ = run("ls -l b")
    assert status == 0 and out.startswith("-rwx-w--w-  1 shell shell        5 ") and out.endswith(" f.txt\n")
    assert run("ls -a /data/local/tmp") == (0, ".\n..\na\n", "")
    assert run("md5sum b/f.txt") == (0, hashlib.md5(b"data\n").hexdigest() + "  b/f.txt\n", "")
    assert run("sha256sum -b b/f.txt") == (0, hashlib.sha256(b"data\n").hexdigest() + "\n", "")
    assert run("rm b") == (1, "", "rm: b: Is a directory\n")
    assert run("rm -f nothing; echo $?") == (0, "0\n", "")
    assert run("rm nothing") == (1, "", "rm: nothing: No such file or directory\n")
    assert run("rm -rf b && ls") == (0, "", "")
    assert run("cd /nope") == (1, "", "cd: /nope: No such file or directory\n")
    assert run("ls -z") == (1, "", "ls: Unknown option 'z'\n")


def test_test_builtin(run):
    (run.root / "f").write_text("x")
    (run.root / "empty").write_text("")
    cases = {
        "test -f /data/local/tmp/f": 0, "[ -d /data/local/tmp ]": 0, "[ -e /data/local/tmp/nope ]": 1,
        "[ -s /data/local/tmp/empty ]": 1, "[ -x /data/local/tmp/f ]": 1, "[ ! -e /data/local/tmp/nope ]": 0,
        "[ -w /proc/cpuinfo ]": 1, "[ a = a ]": 0, "[ a != a ]": 1, "[ 3 -lt 10 ]": 0, "[ -z '' ]": 0,
        "[ -n '' ]": 1, "[ x ]": 0, "[ ]": 1, "[ 1 -eq x ]": 2, "[ -f x": 2,
    }
    assert {command: run(command)[0] for command in cases} == cases


def test_device_facts_commands(run):
    assert run("uname -m") == (0, os.uname().machine + "\n", "")
    assert run("uname") == (0, "Linux\n", "")
    assert run("nproc") == (0, f"{len(os.sched_getaffinity(0))}\n", "")
    status, out, _ = run("df /data/local/tmp")
    assert status == 0 and out.splitlines()[0].split()[:2] == ["Filesystem", "1K-blocks"]
    assert out.splitlines()[1].endswith(" /data")
    assert run("getprop ro.build.version.release") == (0, "14\n", "")
    assert run("/system/bin/getprop ro.hardware") == (0, "lab\n", "")
    assert run("cat /proc/cpuinfo")[1] == Path("/proc/cpuinfo").read_text()
    assert run("sleep 0 0.01s; echo $?") == (0, "0\n", "")
    assert run("sleep x") == (1, "", "sleep: invalid number 'x'\n")


def test_globs(run):
    for name in ("a1", "a2", "b1", ".hidden"):
        (run.root / name).write_text(name)
    assert run("cd /data/local/tmp; echo a* ?1 [ab]2 .h* 'a*' \"?1\" nomatch*") == (
        0, "a1 a2 a1 b1 a2 .hidden a* ?1 nomatch*\n", "")
    assert run("echo /data/local/*/b1 /*/local") == (0, "/data/local/tmp/b1 /data/local\n", "")
    assert run("echo /proc/cpu*") == (0, "/proc/cpuinfo\n", "")


def test_ulimit_f_bounds_what_redirections_write(run):
    """`ulimit -f BLOCKS` (512-byte blocks, as mksh): a write past it stops the command as SIGXFSZ
    would (status 153) and leaves the file at the limit; the shell goes on."""
    big = "x" * 3000
    assert run("ulimit") == (0, "unlimited\n", "")
    assert run(f"ulimit -f 2; ulimit -f; echo {big} > /data/local/tmp/out; echo $?") == (0, "2\n153\n", "")
    assert (run.root / "out").stat().st_size == 1024
    assert run("echo small > /data/local/tmp/small; echo $?") == (0, "0\n", "")  # within the limit
    assert run(f"ulimit -f unlimited; echo {big} > /data/local/tmp/out; echo $?") == (0, "0\n", "")
    assert (run.root / "out").stat().st_size == 3001
    assert run("ulimit -f lots") == (1, "", "ulimit: lots: bad number\n")
    assert run("ulimit -n 5")[0] == 1


def test_storage_capacity_shows_in_df_and_cuts_writes(tmp_path):
    """`--storage`: df reports the device's size, a push past it fails with ENOSPC, and a redirection
    keeps what fits (the writer, like a program ignoring ENOSPC, goes on)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "filler").write_bytes(b"f" * 6000)
    run = Run(root)
    run.device = Device(Sandbox(root, capacity=8192), device_props())
    run.shell = Shell(run.device, BufferSink(), BufferSink())
    status, out, _ = run("df /data/local/tmp")
    assert status == 0 and out.splitlines()[1].split()[1:4] == ["8", "5", "2"]  # 1K-blocks, used, available
    assert run(f"echo {'y' * 3000} > /data/local/tmp/out; echo $?") == (0, "0\n", "")
    assert (root / "out").stat().st_size == 8192 - 6000
    pending = run.device.sandbox.begin_write("/data/local/tmp/pushed")
    with pytest.raises(OSError, match="No space left on device"):
        pending.write(b"z" * 10)
    pending.discard()
