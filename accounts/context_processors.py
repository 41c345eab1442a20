"""Template context: the current organization, the user's role in it, and the others to switch to."""

from django.http import HttpRequest

from accounts.context import current_organization
from accounts.selectors import organizations_of, role_in


def organization(request: HttpRequest) -> dict[str, object]:
    """The organization switcher's data for every page."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"current_org": None, "current_role": None, "my_orgs": []}
    org = current_organization(request)
    return {
        "current_org": org,
        "current_role": role_in(user, org) if org else None,
        "my_orgs": list(organizations_of(user)),
    }
