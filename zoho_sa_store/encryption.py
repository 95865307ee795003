"""Tokens at rest: Fernet ciphertext for the values, keyed digests for lookups.

A store given Fernet keys keeps ``client_secret``, ``refresh_token``,
``access_token`` and ``grant_token`` only as Fernet tokens
(``cryptography.fernet``): the first key encrypts, every key decrypts.

A token column is no longer searched by its value. Each of the three lookup
columns has a digest column beside it, unique and indexed, that the lookups
and the upserts use instead:

* with keys, the digest is HMAC-SHA256 of the value under a *digest key*
  derived from a Fernet key with HKDF-SHA256 (``cryptography``'s HKDF, info
  ``zoho_sa_store token digest v1``, no salt). Without a key the digest can be
  neither reversed nor matched against a guessed token. A save writes the
  digest under the first key; a lookup tries the digest under every key (one
  ``IN`` list), so rows not yet rotated are still found;
* without keys, and for rows written before encryption was turned on, the
  digest is a plain SHA-256 of the value. Such a row holds the token in plain
  text beside it, so the digest gives nothing away. A store with keys still
  includes the plain digest in its lookups, which is how it finds rows written
  before encryption.

Every row also records in ``key_id`` which key last wrote it: 16 hex digits
derived from the key with HKDF (info ``zoho_sa_store key id v1``), from which
the key cannot be recovered. NULL means the row was written without
encryption. A store refuses to read or overwrite a row whose ``key_id`` is not
one of its keys: that is what turns a wrong key into a clear error instead of
unreadable tokens or a lost refresh token.

A value in an encrypted row may still be plain text when it was written before
encryption and not yet saved again or rotated. A Fernet token is recognised by
its form (see :func:`looks_encrypted`), which no Zoho token has.

``cryptography`` is an optional dependency (the ``crypto`` extra); it is
imported only when keys are given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import store_error

log = logging.getLogger(__name__)

KEYS_VARIABLE = "ZOHO_TOKEN_STORE_KEYS"

# Columns whose values are encrypted.
ENCRYPTED_COLUMNS = ("client_secret", "refresh_token", "access_token", "grant_token")

# Lookup columns and the digest column each is found by.
DIGEST_COLUMNS = {
    "refresh_token": "refresh_token_digest",
    "access_token": "access_token_digest",
    "grant_token": "grant_token_digest",
}

KEY_ID_COLUMN = "key_id"

_DIGEST_INFO = b"zoho_sa_store token digest v1"
_KEY_ID_INFO = b"zoho_sa_store key id v1"
_KEY_ID_BYTES = 8

# A Fernet token is url-safe base64 of: version byte 0x80, an 8-byte
# timestamp, a 16-byte IV, the AES-CBC ciphertext (whole 16-byte blocks, at
# least one) and a 32-byte HMAC. Its text starts with "gAAAAA" until the
# year 4000 or so.
_FERNET_PREFIX = "gAAAAA"
_FERNET_OVERHEAD = 1 + 8 + 16 + 32
_AES_BLOCK = 16

KEY_MISMATCH = "the encryption key does not match"


def plain_digest(value: str) -> str:
    """Return the unkeyed digest (SHA-256, hex) a store without keys uses."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def looks_encrypted(value: str) -> bool:
    """Tell whether a stored value has the form of a Fernet token."""
    if not value.startswith(_FERNET_PREFIX):
        return False
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    body = len(raw) - _FERNET_OVERHEAD
    return raw[:1] == b"\x80" and body >= _AES_BLOCK and body % _AES_BLOCK == 0


def keys_from_environment() -> list[str]:
    """Return the comma-separated Fernet keys in ``ZOHO_TOKEN_STORE_KEYS``.

    An unset or empty variable gives an empty list: no encryption.
    """
    text = os.environ.get(KEYS_VARIABLE, "")
    return [key.strip() for key in text.split(",") if key.strip()]


def generate_key() -> str:
    """Return a new random Fernet key, as the text a key list takes."""
    fernet = _import_fernet()
    return fernet.Fernet.generate_key().decode("ascii")


def key_mismatch_error(detail: str) -> Exception:
    """Return the ``SDKException`` for a row the store's keys cannot open."""
    return store_error(f"{detail}: {KEY_MISMATCH}. Nothing was changed.")


