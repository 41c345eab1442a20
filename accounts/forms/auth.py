"""Sign-up and log-in forms."""

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from accounts.choices import OrganizationKind
from accounts.models import User


class SignUpForm(forms.Form):
    """A new person and, optionally, their organization."""

    email = forms.EmailField(label="Work email")
    full_name = forms.CharField(label="Your name", max_length=200)
    password = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    organization_name = forms.CharField(
        label="Organization",
        max_length=200,
        required=False,
        help_text="Leave empty if you were invited to an existing organization.",
    )
    organization_kind = forms.ChoiceField(label="Kind", choices=OrganizationKind.choices, required=False)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email=email).exists():
            raise forms.ValidationError("An account with this email already exists; log in instead.")
        return email

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        password = data.get("password")
        if password:
            probe = User(email=data.get("email", ""), full_name=data.get("full_name", ""))
            try:
                password_validation.validate_password(str(password), probe)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return data


class EmailLoginForm(AuthenticationForm):
    """Django's login form, labelled for email."""

    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True}))
