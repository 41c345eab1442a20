"""Which organization a request acts in: the token's, else the one chosen in the switcher."""

from django.http import HttpRequest

from accounts.models import ApiToken, Organization
from accounts.selectors import organizations_of

SESSION_KEY = "organization_slug"
HEADER = "HTTP_X_VOLTPARK_ORGANIZATION"


def current_organization(request: HttpRequest) -> Organization | None:
    """The organization this request acts in, always one the user belongs to."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiToken):
        return auth.organization
    user = request.user
    if not user.is_authenticated:
        return None
    mine = organizations_of(user)
    wanted = request.META.get(HEADER) or request.session.get(SESSION_KEY)
    if wanted:
        chosen = mine.filter(slug=wanted).first()
        if chosen is not None:
            return chosen
    return mine.first()


def switch_organization(request: HttpRequest, organization: Organization) -> None:
    """Remember the organization chosen in the switcher for this browser session."""
    request.session[SESSION_KEY] = organization.slug
