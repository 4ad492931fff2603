"""The one error tree of glmserve.

Every error a client can see is a ``GlmError``; each subclass knows its HTTP status, its
OpenAI ``type`` and its Zhipu business ``code`` (API.md §4.2)::

    GlmError (500, api_error, "500")
    ├── InvalidRequest (400, invalid_request_error, "1210")   bad parameter / malformed body
    │   ├── InvalidField (400, "1214")                         a named field has a bad value
    │   ├── ModelNotFound (400, "1211")
    │   ├── ContextLengthExceeded (400, "1261")
    │   └── ContentFiltered (400, "1301")                      an upstream's content safety refused
    │   ├── PayloadTooLarge (413, "1210")
    │   └── NotFound (404, "1222")                             no such route
    │       └── NoSuchModel (404, "1211")                      GET /models/{id}
    ├── AuthError (401, authentication_error, "1000")
    │   ├── MissingAuth ("1001")
    │   ├── InvalidToken ("1002")
    │   ├── TokenExpired ("1003")
    │   └── TokenVerifyFailed ("1004")
    ├── PermissionDenied (403, permission_error, "1220")      the key may not do this
    ├── RateLimited (429, rate_limit_error, "1302")            concurrency / queue full
    │   └── TooManyRequests ("1303")                           a key's RPM / TPM
    ├── QuotaExceeded (429, insufficient_quota, "1308")        a key's monthly token budget
    │   └── BudgetExhausted ("1113")                           … its total budget (arrears)
    ├── EngineError (500, api_error, "500")                    the engine failed mid-way
    │   └── UpstreamError (502, "1234")                        an upstream deployment failed
    │       └── UpstreamTimeout (504, "1234")                  … or went silent
    └── Unavailable (503, api_error, "1305")

Foreign exceptions (pydantic, llama.cpp error dicts, SQL) are translated where they are
caught; nothing else reaches the wire.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GlmError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    code: ClassVar[str] = "500"
    should_retry: ClassVar[bool | None] = None

    def __init__(self, message: str, *, param: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after
        self.extra_headers: dict[str, str] = {}  # e.g. x-ratelimit-* on a 429

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        headers = dict(self.extra_headers)
        if self.retry_after is not None:
            headers["retry-after"] = str(self.retry_after)
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        return headers


class InvalidRequest(GlmError):
    status = 400
    type = "invalid_request_error"
    code = "1210"
    should_retry = False


class InvalidField(InvalidRequest):
    code = "1214"


class ModelNotFound(InvalidRequest):
    code = "1211"


class ContextLengthExceeded(InvalidRequest):
    code = "1261"


class ContentFiltered(InvalidRequest):
    code = "1301"


class PayloadTooLarge(InvalidRequest):
    status = 413


class NotFound(InvalidRequest):
    status = 404
    code = "1222"


class NoSuchModel(NotFound):
    code = "1211"


class AuthError(GlmError):
    status = 401
    type = "authentication_error"
    code = "1000"
    should_retry = False


class MissingAuth(AuthError):
    code = "1001"


class InvalidToken(AuthError):
    code = "1002"


class TokenExpired(AuthError):
    code = "1003"


class TokenVerifyFailed(AuthError):
    code = "1004"


class RateLimited(GlmError):
    status = 429
    type = "rate_limit_error"
    code = "1302"
    should_retry = True


class PermissionDenied(GlmError):
    status = 403
    type = "permission_error"
    code = "1220"
    should_retry = False


class TooManyRequests(RateLimited):
    code = "1303"


class QuotaExceeded(GlmError):
    status = 429
    type = "insufficient_quota"
    code = "1308"
    should_retry = False


class BudgetExhausted(QuotaExceeded):
    code = "1113"


class EngineError(GlmError):
    status = 500
    type = "api_error"
    code = "500"


class UpstreamError(EngineError):
    """``permanent``: retrying the same deployment cannot help (bad key, unknown model, quota);
    ``unreachable``: no connection could be made (refused, or the connect timed out)."""

    status = 502
    code = "1234"
    should_retry = True

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: int | None = None,
        unreachable: bool = False,
    ):
        super().__init__(message, retry_after=retry_after)
        self.permanent = permanent
        self.unreachable = unreachable


class UpstreamTimeout(UpstreamError):
    status = 504


class Unavailable(GlmError):
    status = 503
    type = "api_error"
    code = "1305"
    should_retry = True
