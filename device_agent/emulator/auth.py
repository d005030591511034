"""ADB authentication as adbd does it: RSA keys in adb's format, the token, the signature check.

The exchange (AOSP ``packages/modules/adb/protocol.txt``, "AUTH"; captured in docs/PROTOCOL.md)::

    host   CNXN(version, maxdata, "host::…")
    device AUTH(TOKEN=1, 0, 20 random bytes)
    host   AUTH(SIGNATURE=2, 0, RSA signature of the token)     one per key the host holds;
    device AUTH(TOKEN=1, 0, new token)                          a new token after each failure
    host   AUTH(RSAPUBLICKEY=3, 0, "BASE64 user@host\\0")        when no signature was accepted
    device CNXN(…)                                              on a good signature (or an accepted key)

The signature is RSA PKCS#1 v1.5 with the SHA-1 DigestInfo prefix over the token itself (adbd calls
``RSA_verify(NID_sha1, token, 20, …)``: the token stands in for the digest). A key is the base64 of
Android's ``RSAPublicKey`` struct, little-endian u32s: modulus size in words (64 for 2048 bits),
n0inv (−1/n mod 2^32), the modulus, rr (2^(2·2048) mod n), the exponent; then `` user@host``. An
authorized-keys file holds one such line per key, as ``/data/misc/adb/adb_keys`` on a phone.

RSA itself is the ``cryptography`` package's; this module only packs and unpacks adb's format.
"""

from __future__ import annotations

import base64
import getpass
import os
import socket
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from device_agent.errors import AgentError

__all__ = [
    "AUTH_TOKEN", "AUTH_SIGNATURE", "AUTH_RSAPUBLICKEY", "TOKEN_SIZE", "KEY_BITS", "AuthError", "AuthorizedKeys",
    "default_key_path", "decode_public_key", "encode_public_key", "ensure_key_pair", "fingerprint",
    "load_private_key", "sign_token", "verify_signature",
]

AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3
TOKEN_SIZE = 20  # adbd's TOKEN_SIZE: the length of a SHA-1 digest
KEY_BITS = 2048  # what adb generates
_WORDS = KEY_BITS // 32
_STRUCT = struct.Struct(f"<II{_WORDS}I{_WORDS}Ii")


class AuthError(AgentError):
    """A key file that cannot be read, parsed or created."""


def _crypto():  # imported when auth is used: device_agent stays stdlib-only at import time
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
    except ImportError as e:  # pragma: no cover - cryptography is a core dependency
        raise AuthError("ADB authentication needs the 'cryptography' package (pip install cryptography), "
                        "or run the emulator with --no-auth") from e
    return hashes, serialization, padding, rsa, utils


def default_key_path() -> Path:
    """``~/.android/adbkey`` of the user running this, where the adb server keeps its key too."""
    home = os.environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".android" / "adbkey"


def _words(value: int) -> list[int]:
    return [(value >> (32 * i)) & 0xFFFFFFFF for i in range(_WORDS)]


def encode_public_key(public_key, comment: str = "") -> str:
    """adb's text form of an RSA public key: base64 of the RSAPublicKey struct, then `` comment``."""
    numbers = public_key.public_numbers()
    n, e = numbers.n, numbers.e
    if n.bit_length() != KEY_BITS:
        raise AuthError(f"adb keys are {KEY_BITS}-bit RSA; this one has {n.bit_length()} bits")
    n0inv = (-pow(n, -1, 1 << 32)) % (1 << 32)
    rr = pow(2, 2 * KEY_BITS, n)
    raw = _STRUCT.pack(_WORDS, n0inv, *_words(n), *_words(rr), e)
    text = base64.b64encode(raw).decode("ascii")
    return f"{text} {comment}" if comment else text


