"""The form that adds an SSH public key."""

from django import forms

from nodeagent.protocol import MAX_KEY_LENGTH


class SshKeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, required=False)
    public_key = forms.CharField(
        label="Public key",
        max_length=MAX_KEY_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The contents of your .pub file: ed25519, ecdsa, or RSA of 2048 bits or more.",
    )
