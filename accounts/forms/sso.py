"""The owner's choice of the provider an organization's members must sign in with."""

from typing import Any

from django import forms

from accounts.choices import SsoProvider


class SsoRequireForm(forms.Form):
    """A provider among those switched on, or none ("members may sign in with a password")."""

    sso_provider = forms.ChoiceField(label="Members must sign in with", required=False)

    def __init__(self, *args: Any, providers: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["sso_provider"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "A password is enough")] + [(p, SsoProvider(p).label) for p in providers]
