"""The API tokens page: create (shown once) and revoke."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.forms.tokens import ApiTokenForm
from accounts.selectors.tokens import api_token_of_user_or_404, api_tokens_of
from accounts.selectors.viewer import viewer_of
from accounts.services.tokens import api_token_create, api_token_revoke
from accounts.views.decorators import AuthenticatedHttpRequest
from core.forms import add_service_error

NEW_TOKEN_SESSION_KEY = "new_api_token"


@never_cache
@login_required
def api_tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The user's API tokens; a new one is shown once, on the page the creation redirects to."""
    form = ApiTokenForm(request.POST or None)
    org = viewer_of(request).organization
    if request.method == "POST" and form.is_valid():
        try:
            issued = api_token_create(
                user=request.user, organization=org, name=form.cleaned_data["name"], **form.token_options()
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            # Redirect-after-POST so a reload cannot make a second token; the secret rides in the
            # session only until the next page shows it.
            request.session[NEW_TOKEN_SESSION_KEY] = issued.secret
            return redirect("api-tokens")
    secret = request.session.pop(NEW_TOKEN_SESSION_KEY, None) if request.method == "GET" else None
    context = {"form": form, "secret": secret, "tokens": api_tokens_of(request.user), "org": org}
    return render(request, "accounts/api_tokens.html", context)


@login_required
@require_POST
def api_token_remove(request: AuthenticatedHttpRequest, token_id: str) -> HttpResponse:
    """Revoke one of the user's tokens."""
    api_token_revoke(actor=request.user, token=api_token_of_user_or_404(request.user, token_id))
    messages.success(request, "Token revoked; it no longer works.")
    return redirect("api-tokens")
