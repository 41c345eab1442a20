"""Template context: the current organization, the user's role in it, and the others to switch to."""

from django.http import HttpRequest

from accounts.selectors.viewer import viewer_of


def organization(request: HttpRequest) -> dict[str, object]:
    """The organization switcher's data for every page."""
    if not hasattr(request, "user"):
        return {"viewer": None, "current_org": None, "current_role": None, "my_orgs": []}
    viewer = viewer_of(request)
    return {
        "viewer": viewer,
        "current_org": viewer.organization,
        "current_role": viewer.role,
        "my_orgs": viewer.organizations,
    }