def decode_public_key(text: str | bytes):
    """The RSA public key of one adb key line (``BASE64 [comment]``).

    Raises:
        AuthError: not base64, the wrong length, a modulus size other than 2048 bits, or fields
            that do not agree (n0inv, rr).
    """
    if isinstance(text, bytes):
        text = text.split(b"\0", 1)[0].decode("ascii", "replace")
    fields = text.strip().split(None, 1)
    if not fields:
        raise AuthError("empty key")
    try:
        raw = base64.b64decode(fields[0], validate=True)
    except ValueError as e:
        raise AuthError(f"key is not base64: {e}") from e
    if len(raw) != _STRUCT.size:
        raise AuthError(f"key is {len(raw)} bytes, expected {_STRUCT.size} (a {KEY_BITS}-bit adb key)")
    values = _STRUCT.unpack(raw)
    words, n0inv, e = values[0], values[1], values[-1]
    n = sum(word << (32 * i) for i, word in enumerate(values[2:2 + _WORDS]))
    rr = sum(word << (32 * i) for i, word in enumerate(values[2 + _WORDS:2 + 2 * _WORDS]))
    if words != _WORDS or n.bit_length() != KEY_BITS or not n & 1:
        raise AuthError(f"key's modulus is not {KEY_BITS} bits")
    if (n * n0inv) % (1 << 32) != 0xFFFFFFFF or rr != pow(2, 2 * KEY_BITS, n) or e < 3:
        raise AuthError("key's fields do not agree (n0inv, rr or exponent)")
    _, _, _, rsa, _ = _crypto()
    return rsa.RSAPublicNumbers(e, n).public_key()


def fingerprint(public_key) -> str:
    """A short, stable name for a key in log lines: the first 16 hex digits of its adb text's SHA-256."""
    import hashlib

    return hashlib.sha256(encode_public_key(public_key).encode()).hexdigest()[:16]


def verify_signature(public_key, token: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s PKCS#1 v1.5 SHA-1 signature of the raw ``token``."""
    hashes, _, padding, _, utils = _crypto()
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_token(private_key, token: bytes) -> bytes:
    """What the adb host sends for a token (tests and benchmarks play the host with it)."""
    hashes, _, padding, _, utils = _crypto()
    return private_key.sign(token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))


def load_private_key(path: Path):
    """The private key of an ``adbkey`` file (PEM). Raises AuthError."""
    _, serialization, _, _, _ = _crypto()
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise AuthError(f"cannot read the adb key {path}: {e}") from e


def ensure_key_pair(private_path: Path) -> Path:
    """Make ``adbkey`` and ``adbkey.pub`` the way adb does when they are missing; returns the .pub path.

    adb writes a 2048-bit RSA key (exponent 65537) as a PKCS#8 PEM file readable by its owner only,
    and the public key in adb's format followed by `` user@host``. An existing private key whose
    .pub is missing gets its .pub back.

    Raises:
        AuthError: the folder or files cannot be written, or the existing key cannot be read.
    """
    _, serialization, _, rsa, _ = _crypto()
    public_path = private_path.with_name(private_path.name + ".pub")
    if public_path.exists():
        return public_path
    try:
        private_path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        if private_path.exists():
            key = load_private_key(private_path)
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
        public_path.write_text(encode_public_key(key.public_key(), _user_at_host()) + "\n")
    except OSError as e:
        raise AuthError(f"cannot create the adb key {private_path}: {e.strerror or e}") from e
    return public_path


def _user_at_host() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class _Entry:
    key: object
    text: str


class AuthorizedKeys:
    """The keys a device accepts: one adb key per line of ``path``, read again when the file changes
    (as adbd rereads adb_keys), so a key added while the device runs counts at once.

    Lines that are not keys are skipped with a warning through ``warn``.
    """

    def __init__(self, path: Path, warn=None) -> None:
        self.path = path
        self._warn = warn or (lambda message: None)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: list[_Entry] = []

    def keys(self) -> list[_Entry]:
        with self._lock:
            try:
                st = self.path.stat()
                stamp = (st.st_mtime_ns, st.st_size)
            except OSError:
                stamp = None
            if stamp != self._stamp:
                self._stamp = stamp
                self._keys = self._read() if stamp else []
            return list(self._keys)

    def _read(self) -> list[_Entry]:
        try:
            lines = self.path.read_text(encoding="ascii", errors="replace").splitlines()
        except OSError as e:
            self._warn(f"cannot read authorized keys {self.path}: {e.strerror or e}")
            return []
        entries = []
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                entries.append(_Entry(decode_public_key(line), line.split(None, 1)[0]))
            except AuthError as e:
                self._warn(f"{self.path}:{number}: not an adb key ({e}); skipped")
        return entries

    def verify(self, token: bytes, signature: bytes):
        """The key that signed ``token`` with ``signature``, or None."""
        for entry in self.keys():
            if verify_signature(entry.key, token, signature):
                return entry.key
        return None

    def add(self, key_text: str) -> None:
        """Append one key line (what a phone does when its user taps "Always allow")."""
        line = key_text.strip().replace("\n", " ")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="ascii", errors="replace") as f:
                f.write(line + "\n")
            self._stamp = None
