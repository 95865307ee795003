"""Column types shared by the table model and its migrations."""

from __future__ import annotations

from sqlalchemy import String, TypeDecorator
from sqlalchemy.dialects.mysql import VARBINARY


class ExactText(TypeDecorator):
    """Store text as UTF-8 bytes, so that MySQL compares keys byte for byte.

    MySQL and MariaDB compare ``VARCHAR`` values through a collation: the
    default ones ignore case and accents, and even the binary ones ignore
    trailing spaces. A lookup key must match exactly, or one user could be
    handed another's token, so on those databases keys are ``VARBINARY``.
    """

    impl = VARBINARY
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else value.encode("utf-8")

    def process_result_value(self, value, dialect):
        return None if value is None else bytes(value).decode("utf-8")


def key_text(length: int = 255):
    """Return a string type that compares exactly on every database."""
    return String(length).with_variant(ExactText(length), "mysql", "mariadb")
