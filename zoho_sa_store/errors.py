"""How the store reports failures to the SDK and to operators."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from zohocrmsdk.src.com.zoho.crm.api.exception.sdk_exception import SDKException
from zohocrmsdk.src.com.zoho.crm.api.util.constants import Constants

TOKEN_STORE = Constants.TOKEN_STORE


def store_error(message: str, cause: BaseException | None = None) -> SDKException:
    """Return an ``SDKException`` with the code ``TOKEN_STORE``.

    The SDK's exception appends ``str(cause)`` to its message, and a database
    error's text can quote the values of the statement that failed. So the
    cause is attached after the message is built: it stays available as
    ``exc.cause`` (and, with ``raise ... from``, as ``__cause__``) without
    reaching the message that gets logged.
    """
    error = SDKException(code=TOKEN_STORE, message=message)
    error.cause = cause
    return error


def database_error(action: str, where: str, error: SQLAlchemyError) -> SDKException:
    """Describe a failed database call in one sentence with no token in it."""
    if isinstance(error, IntegrityError):
        return store_error(
            f"Could not {action}: its user name, access, refresh or grant token "
            f"is already stored on another row, so nothing was written "
            f"({_error_name(error)}).",
            error,
        )
    detail = _error_name(error)
    if isinstance(error, DBAPIError) and error.statement is None:
        # No statement was sent: the connection itself failed. The driver's
        # first line says why (refused, timed out, bad credentials) and holds
        # no token, so it is worth passing on.
        reason = str(error.orig).strip().splitlines()
        if reason:
            detail = f"{detail}: {reason[0]}"
    return store_error(f"Could not {action} at {where} ({detail}).", error)


def _error_name(error: SQLAlchemyError) -> str:
    # Only the class: the text of a failed statement's error can quote the
    # values it was given, and here those are tokens.
    original = getattr(error, "orig", None) or error
    return f"{type(original).__module__}.{type(original).__name__}"
