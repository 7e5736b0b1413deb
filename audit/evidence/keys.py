"""Ed25519 key pairs for signing attestations (through ``cryptography``).

Private keys are PEM (PKCS#8) files written with mode 0600 and refused when group or others
can read them; they are never stored in the database. A key is named by its fingerprint:
``SHA256:`` and the hex SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.errors import FaceAuditError


class KeyFileError(FaceAuditError):
    """A key file that cannot be used (missing, corrupt, not Ed25519, readable by others)."""


LOOSE = ("{path}: private key is readable by other users (mode {mode}); run 'chmod 600 {path}' - a signing key "
         "others can read proves nothing")


def fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def keygen(out: str | Path) -> tuple[Path, Path]:
    """Write ``OUT`` (private, 0600) and ``OUT.pub``; refuses to overwrite either."""
    priv_path = Path(out)
    pub_path = priv_path.with_name(priv_path.name + ".pub")
    for p in (priv_path, pub_path):
        if os.path.lexists(p):  # a dangling link too: it would make the second file fail after the first was written
            raise KeyFileError(f"{p}: already exists; keys are never overwritten (choose another name)")
    if not priv_path.parent.is_dir():
        raise KeyFileError(f"{priv_path.parent}: no such folder")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        # O_EXCL + mode 0600 at creation: the key is never readable by others, not even for a moment.
        fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        # The key verifiers are told to trust: created anew (never through a planted file or link), readable by all,
        # writable by the owner alone whatever the umask.
        fd = os.open(pub_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write(public_pem(key.public_key()))
    except OSError as exc:
        if priv_path.is_file() and not pub_path.is_file():  # no half-written pair: a retry would find the key taken
            priv_path.unlink()
        raise KeyFileError(f"{exc.filename or priv_path}: cannot write key: {exc.strerror}") from None
    return priv_path, pub_path


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such {what} file") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read {what}: {exc.strerror}") from None


def load_private(path: str | Path) -> Ed25519PrivateKey:
    path = Path(path)
    if path.is_dir():
        raise KeyFileError(f"{path}: is a folder; give the private key file written by 'faceaudit keygen'")
    data = _read(path, "private key")
    if b"-----BEGIN PUBLIC KEY-----" in data[:4096]:  # before the mode check: that is not what is wrong
        raise KeyFileError(f"{path}: is a public key; sign with the private key (the file without .pub written by "
                           "'faceaudit keygen')")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(LOOSE.format(path=path, mode=oct(mode)))
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path}: not a usable PEM private key ({str(exc).splitlines()[0][:120]}); make one with "
                        "'faceaudit keygen'") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: the key is {type(key).__name__.lstrip('_')}, not Ed25519; make one with "
                        "'faceaudit keygen'")
    return key


def load_public(path: str | Path) -> Ed25519PublicKey:
    path = Path(path)
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyFileError(f"{path}: not a PEM public key (give the .pub file written by 'faceaudit keygen')") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: the key is not an Ed25519 public key")
    return key


def public_from_pem(text: str, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(text.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyFileError(f"{where}: the embedded public key is not valid PEM") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{where}: the embedded public key is not Ed25519")
    return key
