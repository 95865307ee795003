"""How the store reports failures to the SDK."""

from __future__ import annotations

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
