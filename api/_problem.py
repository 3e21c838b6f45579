"""The root of the service's problems (RFC 9457): :class:`ApiError` and its registry of slugs.

Kept apart so that :mod:`api.errors` and :mod:`api._errors_workflows` both build on it without
importing each other; callers use :mod:`api.errors`, which re-exports everything.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:datasafe:problem:"


class ApiError(Exception):
    """Root of every error the service reports to a client."""

    slug: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    #: ``Retry-After`` seconds, for a failure that waiting may cure.
    retry_after: ClassVar[int | None] = None
    #: ``WWW-Authenticate`` challenge, for a 401.
    challenge: ClassVar[str | None] = None
    registry: ClassVar[dict[str, type[ApiError]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "slug" not in cls.__dict__:
            return  # an abstract grouping class
        if cls.slug in ApiError.registry:
            raise TypeError(f"duplicate problem slug {cls.slug!r}")
        ApiError.registry[cls.slug] = cls

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        self.detail = detail or self.title
        self.extensions = extensions
        super().__init__(self.detail)

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.slug

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.challenge is not None:
            out["WWW-Authenticate"] = self.challenge
        if self.retry_after is not None:
            out["Retry-After"] = str(self.retry_after)
        return out


ApiError.registry[ApiError.slug] = ApiError
