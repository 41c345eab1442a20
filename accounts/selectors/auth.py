"""What a person has proven about themselves: their verified email addresses (allauth's rows)."""

from allauth.account.models import EmailAddress

from accounts.models import User


def email_is_verified(user: User, email: str | None = None) -> bool:
    """Whether `email` (by default the address the user logs in with) is one the user has verified."""
    address = email or user.email
    return EmailAddress.objects.filter(user_id=user.pk, email__iexact=address, verified=True).exists()


def email_belongs_to(user: User, email: str) -> bool:
    """Whether `email` is one of the user's addresses, verified or not."""
    if user.email.lower() == email.lower():
        return True
    return EmailAddress.objects.filter(user_id=user.pk, email__iexact=email).exists()


def user_addresses(user: User) -> list[str]:
    """Every address the user has given (allauth's rows), verified or not."""
    return list(EmailAddress.objects.filter(user_id=user.pk).values_list("email", flat=True))
