"""Forms for sign-up, organizations, invitations, SSH keys and API tokens."""

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from accounts.choices import OrganizationKind, Role
from accounts.models import Organization, User


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


class OrganizationForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["name", "kind", "billing_email"]


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Email to invite")
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.MEMBER)


class MemberRoleForm(forms.Form):
    """An owner's change of a member's role, the member named by email."""

    email = forms.EmailField(widget=forms.HiddenInput)
    role = forms.ChoiceField(label="Role", choices=Role.choices)


class MemberForm(forms.Form):
    """A member named by email, to remove."""

    email = forms.EmailField(widget=forms.HiddenInput)


class SshKeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, required=False)
    public_key = forms.CharField(
        label="Public key",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The contents of your .pub file: ed25519, ecdsa, or RSA of 2048 bits or more.",
    )


class ApiTokenForm(forms.Form):
    name = forms.CharField(label="Token name", max_length=100)
