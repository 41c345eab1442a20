"""The sign-up form: allauth's (email, password), the person's name and, optionally, their organization."""

from allauth.account.forms import SignupForm
from django import forms
from django.http import HttpRequest

from accounts.choices import OrganizationKind
from accounts.models import Organization, User
from accounts.services.organizations import organization_create


class SignUpForm(SignupForm):
    """A new person and, optionally, the organization they will own."""

    full_name = forms.CharField(label="Your name", max_length=200)
    organization_name = forms.CharField(
        label="Organization",
        max_length=Organization._meta.get_field("name").max_length,
        required=False,
        help_text="Leave empty if you were invited, or to create it after signing up.",
    )
    organization_kind = forms.ChoiceField(label="Kind", choices=OrganizationKind.choices, required=False)
    field_order = ["email", "full_name", "password1", "organization_name", "organization_kind"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].label = "Work email"

    def signup(self, request: HttpRequest, user: User) -> None:
        """Called by allauth once the user is saved: create the organization they named."""
        name = self.cleaned_data.get("organization_name", "")
        if name:
            kind = self.cleaned_data.get("organization_kind") or OrganizationKind.STARTUP
            organization_create(owner=user, name=name, kind=kind)
