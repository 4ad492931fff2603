"""The one error tree of glmserve.

Every error a client can see is a ``GlmError``; each subclass knows its HTTP status, its
OpenAI ``type`` and its Zhipu business ``code`` (API.md §4.2)::

    GlmError (500, api_error, "500")
    ├── InvalidRequest (400, invalid_request_error, "1210")   bad parameter / malformed body
    │   ├── InvalidField (400, "1214")                         a named field has a bad value
    │   ├── ModelNotFound (400, "1211")
    │   └── ContextLengthExceeded (400, "1261")
    │   ├── PayloadTooLarge (413, "1210")
    │   └── NotFound (404, "1222")                             no such route
    │       └── NoSuchModel (404, "1211")                      GET /models/{id}
    ├── AuthError (401, authentication_error, "1000")
    │   ├── MissingAuth ("1001")
    │   ├── InvalidToken ("1002")
    │   ├── TokenExpired ("1003")
    │   └── TokenVerifyFailed ("1004")
    ├── RateLimited (429, rate_limit_error, "1302")            concurrency / queue full
    ├── EngineError (500, api_error, "500")                    the engine failed mid-way
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

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
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


class EngineError(GlmError):
    status = 500
    type = "api_error"
    code = "500"


class Unavailable(GlmError):
    status = 503
    type = "api_error"
    code = "1305"
    should_retry = True
