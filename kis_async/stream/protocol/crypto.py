"""AES-256-CBC decryption of execution notices (protocol doc §8)."""

from __future__ import annotations

import base64
import binascii
import threading
from typing import Any, Final

from kis_async.stream.protocol.frames import FrameError

#: (key, iv) -> Cipher, for :func:`encrypt_payload` (tests and simulators).
_CIPHERS: dict[tuple[str, str], Any] = {}
#: PKCS#7 pad suffixes by pad length.
_PADS: Final = tuple(bytes([n]) * n for n in range(17))
#: Per thread: key -> an AES block decryptor (see :func:`_block_decryptor`).
_BLOCKS = threading.local()


def _cipher(key: str, iv: str) -> Any:
    cipher = _CIPHERS.get((key, iv))
    if cipher is None:
        # cryptography loads on first use, not when kis_async is imported.
        from cryptography.hazmat.primitives.ciphers import (  # noqa: PLC0415
            Cipher,
            algorithms,
            modes,
        )

        cipher = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode()))
        if len(_CIPHERS) >= 64:
            _CIPHERS.clear()
        _CIPHERS[(key, iv)] = cipher
    return cipher


def _block_decryptor(key: str) -> Any:
    """A reusable AES block decryptor for ``key`` (one per thread: contexts are not shared).

    CBC decryption is ``P_i = D(C_i) xor C_(i-1)`` with ``C_0`` the iv. The block step D keeps
    no state between whole blocks, so one context serves every frame of a session's key and
    no decryption context is built per frame (building one cost as much as the decryption);
    the chaining xor is done in :func:`decrypt_payload`. It only ever decrypts.
    """
    cache: dict[str, Any] | None = getattr(_BLOCKS, "by_key", None)
    if cache is None:
        cache = _BLOCKS.by_key = {}
    block = cache.get(key)
    if block is None:
        # cryptography loads on the first notice, not when kis_async is imported.
        from cryptography.hazmat.primitives.ciphers import (  # noqa: PLC0415
            Cipher,
            algorithms,
            modes,
        )

        block = Cipher(algorithms.AES(key.encode()), modes.ECB()).decryptor()  # noqa: S305
        if len(cache) >= 64:
            cache.clear()
        cache[key] = block
    return block


def decrypt_payload(payload: str, key: str, iv: str) -> str:
    """Decrypt a notice payload: base64, AES-256-CBC (key/iv as UTF-8 bytes), PKCS7, UTF-8.

    Raises:
        FrameError: bad base64, wrong key/iv, bad padding or non-UTF-8 plaintext.
    """
    try:
        data = base64.b64decode(payload, validate=True)
        size = len(data)
        chain = iv.encode()
        if not size or size % 16 or len(chain) != 16:
            raise FrameError("encrypted payload is not whole AES blocks under a 16-byte iv")
        decrypted: bytes = _block_decryptor(key).update(data)
        # The CBC chaining xor of every block at once, as one big integer.
        mask = int.from_bytes(chain + data[:-16], "big")
        padded = (int.from_bytes(decrypted, "big") ^ mask).to_bytes(size, "big")
        # PKCS#7 by hand: the last byte n (1..16) repeated n times.
        pad = padded[-1]
        if not 0 < pad <= 16 or not padded.endswith(_PADS[pad]):
            raise FrameError("encrypted payload with bad padding")
        return padded[:-pad].decode("utf-8")
    except (ValueError, binascii.Error, TypeError) as exc:  # UnicodeDecodeError included
        if isinstance(exc, FrameError):
            raise
        raise FrameError("encrypted payload does not decrypt") from exc


def encrypt_payload(plaintext: str, key: str, iv: str) -> str:
    """The inverse of :func:`decrypt_payload` (for tests and simulators)."""
    data = plaintext.encode("utf-8")
    pad = 16 - len(data) % 16
    encryptor = _cipher(key, iv).encryptor()
    sealed = encryptor.update(data + _PADS[pad]) + encryptor.finalize()
    return base64.b64encode(sealed).decode("ascii")
