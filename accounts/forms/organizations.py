"""Forms of the organization pages: a new organization, invitations and members' roles."""

from django import forms

from accounts.choices import OrganizationKind, Role


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


class OrganizationForm(forms.Form):
    """A new organization, owned by the person creating it."""

    name = forms.CharField(label="Organization name", max_length=200)
    kind = forms.ChoiceField(label="Kind", choices=OrganizationKind.choices, initial=OrganizationKind.STARTUP)
