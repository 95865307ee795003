"""A token store for the Zoho CRM Python SDK on any SQL database."""

import logging

from .migrate import upgrade
from .store import SQLAlchemyTokenStore

__all__ = ["SQLAlchemyTokenStore", "upgrade"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
