"""Why a service said no: one family of refusals, each with a stable code, a sentence and a status.

Services raise a `Refused` subclass; the API's exception handler (core/api.py) answers it as
`{"code", "detail", **extra}` with its status, and `core.forms.add_service_error` puts it on a form.
Nothing else translates refusals, so a code and its status are written once, on the class.
"""

from typing import Any


class Refused(Exception):
    """A change the rules do not allow; `code` is machine-readable, `detail` is for a person."""

    code = "refused"
    status = 409
    field: str | None = None  # the form field the refusal concerns, when it concerns one

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        field: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.code
        self.status = status or self.status
        self.field = field or self.field
        self.extra = extra
