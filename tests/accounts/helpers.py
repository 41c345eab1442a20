"""Helpers of the accounts tests: Alice's SSH key, with the fingerprint ssh-keygen printed for it."""

# Made with `ssh-keygen -t ed25519 -C alice@laptop`; `ssh-keygen -l` printed the fingerprint below.
ALICE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO9b5HXZXuZRtv+JcQ1bV/JpWNj7FXofAzvQyLj7ValI alice@laptop"
ALICE_FINGERPRINT = "SHA256:PXB0DbrO3z8NdHCjRPyItlg5XJBduqf5qF54IRvY5XU"