class PlainCodec:
    """The codec of a store without keys: values stay as they are.

    It still writes the plain digests, which the lookups use, and it refuses
    rows that an encrypting store has written.
    """

    encrypts = False
    #: The ``key_id`` of every key the codec can read; none here.
    key_ids: tuple[str, ...] = ()
    #: The ``key_id`` a save writes: NULL, no encryption.
    write_key_id: str | None = None

    def digest(self, value: str) -> str:
        """Return the digest a save writes for a lookup value."""
        return plain_digest(value)

    def lookup_digests(self, value: str) -> list[str]:
        """Return every digest under which a stored value may be found."""
        return [plain_digest(value)]

    def protect(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return the row to write for ``values``: digests and ``key_id`` added.

        ``values`` maps column names to plain values; a None value stays None
        (the upsert then keeps what is stored) and so does its digest.
        """
        row = dict(values)
        for column in ENCRYPTED_COLUMNS:
            if column in row and row[column] is not None:
                row[column] = self._encrypt(row[column])
        for column, digest_column in DIGEST_COLUMNS.items():
            if column in values:
                value = values[column]
                row[digest_column] = None if value is None else self.digest(value)
        row[KEY_ID_COLUMN] = self.write_key_id
        return row

    def reveal(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Return a stored row with its values in plain text.

        Raises the key-mismatch ``SDKException`` when the row was written
        with a key the codec does not hold.
        """
        key_id = row[KEY_ID_COLUMN]
        values = dict(row)
        if key_id is None:
            return values
        self._require_known(key_id)
        for column in ENCRYPTED_COLUMNS:
            value = values[column]
            if value is not None and looks_encrypted(value):
                values[column] = self._decrypt(value)
        return values

    def rotated(self, row: Mapping[str, Any]) -> dict[str, Any] | None:
        """Return the columns to rewrite so the row is under the first key.

        None means the row is already as a save with this codec would write
        it.
        """
        raise store_error("Rotating keys needs at least one encryption key.")

    def can_write_over(self, key_id: str | None) -> bool:
        """Tell whether a save may update a row with this ``key_id``."""
        return key_id is None or key_id in self.key_ids

    def _require_known(self, key_id: str) -> None:
        if key_id not in self.key_ids:
            if not self.key_ids:
                raise key_mismatch_error(
                    "The token's row is encrypted, and this store was given no "
                    "encryption keys"
                )
            raise key_mismatch_error(
                "The token's row is encrypted with a key this store does not hold"
            )

    def _encrypt(self, value: str) -> str:
        return value

    def _decrypt(self, value: str) -> str:
        raise key_mismatch_error(
            "The token's row is encrypted, and this store was given no encryption keys"
        )


class FernetCodec(PlainCodec):
    """The codec of a store with Fernet keys: the first encrypts, all decrypt."""

    encrypts = True

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        fernet = _import_fernet()
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        def derive(raw: bytes, info: bytes, length: int) -> bytes:
            kdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info)
            return kdf.derive(raw)

        ciphers = []
        digest_keys = []
        key_ids = []
        for number, key in enumerate(keys, start=1):
            raw = _decode_key(key, number)
            ciphers.append(fernet.Fernet(base64.urlsafe_b64encode(raw)))
            digest_keys.append(derive(raw, _DIGEST_INFO, 32))
            key_ids.append(derive(raw, _KEY_ID_INFO, _KEY_ID_BYTES).hex())
        self._first = ciphers[0]
        self._all = fernet.MultiFernet(ciphers)
        self._invalid_token = fernet.InvalidToken
        self._digest_keys = tuple(digest_keys)
        self.key_ids = tuple(key_ids)
        self.write_key_id = key_ids[0]

    def __repr__(self) -> str:
        return f"<FernetCodec keys={len(self.key_ids)}>"

    def digest(self, value: str) -> str:
        return _hmac_hex(self._digest_keys[0], value)

    def lookup_digests(self, value: str) -> list[str]:
        digests = [_hmac_hex(key, value) for key in self._digest_keys]
        # Rows written before encryption was turned on carry a plain digest.
        digests.append(plain_digest(value))
        return list(dict.fromkeys(digests))

    def rotated(self, row: Mapping[str, Any]) -> dict[str, Any] | None:
        values = self.reveal(row)
        current = row[KEY_ID_COLUMN] == self.write_key_id and all(
            self._is_under_first_key(row[column])
            for column in ENCRYPTED_COLUMNS
            if row[column] is not None
        )
        digests_current = all(
            row[digest_column]
            == (None if values[column] is None else self.digest(values[column]))
            for column, digest_column in DIGEST_COLUMNS.items()
        )
        if current and digests_current:
            return None
        return self.protect({column: values[column] for column in ENCRYPTED_COLUMNS})

    def _is_under_first_key(self, value: str) -> bool:
        if not looks_encrypted(value):
            return False
        try:
            self._first.decrypt(value.encode("ascii"))
        except self._invalid_token:
            return False
        return True

    def _encrypt(self, value: str) -> str:
        return self._first.encrypt(value.encode("utf-8")).decode("ascii")

    def _decrypt(self, value: str) -> str:
        try:
            return self._all.decrypt(value.encode("ascii")).decode("utf-8")
        except self._invalid_token:
            # The row's key_id is one of ours, yet this value was written
            # under another key (a rotation was skipped) or was altered.
            raise key_mismatch_error(
                "A value in the token's row was encrypted with a key this store "
                "does not hold"
            ) from None


def make_codec(keys: Iterable[str | bytes] | None) -> PlainCodec:
    """Return the codec for a store's keys; no keys means no encryption."""
    if isinstance(keys, str | bytes):
        raise store_error(
            "encryption_keys must be a list of Fernet keys, not a single key."
        )
    key_list = [] if keys is None else list(keys)
    if not key_list:
        return PlainCodec()
    return FernetCodec(key_list)


def _hmac_hex(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def _decode_key(key: str | bytes, number: int) -> bytes:
    # The same check Fernet makes, with a message that names the key by its
    # position only: the key itself must never reach a log.
    try:
        text = key.encode("ascii") if isinstance(key, str) else bytes(key)
        raw = base64.urlsafe_b64decode(text.strip())
    except (binascii.Error, UnicodeEncodeError, TypeError, ValueError):
        raw = b""
    if len(raw) != 32:
        raise store_error(
            f"Encryption key number {number} is not a Fernet key (32 url-safe "
            f"base64-encoded bytes): make one with `zoho-sa-store generate-key`."
        )
    return raw


def _import_fernet():
    try:
        from cryptography import fernet
    except ImportError as err:
        raise store_error(
            "Encryption needs the cryptography package: run "
            "`pip install 'zoho-sa-store[crypto]'`."
        ) from err
    return fernet
