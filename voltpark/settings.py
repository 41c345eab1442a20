"""Voltpark settings, read from the environment; every variable is listed in the README.

Read top to bottom: each setting is written once, from values computed before it (no setting is
patched later), and importing this module creates no file or folder.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from voltpark.env import (
    email_settings,
    envbool,
    envfernetkeys,
    envint,
    envlist,
    envrate,
    envrates,
    envsso,
    envstr,
    envurl,
    strong_secret,
)

# --- Deployment: where the code and its data are, debug mode, the secret key, the host names.
BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("VOLTPARK_DATA_DIR", str(BASE_DIR / ".data")))

DEBUG = envbool("DEBUG", True)
DEV_SECRET_KEY = "voltpark-dev-only-secret-key-do-not-use-in-production"
SECRET_KEY = envstr("SECRET_KEY", DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")
if not DEBUG and not strong_secret(SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY must be at least 50 characters, of at least 10 different ones, and not one piece "
        "repeated, when DEBUG is off: make one with "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = envstr("SITE_URL", "http://127.0.0.1:8000")

# --- Applications, middleware and templates.
INSTALLED_APPS = [
    # Django's admin, with our site class: log-in through allauth, staff admins with MFA only.
    "voltpark.admin.VoltparkAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    # Single sign-on: the providers' code is always there; each is on only with its client id.
    "allauth.socialaccount",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.google",
    "accounts",
    "clusters",
    "programs",
    "billing",
    "voltpark",
]

MIDDLEWARE = [
    # First, so that every log line of the request, and its answer, carry the request's id.
    "core.request_id.RequestIdMiddleware",
    # Before host validation: orchestrators call /healthz by address, whatever the Host header.
    "voltpark.views.HealthzMiddleware",
    # Before anything reads a body: an oversized one is refused by its Content-Length.
    "core.request_size.RequestSizeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # allauth's request context, and its early answers (a 429 from inside a form) become responses.
    "allauth.account.middleware.AccountMiddleware",
    # A member of an organization that requires single sign-on signs in with its provider first.
    "accounts.views.sso.SsoRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees a view's exception first: PostgreSQL or Redis away is a 503 with Retry-After.
    "core.unavailable.UnavailableMiddleware",
]

ROOT_URLCONF = "voltpark.urls"
WSGI_APPLICATION = "voltpark.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.views.context_processors.organization",
                "voltpark.navigation.navigation",
            ]
        },
    }
]


# --- Data stores: the configured servers, else embedded ones in DATA_DIR. The embedded servers'
# wheels are only in requirements-demo.txt, so their module is imported only when it is needed.
def _embedded_postgres() -> dict[str, str]:
    from voltpark import embedded

    return {"ENGINE": "django.db.backends.postgresql", **embedded.postgres_settings(DATA_DIR)}


def _embedded_redis_url() -> str:
    from voltpark import embedded

    return embedded.redis_url(DATA_DIR)


DATABASE_URL = envurl("DATABASE_URL", None, schemes={"postgres", "postgresql"})
DATABASES = {
    "default": {
        **(dj_database_url.parse(DATABASE_URL) if DATABASE_URL else _embedded_postgres()),
        "CONN_MAX_AGE": envint("DATABASE_CONN_MAX_AGE_S", 60, minimum=0),
        "CONN_HEALTH_CHECKS": True,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = envurl("REDIS_URL", None, schemes={"redis", "rediss", "unix"}) or _embedded_redis_url()
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# --- Users, sessions and security headers. Sign-up, log-in, password reset and email verification
# are django-allauth's flows (docs/decisions.md, Accounts), on our User (email, no username).
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["allauth.account.auth_backends.AuthenticationBackend"]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_FORMS = {"signup": "accounts.forms.auth.SignUpForm"}
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
# Optional: a new account may look around at once; booking waits for a verified address
# (accounts.selectors.booking), and so does accepting an invitation.
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "Voltpark: "
ACCOUNT_SESSION_REMEMBER = True
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
# Rate limits (allauth's syntax: amount/period/per ip, key or user; the key is the email address),
# kept in Redis through the cache. Failed log-ins per account lock it for the rest of the window.
ACCOUNT_RATE_LIMITS = {
    "login": envrates("RATE_LIMIT_LOGIN", "30/m/ip"),
    "login_failed": envrates("RATE_LIMIT_LOGIN_FAILED", "10/m/ip,5/15m/key"),
    "signup": envrates("RATE_LIMIT_SIGNUP", "10/h/ip"),
    "reset_password": envrates("RATE_LIMIT_PASSWORD_RESET", "20/m/ip,3/h/key"),
    "reset_password_from_key": "20/m/ip",
    "confirm_email": envrates("RATE_LIMIT_CONFIRM_EMAIL", "1/3m/key"),
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "reauthenticate": "10/m/user",
}
# Two-factor authentication: an authenticator app (TOTP) with recovery codes, and passkeys
# (WebAuthn), which also sign in without a password. Staff must have one (accounts.selectors.staff).
MFA_ADAPTER = "accounts.adapters.MfaAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_TOTP_ISSUER = "Voltpark"
# Passkeys need a secure origin; plain http on a laptop or in the tests counts only with DEBUG on.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG
# Single sign-on with GitHub and Google (allauth's providers): each is on when its client id and
# secret are set. Signing in with a provider never takes over an account of the same address: the
# person signs in with their password and links the provider (docs/decisions.md, SSO).
# SSO_GITHUB_URL points at GitHub Enterprise Server (or the tests' stand-in), SSO_GOOGLE_URL at a
# stand-in for Google's endpoints (the tests'); both default to the real services.
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_QUERY_EMAIL = True
SOCIALACCOUNT_STORE_TOKENS = False
SSO_GITHUB_URL = envurl("SSO_GITHUB_URL", None, schemes={"http", "https"})
SSO_GOOGLE_URL = envurl("SSO_GOOGLE_URL", None, schemes={"http", "https"})
SOCIALACCOUNT_PROVIDERS = {
    "github": {
        "APPS": envsso("SSO_GITHUB"),
        "SCOPE": ["read:user", "user:email"],
        **({"GITHUB_URL": SSO_GITHUB_URL} if SSO_GITHUB_URL else {}),
    },
    "google": {
        "APPS": envsso("SSO_GOOGLE"),
        "SCOPE": ["openid", "email", "profile"],
        **(
            {
                "AUTHORIZE_URL": f"{SSO_GOOGLE_URL}/o/oauth2/v2/auth",
                "ACCESS_TOKEN_URL": f"{SSO_GOOGLE_URL}/token",
                "CERTS_URL": f"{SSO_GOOGLE_URL}/oauth2/v1/certs",
                "IDENTITY_URL": f"{SSO_GOOGLE_URL}/oauth2/v2/userinfo",
                "ID_TOKEN_ISSUER": SSO_GOOGLE_URL,
            }
            if SSO_GOOGLE_URL
            else {}
        ),
    },
}
# Proxies in front of the web process whose X-Forwarded-For is believed for the client's address
# (the rate limits per IP); 0 behind no proxy, else the number of hops your load balancer adds.
ALLAUTH_TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0, minimum=0)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HTTPS only in production (DEBUG off): plain http is redirected, and browsers are told by HSTS to
# use nothing else for a year, subdomains included. Behind a proxy that ends TLS, set
# SECURE_PROXY_SSL_HEADER so a request it received over https is known as one (the proxy must set
# X-Forwarded-Proto itself, overwriting any the client sent). /healthz answers before the redirect.
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if envbool("SECURE_PROXY_SSL_HEADER", False) else None
)
SECURE_REFERRER_POLICY = "same-origin"
# Browser features no page of ours uses are switched off, for us and anything we would ever embed;
# passkeys (WebAuthn) stay allowed on our own origin.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    "accelerometer": [],
    "autoplay": [],
    "camera": [],
    "display-capture": [],
    "geolocation": [],
    "gyroscope": [],
    "magnetometer": [],
    "microphone": [],
    "midi": [],
    "payment": [],
    "usb": [],
    "publickey-credentials-create": ["self"],
    "publickey-credentials-get": ["self"],
}
# Nothing from another site, no inline scripts or styles, never framed. form-action is left
# to default so a POST may redirect to Stripe's hosted payment page.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Internationalization: UTC everywhere; templates convert for the viewer.
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files, served by WhiteNoise from the web process. htmx is served from node_modules
# under a static prefix (installed by `make install` via `npm ci`); without it the pages still
# work, htmx only enhances them. Production serves compressed files under content-hashed names
# (collected when the image is built, cached forever by browsers); with DEBUG on (development,
# the demo, the tests) the files are served as they are, so nothing has to be collected first.
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
HTMX_DIST_DIR = BASE_DIR / "node_modules" / "htmx.org" / "dist"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    *([("vendor/htmx", HTMX_DIST_DIR)] if HTMX_DIST_DIR.is_dir() else []),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_AUTOREFRESH = DEBUG

# --- Request bodies: one cap on every path (core/request_size.py), forms included.
REQUEST_BODY_MAX_BYTES = envint("REQUEST_BODY_MAX_BYTES", 256 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES

# --- The API: JSON in and out (the Stripe webhook reads its raw body itself), pages of at most
# API_PAGE_MAX_LIMIT rows.
API_PAGE_MAX_LIMIT = envint("API_PAGE_MAX_LIMIT", 1000, minimum=1)
API_PAGE_MAX_OFFSET = 10**9
# Throttles (core/throttles.py), counted in Redis through the cache: per token (or signed-in user)
# and per client address, on what costs the most to answer or to abuse (README lists the variables).
# Over a rate the answer is 429 with Retry-After. Release, cancel and reads of one's own leases are
# never throttled: a client must always be able to stop spending.
API_THROTTLE_RATES = {
    "booking": envrate("API_RATE_BOOKING", "60/m"),
    "quotes": envrate("API_RATE_QUOTES", "300/m"),
    "availability": envrate("API_RATE_AVAILABILITY", "300/m"),
    "timeline": envrate("API_RATE_TIMELINE", "120/m"),
    "exports": envrate("API_RATE_EXPORTS", "20/m"),
}
API_THROTTLE_IP_RATES = {
    "booking": envrate("API_RATE_BOOKING_IP", "300/m"),
    "quotes": envrate("API_RATE_QUOTES_IP", "1200/m"),
    "availability": envrate("API_RATE_AVAILABILITY_IP", "1200/m"),
    "timeline": envrate("API_RATE_TIMELINE_IP", "600/m"),
    "exports": envrate("API_RATE_EXPORTS_IP", "60/m"),
}
# Wrong bearer tokens per client address; past it every bearer token from there waits.
API_AUTH_FAILURE_RATE = envrate("API_RATE_AUTH_FAILURES", "20/m")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Signed in, and a token held to its scopes (accounts/api/permissions.py).
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api.permissions.IsSignedIn"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    "DEFAULT_THROTTLE_CLASSES": ["core.throttles.TokenRateThrottle", "core.throttles.IpRateThrottle"],
    # The client address the per-address throttles count: as for allauth's limits, X-Forwarded-For
    # is believed only for TRUSTED_PROXY_COUNT hops (0: REMOTE_ADDR, which nobody can forge).
    "NUM_PROXIES": ALLAUTH_TRUSTED_PROXY_COUNT,
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Voltpark API",
    "DESCRIPTION": "Book NVIDIA H100 GPUs by the hour or for a fixed window.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from the sidecar package, not from a CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema's names for billing's and the early-stage program's choice sets.
    "ENUM_NAME_OVERRIDES": {
        "InvoiceStatusEnum": "billing.choices.InvoiceStatus",
        "InvoiceKindEnum": "billing.choices.InvoiceKind",
        "InvoiceLineKindEnum": "billing.choices.LineKind",
        "ApplicationStatusEnum": "programs.choices.ApplicationStatus",
        "LeaseKindEnum": "clusters.choices.LeaseKind",
        "LeaseStateEnum": "clusters.choices.LeaseState",
        "LeaseRequestStateEnum": "clusters.choices.LeaseRequestState",
    },
}

# --- Logging: one line each, with time, level, logger and the id of the request or Celery task
# being served ("-" outside one), in web, worker and beat processes alike. Django's own loggers
# lose the handlers of its default config (a second, bare copy of each line under DEBUG; mail to
# ADMINS, which is not set) and take LOG_LEVEL, so they print once, in this shape, at this level.
LOG_LEVEL = envstr("LOG_LEVEL", "INFO")
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.request_id.RequestIdFilter"}},
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s %(message)s"}
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "line", "filters": ["request_id"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"level": LOG_LEVEL},
        "django.server": {"level": LOG_LEVEL, "propagate": True},
        "embedded_postgres": {"level": "WARNING"},
    },
}

# --- Email.
_email = email_settings(envstr("EMAIL_URL", "console://"))
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"]
EMAIL_PORT = _email["EMAIL_PORT"]
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"]
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"]
EMAIL_USE_TLS = _email["EMAIL_USE_TLS"]
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "Voltpark <noreply@voltpark.example>")
STAFF_NOTIFY_EMAILS = envlist("STAFF_NOTIFY_EMAILS", "ops@voltpark.example")

# --- Stripe.
STRIPE_ENABLED = envbool("STRIPE_ENABLED", False)
STRIPE_SECRET_KEY = envstr("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = envstr("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = envurl("STRIPE_API_BASE", None, schemes={"http", "https"})
if STRIPE_ENABLED and not (STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET):
    raise ImproperlyConfigured(
        "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET must be set when STRIPE_ENABLED is on"
    )

# --- Accounts.
INVITATION_TTL = timedelta(days=envint("INVITATION_TTL_DAYS", 7, minimum=1))
API_TOKEN_TOUCH_INTERVAL = timedelta(seconds=60)

# --- Booking: the limits of a lease (each a setting, so tests can shorten them).
BOOKING_MAX_AHEAD = timedelta(days=envint("BOOKING_MAX_DAYS_AHEAD", 180, minimum=1))
BOOKING_MIN_DURATION = timedelta(minutes=envint("BOOKING_MIN_MINUTES", 60, minimum=1))
BOOKING_MAX_DURATION = timedelta(days=envint("BOOKING_MAX_DAYS", 90, minimum=1))
BOOKING_TIME_STEP = timedelta(minutes=1)
BOOKING_PLACEMENT_RETRIES = envint("BOOKING_PLACEMENT_RETRIES", 3, minimum=0)
BOOKING_CLEANUP_HORIZON = timedelta(minutes=15)
BOOKING_TIMELINE_DAYS = 14
# Queued lease requests: how long one waits when no not_after is given, how often beat dispatches
# the queue besides the wake-ups, and how often one may be passed over before GPUs wait for it.
LEASE_REQUEST_DEFAULT_WAIT_HOURS = envint("LEASE_REQUEST_DEFAULT_WAIT_HOURS", 24, minimum=1)
LEASE_REQUEST_DISPATCH_INTERVAL_S = envint("LEASE_REQUEST_DISPATCH_INTERVAL_S", 10, minimum=1)
LEASE_REQUEST_BACKFILL_LIMIT = envint("LEASE_REQUEST_BACKFILL_LIMIT", 8, minimum=0)
# A repeated Idempotency-Key is answered from its stored row for this long, then the row is purged.
IDEMPOTENCY_KEY_RETENTION_HOURS = envint("IDEMPOTENCY_KEY_RETENTION_HOURS", 24, minimum=1)

# --- Money: top-ups, auto top-up, running out, reserved commitments, invoice terms and dunning.
TOP_UP_MIN_USD = envint("TOP_UP_MIN_USD", 10, minimum=1)
TOP_UP_MAX_USD = envint("TOP_UP_MAX_USD", 50_000, minimum=1)
AUTO_TOP_UP_DEFAULT_THRESHOLD_USD = envint("AUTO_TOP_UP_DEFAULT_THRESHOLD_USD", 25, minimum=0)
AUTO_TOP_UP_DEFAULT_AMOUNT_USD = envint("AUTO_TOP_UP_DEFAULT_AMOUNT_USD", 100, minimum=1)
AUTO_TOP_UP_MAX_ATTEMPTS = envint("AUTO_TOP_UP_MAX_ATTEMPTS", 3, minimum=1)
RUNWAY_WARNING_HOURS = (24, 1)
RUN_OUT_GRACE = timedelta(minutes=envint("RUN_OUT_GRACE_MINUTES", 30, minimum=0))
BALANCE_SWEEP_INTERVAL_S = envint("BALANCE_SWEEP_INTERVAL_S", 60, minimum=1)
USAGE_DEBIT_INTERVAL_S = envint("USAGE_DEBIT_INTERVAL_S", 300, minimum=1)
RESERVED_FREE_CANCEL = timedelta(hours=envint("RESERVED_FREE_CANCEL_HOURS", 24, minimum=0))
INVOICE_NET_DAYS = envint("INVOICE_NET_DAYS", 30, minimum=0)
try:
    DUNNING_REMINDER_DAYS = tuple(int(d) for d in envlist("DUNNING_REMINDER_DAYS", "-7,-1,1,7"))
except ValueError:
    raise ImproperlyConfigured("DUNNING_REMINDER_DAYS must be whole days, such as -7,-1,1,7") from None
DUNNING_SUSPEND_AFTER_DAYS = envint("DUNNING_SUSPEND_AFTER_DAYS", 14, minimum=1)
if AUTO_TOP_UP_DEFAULT_AMOUNT_USD < TOP_UP_MIN_USD or TOP_UP_MAX_USD < TOP_UP_MIN_USD:
    raise ImproperlyConfigured(
        "AUTO_TOP_UP_DEFAULT_AMOUNT_USD and TOP_UP_MAX_USD must be at least TOP_UP_MIN_USD"
    )

# --- Node agents' bearer tokens are stored encrypted under their own keys (Fernet, newest first;
# clusters/services/agent_tokens.py), never under SECRET_KEY. Required when DEBUG is off; the
# development key is refused there.
DEV_AGENT_TOKEN_KEY = "dm9sdHBhcmstZGV2LW9ubHktYWdlbnQtdG9rZW5zISE="
AGENT_TOKEN_KEYS = envfernetkeys("AGENT_TOKEN_KEYS", DEV_AGENT_TOKEN_KEY if DEBUG else "")
if not AGENT_TOKEN_KEYS or (not DEBUG and DEV_AGENT_TOKEN_KEY in AGENT_TOKEN_KEYS):
    raise ImproperlyConfigured(
        "AGENT_TOKEN_KEYS must be set when DEBUG is off: Fernet keys, newest first; make one with "
        "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
    )

# --- Run time: polling the node agents, health rules, lease enforcement.
POLL_INTERVAL_S = envint("POLL_INTERVAL_S", 5, minimum=1)
# A node that fails a poll is asked again POLL_RETRY_DELAY_MS after its own answer, within
# POLL_RETRY_TIMEOUT_MS; failing twice is a miss, and HEALTH_UNREACHABLE_SWEEPS misses take it out of
# placement. Worst case from an agent's last answer: an interval, then the deadline, the delay and
# the retry's deadline (5 + 1.5 + 0.25 + 1.5 s), then the write that fails the node, under the 10 s aim.
POLL_TIMEOUT_MS = envint("POLL_TIMEOUT_MS", 1500, minimum=50)
POLL_RETRY_DELAY_MS = envint("POLL_RETRY_DELAY_MS", 250, minimum=0)
POLL_RETRY_TIMEOUT_MS = envint("POLL_RETRY_TIMEOUT_MS", 1500, minimum=50)
POLL_CONCURRENCY = envint("POLL_CONCURRENCY", 256, minimum=1)
POLL_CHUNK_NODES = envint("POLL_CHUNK_NODES", 1000, minimum=1)
TELEMETRY_SAMPLE_INTERVAL_S = envint("TELEMETRY_SAMPLE_INTERVAL_S", 60, minimum=1)
TELEMETRY_RETENTION_DAYS = envint("TELEMETRY_RETENTION_DAYS", 7, minimum=1)
TELEMETRY_PARTITIONS_AHEAD_DAYS = envint("TELEMETRY_PARTITIONS_AHEAD_DAYS", 2, minimum=1)
HEALTH_UNREACHABLE_SWEEPS = envint("HEALTH_UNREACHABLE_SWEEPS", 1, minimum=1)
# A poll chunk in which at least POLL_MASS_MISS_PCT % of its nodes, and POLL_MASS_MISS_MIN_NODES,
# missed at once is more likely the poller's trouble (starved of CPU, cut off) than that many nodes
# failing together: there a node is failed for not answering only after HEALTH_MASS_MISS_SWEEPS
# misses in a row, so a region really gone is out after three sweeps (docs/decisions.md).
POLL_MASS_MISS_PCT = envint("POLL_MASS_MISS_PCT", 20, minimum=1)
POLL_MASS_MISS_MIN_NODES = envint("POLL_MASS_MISS_MIN_NODES", 20, minimum=1)
HEALTH_MASS_MISS_SWEEPS = envint("HEALTH_MASS_MISS_SWEEPS", 3, minimum=1)
HEALTH_XID_CRITICAL_CODES = frozenset(
    int(code) for code in envlist("HEALTH_XID_CRITICAL_CODES", "48,63,64,74,79,92,94,95,119,120,140")
)
HEALTH_ECC_UNCORRECTABLE_MAX = envint("HEALTH_ECC_UNCORRECTABLE_MAX", 0, minimum=0)
HEALTH_MAX_TEMPERATURE_C = envint("HEALTH_MAX_TEMPERATURE_C", 87, minimum=1)
LEASE_SWEEP_INTERVAL_S = envint("LEASE_SWEEP_INTERVAL_S", 1, minimum=1)
LEASE_SWEEP_BATCH = envint("LEASE_SWEEP_BATCH", 500, minimum=1)
LEASE_START_TIMEOUT_S = envint("LEASE_START_TIMEOUT_S", 180, minimum=1)
# A lease started later than this past its start is billed from when its keys went in.
LEASE_LATE_START_GRACE_S = envint("LEASE_LATE_START_GRACE_S", 60, minimum=0)
LEASE_AGENT_TIMEOUT_MS = envint("LEASE_AGENT_TIMEOUT_MS", 5000, minimum=50)
LEASE_CLEANUP_INTERVAL_S = envint("LEASE_CLEANUP_INTERVAL_S", 30, minimum=1)
# A region whose queues no worker has served for this long has its work sent to another region's
# (clusters/services/runtime.py).
RUNTIME_TAKEOVER_S = envint("RUNTIME_TAKEOVER_S", 20, minimum=1)
LEASE_ENDING_NOTICE_MINUTES = (60, 10)
METRICS_SCRAPE_TOKEN = envstr("METRICS_SCRAPE_TOKEN", "")

# --- Pages: how often a running lease's page refreshes its state and charts.
LEASE_PAGE_REFRESH_S = envint("LEASE_PAGE_REFRESH_S", 10, minimum=1)

# --- Celery: late acks and requeue on a lost worker, so a killed worker's task runs again.
CELERY_BROKER_URL = REDIS_URL.replace("unix://", "redis+socket://", 1)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
# Each region's polls and lease sweeps go to its own queues, `poll.<region>` and `leases.<region>`,
# made when first used; beat's ticks go to `dispatch`, which sends them there (clusters/tasks.py).
# A worker started without -Q consumes the queues listed here and every region's (voltpark/celery.py);
# production names its queues with -Q: a worker per region, in the region (README).
CELERY_TASK_QUEUES = (Queue("celery"), Queue("dispatch"))
CELERY_TASK_ROUTES = {
    "clusters.tasks.fleet_poll_dispatch": {"queue": "dispatch"},
    "clusters.tasks.leases_enforce_dispatch": {"queue": "dispatch"},
}
# Run-time ticks expire after one interval, so a backlog of beats never runs a sweep twice in a
# row. Billing meters a few minutes past every hour and closes the month on the 1st.
CELERY_BEAT_SCHEDULE = {
    "poll-fleet": {
        "task": "clusters.tasks.fleet_poll_dispatch",
        "schedule": float(POLL_INTERVAL_S),
        "options": {"expires": float(POLL_INTERVAL_S)},
    },
    "enforce-leases": {
        "task": "clusters.tasks.leases_enforce_dispatch",
        "schedule": float(LEASE_SWEEP_INTERVAL_S),
        "options": {"expires": float(LEASE_SWEEP_INTERVAL_S)},
    },
    "gpus-cleanup": {
        "task": "clusters.tasks.gpus_cleanup",
        "schedule": float(LEASE_CLEANUP_INTERVAL_S),
        "options": {"expires": float(LEASE_CLEANUP_INTERVAL_S)},
    },
    "telemetry-partitions": {"task": "clusters.tasks.telemetry_partitions_maintain", "schedule": 3600.0},
    "idempotency-keys-purge": {"task": "clusters.tasks.idempotency_keys_purge", "schedule": 3600.0},
    "billing-meter-recent-hours": {
        "task": "billing.tasks.meter_recent_hours",
        "schedule": crontab(minute=5),
    },
    "billing-debit-usage": {
        "task": "billing.tasks.usage_debit",
        "schedule": float(USAGE_DEBIT_INTERVAL_S),
        "options": {"expires": float(USAGE_DEBIT_INTERVAL_S)},
    },
    "billing-balances-watch": {
        "task": "billing.tasks.balances_watch",
        "schedule": float(BALANCE_SWEEP_INTERVAL_S),
        "options": {"expires": float(BALANCE_SWEEP_INTERVAL_S)},
    },
    "billing-credits-expire": {"task": "billing.tasks.credits_expire", "schedule": 3600.0},
    "programs-quota-requests-expire": {"task": "programs.tasks.quota_requests_expire", "schedule": 300.0},
    "billing-dunning": {"task": "billing.tasks.dunning_sweep", "schedule": crontab(minute=15)},
    "billing-close-previous-month": {
        "task": "billing.tasks.close_previous_month",
        "schedule": crontab(minute=30, hour=0, day_of_month=1),
    },
    "lease-requests-dispatch": {
        "task": "clusters.tasks.lease_requests_dispatch",
        "schedule": float(LEASE_REQUEST_DISPATCH_INTERVAL_S),
        "options": {"expires": float(LEASE_REQUEST_DISPATCH_INTERVAL_S)},
    },
}
