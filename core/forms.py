"""Form helpers shared by the apps' pages."""

from django import forms
from django.core.exceptions import ValidationError

from core.refusals import Refused


def add_service_error(form: forms.Form, error: ValidationError | Refused) -> None:
    """A service's refusal on the form: on the field it names when the form has it, else above it."""
    if isinstance(error, Refused):
        form.add_error(error.field if error.field in form.fields else None, error.detail)
    elif hasattr(error, "error_dict"):
        for field, problems in error.message_dict.items():
            form.add_error(field if field in form.fields else None, problems)
    else:
        form.add_error(None, error.messages)
