"""Settings for every deployment, read from the environment (see .env.example).

Defaults give the embedded mode: SpatiaLite, in-memory channel layer and cache, a
filesystem Celery broker. Production sets DATABASE_URL (PostGIS) and REDIS_URL.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

from config.channel_layers import channel_layers
from config.secret_keys import secrets_resolve

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# --- local or production ------------------------------------------------------
# A local process (a developer's machine, the test runner) may keep generated secrets in
# var/ and serves plain HTTP. It is local when DATABASE_URL is unset (the embedded default),
# when DEBUG is on, or when CARBON_LOCAL=1 (the test runner sets it, so the suite also runs
# against a local PostgreSQL). A production deployment sets DATABASE_URL, so it can't fall
# into local mode without saying CARBON_LOCAL=1.
CARBON_LOCAL = env.bool("CARBON_LOCAL", default=DEBUG or not env.str("DATABASE_URL", default=""))

# --- secrets -------------------------------------------------------------------
# From the environment; locally, unset ones are generated once into var/secrets.json.
# A missing, placeholder or short secret stops every process here (see config.secret_keys).
_secrets, CARBON_SECRETS_FROM_FILE = secrets_resolve(
    environ=os.environ, local=CARBON_LOCAL, path=VAR_DIR / "secrets.json"
)
SECRET_KEY = _secrets["SECRET_KEY"]
# Fernet keys encrypting partner secrets at rest: comma-separated, the first encrypts and
# all decrypt, so a key can be rotated by putting the new one first.
PARTNER_SECRETS_KEY = _secrets["PARTNER_SECRETS_KEY"]
# Keys of the keyed hashes (HMAC-SHA256) that stand in for card numbers and partner account
# ids. The transit operator computes the same card hash, so it shares TRANSIT_CARD_HASH_KEY.
TRANSIT_CARD_HASH_KEY = _secrets["TRANSIT_CARD_HASH_KEY"]
PARTNER_REF_HASH_KEY = _secrets["PARTNER_REF_HASH_KEY"]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- security headers and cookies ----------------------------------------------
# Production serves HTTPS only; a local process serves plain HTTP on 127.0.0.1. Each is
# settable by environment. Behind a proxy that terminates TLS, set SECURE_PROXY_SSL_HEADER
# to the header it sets (X-Forwarded-Proto), or HTTPS redirects loop.
_https = not CARBON_LOCAL
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=_https)
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[])
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if _https else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=_https)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=_https)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = env.str("SECURE_REFERRER_POLICY", default="same-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=_https)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=_https)
# Only the admin's forms use the CSRF token (the API is token-authenticated): no script
# of ours reads the cookie.
CSRF_COOKIE_HTTPONLY = True


def _csp_directives(policy: str) -> dict[str, list[str]]:
    """The directives of a policy string ("default-src 'self'; ...") for django-csp."""
    directives = {}
    for part in policy.split(";"):
        if words := part.split():
            directives[words[0].lower()] = words[1:]
    return directives


# One policy for the admin, the API and its docs. Swagger UI and ReDoc load only our own
# (sidecar) files; ReDoc sets inline styles and runs its search in a blob: worker, Swagger
# UI draws data: images. The docs' Google-fonts link is refused: the fallback font shows.
CSP_DEFAULT_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# CSP_POLICY: unset = the policy above, "off" = none, else your own policy.
# CSP_REPORT_ONLY=1 sends it as Content-Security-Policy-Report-Only (to try a new policy).
_csp_policy = env.str("CSP_POLICY", default=CSP_DEFAULT_POLICY).strip()
_csp = {} if _csp_policy.lower() in ("off", "") else {"DIRECTIVES": _csp_directives(_csp_policy)}
if _csp and (_csp_report_uri := env.str("CSP_REPORT_URI", default="")):
    _csp["DIRECTIVES"]["report-uri"] = [_csp_report_uri]
_csp_report_only = env.bool("CSP_REPORT_ONLY", default=False)
CONTENT_SECURITY_POLICY = {} if _csp_report_only else _csp
CONTENT_SECURITY_POLICY_REPORT_ONLY = _csp if _csp_report_only else {}

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    # Listed for its translations (the token errors); it has no models.
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "csp",
    "carbon",
    "rewards",
    "biodiversity",
    "zerowaste",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before CommonMiddleware (Django's order): picks each request's language
    # from Accept-Language (or the admin's language cookie), answers Content-Language and
    # Vary: Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns an admin login lockout into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"spatialite:///{VAR_DIR / 'carbon.sqlite3'}")
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"].endswith("spatialite"):
    # Several processes (web, worker, beat) and every request thread share the file.
    # WAL: readers never wait for the writer, nor the writer for readers. IMMEDIATE: a
    # transaction takes the write lock at BEGIN, so it waits its turn (busy timeout) there
    # instead of failing when a read inside it tries to become a write. Autocommit reads
    # outside atomic blocks take no write lock at all. The backend is Django's SpatiaLite
    # one, made to keep the busy timeout (loading mod_spatialite resets it to 5 s).
    DATABASES["default"]["ENGINE"] = "config.spatialite"
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # seconds a request waits for the write lock before failing
            "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=60),
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL",
        }
    )
    DATABASES["default"]["TEST"] = {"NAME": None}
else:
    if DATABASES["default"]["ENGINE"] == "django.contrib.gis.db.backends.postgis":
        # Django's PostGIS backend, with `__in` lists sent as one array parameter
        # (config/postgis/base.py).
        DATABASES["default"]["ENGINE"] = "config.postgis"
    # Under the ASGI server every request runs in a thread of its own, so connections kept
    # per thread (CONN_MAX_AGE) piled up to PostgreSQL's max_connections. A pool per
    # process instead: at most DB_POOL_MAX_SIZE connections, and a request waits up to
    # DB_POOL_TIMEOUT seconds for one. DB_POOL_MAX_SIZE=0 turns it off (behind an external
    # pooler such as PgBouncer): a connection per request then, never kept.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # With the pool, this is psycopg_pool's check of each connection it hands out (an empty
    # query: one round trip per request that uses the database, about 0.1 ms): a connection
    # broken while it sat in the pool (a restart, a failover) is replaced instead of
    # failing the request that drew it.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    _pool_max = env.int("DB_POOL_MAX_SIZE", default=10)
    if _pool_max > 0:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(env.int("DB_POOL_MIN_SIZE", default=2), _pool_max),
            "max_size": _pool_max,
            "timeout": env.float("DB_POOL_TIMEOUT", default=30.0),
        }
    else:
        # Transaction pooling hands each transaction any server connection: no cursor
        # may outlive its transaction.
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Debian 12 ships GDAL 3.6; we never open spatial references or files supplied by users.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
SPATIALITE_LIBRARY_PATH = env.str("SPATIALITE_LIBRARY_PATH", default="mod_spatialite")

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.redis_pool.ProcessRedisCache",
            "LOCATION": REDIS_URL,
            # One pool and one client per process, not per request or call
            # (config/redis_pool.py).
            "OPTIONS": {"pool_class": "config.redis_pool.ProcessConnectionPool"},
        }
    }
    # Redis pub/sub, its prefix naming the database (config/channel_layers.py).
    CHANNEL_LAYERS = channel_layers(REDIS_URL)
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_USER_MODEL = "carbon.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ],
)

# --- languages -----------------------------------------------------------------
# Every answer (the API's error messages, the docs' error descriptions, the admin) follows
# the request's Accept-Language: Simplified Chinese or English. Without one, Simplified
# Chinese: residents read Chinese, and so do the city's staff and the partners' engineers;
# partners' systems that want English send `Accept-Language: en`. Codes never change with
# the language. Processes outside a request (Celery, commands) speak the default too.
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
# Our catalogue (locale/zh_Hans/LC_MESSAGES/django.po, and its compiled .mo, committed so a
# machine without GNU gettext serves it; tests check the two agree).
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The API's own JSON parser: it refuses absurdly nested bodies (carbon.api.parsing).
    "DEFAULT_PARSER_CLASSES": ["carbon.api.parsing.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # drf-spectacular's, plus the error statuses each operation can answer (carbon.api.schema).
    "DEFAULT_SCHEMA_CLASS": "carbon.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "carbon.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        # Per client address: every login attempt, right or wrong (failed ones are also
        # counted per account and per client by django-axes, below).
        "login": env.str("THROTTLE_LOGIN", default="10/min"),
        # Per client address, apart from logins: one address's failed logins must not stop
        # everyone's sessions from refreshing.
        "refresh": env.str("THROTTLE_REFRESH", default="60/min"),
        # Per resident: erasing the account asks for the password again.
        "erase": env.str("THROTTLE_ERASE", default="5/hour"),
        "register": env.str("THROTTLE_REGISTER", default="20/hour"),
        "claims": env.str("THROTTLE_CLAIMS", default="120/min"),
        # Asking to link takes any card number: slow down card-number guessing.
        "transit_cards": env.str("THROTTLE_TRANSIT_CARDS", default="20/hour"),
        # Per resident: starting a card or partner link, and every one-time code entered.
        "link_attempts": env.str("THROTTLE_LINK_ATTEMPTS", default="10/hour"),
        # Per resident, both kinds of appeal: requests (retries included); the service also
        # caps the appeals made (CARBON_APPEALS_PER_DAY).
        "appeals": env.str("THROTTLE_APPEALS", default="30/hour"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Reverse proxies in front of the app: throttles and login lockouts take the client's
    # address from X-Forwarded-For that many hops from the right. 0 = the socket address.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=30)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}
# An open balance WebSocket closes when its token expires; that the account still exists is
# checked on every message and at least this often (seconds).
BALANCE_SOCKET_RECHECK_SECONDS = env.float("BALANCE_SOCKET_RECHECK_SECONDS", default=60.0)

# --- failed logins (django-axes) ---------------------------------------------
# Failed logins, of the API and of the admin, counted per account and per client address:
# either reaching the limit locks that account / address out for the cool-off. An
# administrator lifts a lockout by deleting its rows under Axes > Access attempts (or
# `manage.py axes_reset_username EMAIL`, `axes_reset_ip ADDRESS`).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Guesses during a lockout don't extend it: someone else's failures can't keep an account
# locked for ever, only for the cool-off.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The same address as the throttles see (NUM_PROXIES), and the email as typed in any case.
AXES_CLIENT_IP_CALLABLE = "carbon.services.sessions.login_client_address"
AXES_USERNAME_CALLABLE = "carbon.services.sessions.login_account_key"
# Successful logins are not logged (personal data we don't need); failures expire with
# the cool-off.
AXES_DISABLE_ACCESS_LOG = True
# No start-up banner on every manage.py command; failures are still logged.
AXES_VERBOSE = False

SPECTACULAR_SETTINGS = {
    "TITLE": "Carbon City API",
    "DESCRIPTION": "Citizen carbon-credit and engagement backend. Points are integer grams of CO2e.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ConsentScopeEnum": "carbon.models.people.ConsentScope",
        "ClaimStatusEnum": "carbon.models.claims.ClaimStatus",
        "AppealStatusEnum": "carbon.models.claims.AppealStatus",
        "BatchRowStatusEnum": "carbon.adapters.batch.api.ROW_STATUS_CHOICES",
        "BatchRowCodeEnum": "carbon.adapters.batch.api.ROW_CODE_CHOICES",
        "LinkStatusEnum": "carbon.models.linking.LinkStatus",
        "LoanLinkStatusEnum": "rewards.offsets.models.LoanLinkStatus",
        "OffsetStatusEnum": "rewards.offsets.models.OffsetStatus",
        "BankDecisionEnum": "rewards.offsets.api.BANK_DECISIONS",
    },
    # The default hook (enum components), then the error envelope and its catalogue of codes.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "carbon.api.errors.error_catalogue_schema",
    ],
}

# Celery: Redis in production; a filesystem broker in the embedded mode so the periodic
# jobs still run with no server installed.
if REDIS_URL:
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
else:
    _broker_dir = VAR_DIR / "celery-broker"
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "ledger-expire-pending": {"task": "carbon.tasks.expire_pending_transfers", "schedule": 60.0},
    "ledger-expire-lots": {"task": "carbon.tasks.expire_lots", "schedule": 15 * 60.0},
    "claims-release-held": {"task": "carbon.tasks.release_held_claims", "schedule": 60.0},
    "partner-events-expire": {
        "task": "carbon.tasks.expire_unmatched_partner_events",
        "schedule": 3600.0,
    },
    "photos-purge-orphans": {"task": "carbon.tasks.purge_orphan_photo_files", "schedule": 3600.0},
    "transit-settle-taps": {"task": "carbon.tasks.settle_transit_taps", "schedule": 5 * 60.0},
    "transit-expire-trips": {"task": "carbon.tasks.expire_transit_trips", "schedule": 60 * 60.0},
    "partners-purge-nonces": {"task": "carbon.tasks.purge_partner_nonces", "schedule": 10 * 60.0},
    # Mortgage-interest offsets: the day's batch per bank (daily, 01:00 local), sending due
    # batches with backoff, and voiding offsets the bank never answered.
    "offsets-prepare-batches": {
        "task": "rewards.offsets.tasks.prepare_offset_batches",
        "schedule": crontab(hour=1, minute=0),
    },
    "offsets-send-batches": {"task": "rewards.offsets.tasks.send_offset_batches", "schedule": 60.0},
    "offsets-expire": {"task": "rewards.offsets.tasks.expire_offsets", "schedule": 3600.0},
    "leaderboards-roll": {"task": "carbon.tasks.roll_leaderboards", "schedule": 5 * 60.0},
}

# --- the carbon domain -------------------------------------------------------
# Verification adapters by evidence type; more come from the carbon.verifiers entry points.
CARBON_VERIFIERS = env.dict(
    "CARBON_VERIFIERS",
    default={
        "self": "carbon.verifiers.self_declaration.SelfDeclarationVerifier",
        "transit": "carbon.adapters.transit.verifier.TransitVerifier",
        "photo": "carbon.adapters.photo.verifier.PhotoVerifier",
        "partner": "carbon.adapters.partner_events.verifier.PartnerEventVerifier",
    },
)
# Evidence-tier weights in basis points (10000 = full factor). Hubei paid a self check-in
# about half of a screenshot-backed ride.
CARBON_TIER_WEIGHTS_BP = {
    "partner": env.int("CARBON_WEIGHT_PARTNER_BP", default=10000),
    "transit": env.int("CARBON_WEIGHT_TRANSIT_BP", default=10000),
    "photo": env.int("CARBON_WEIGHT_PHOTO_BP", default=8000),
    "self": env.int("CARBON_WEIGHT_SELF_BP", default=5000),
}
CARBON_THROTTLE_ACTIONS = env.int("CARBON_THROTTLE_ACTIONS", default=35)
CARBON_THROTTLE_WINDOW_MINUTES = env.int("CARBON_THROTTLE_WINDOW_MINUTES", default=15)
# Appeals (refused and missed credit together) a resident may make in any 24 hours: each
# one puts a claim before a reviewer.
CARBON_APPEALS_PER_DAY = env.int("CARBON_APPEALS_PER_DAY", default=5)
# A burst puts the resident in the penalty box for this long, doubled at each new burst.
CARBON_PENALTY_BASE_MINUTES = env.int("CARBON_PENALTY_BASE_MINUTES", default=15)
# Two claims of one behaviour by different evidence this close in time are the same act.
CARBON_SAME_ACT_MINUTES = env.int("CARBON_SAME_ACT_MINUTES", default=30)
# Self-declared claims (the lowest trust) have their own daily budget of credited grams per
# resident, lower for accounts younger than CARBON_SELF_NEW_ACCOUNT_DAYS; a random share
# of them (basis points, 500 = 5 %) goes to a reviewer instead of being credited at once.
CARBON_SELF_DAILY_BUDGET_G = env.int("CARBON_SELF_DAILY_BUDGET_G", default=2000)
CARBON_SELF_NEW_ACCOUNT_DAILY_BUDGET_G = env.int(
    "CARBON_SELF_NEW_ACCOUNT_DAILY_BUDGET_G", default=500
)
CARBON_SELF_NEW_ACCOUNT_DAYS = env.int("CARBON_SELF_NEW_ACCOUNT_DAYS", default=7)
CARBON_SELF_REVIEW_SAMPLE_BP = env.int("CARBON_SELF_REVIEW_SAMPLE_BP", default=500)
# Linking a transit card or partner account: the link stays pending (earning nothing) until
# the partner confirms it or the resident enters the partner's one-time code.
CARBON_LINK_PENDING_HOURS = env.int("CARBON_LINK_PENDING_HOURS", default=48)
CARBON_LINK_CODE_TTL_SECONDS = env.int("CARBON_LINK_CODE_TTL_SECONDS", default=600)
CARBON_LINK_CODE_MAX_ATTEMPTS = env.int("CARBON_LINK_CODE_MAX_ATTEMPTS", default=5)
CARBON_LINK_MAX_PENDING = env.int("CARBON_LINK_MAX_PENDING", default=3)
# Hot system accounts (issuance, expiry, ...) are split in this many rows so concurrent
# awards don't queue on one locked row.
LEDGER_SYSTEM_SHARDS = env.int("LEDGER_SYSTEM_SHARDS", default=16)
LEDGER_HOLD_TIMEOUT_MINUTES = env.int("LEDGER_HOLD_TIMEOUT_MINUTES", default=60 * 24 * 7)
# Trips faster than this (km/h, station to station along the network) are impossible.
TRANSIT_MAX_SPEED_KMH = env.int("TRANSIT_MAX_SPEED_KMH", default=100)
# Credit the usual claims of a feed batch (transit taps, partner events) set-based, the rest
# one at a time; off: every claim one at a time, the reference path.
CARBON_FEED_BULK_CREDIT = env.bool("CARBON_FEED_BULK_CREDIT", default=True)
# Photo evidence limits.
PHOTO_MAX_BYTES = env.int("PHOTO_MAX_BYTES", default=10 * 1024 * 1024)
PHOTO_MAX_PIXELS = env.int("PHOTO_MAX_PIXELS", default=40_000_000)
# Photos decoded at once per process (each may take the memory README "Photo memory"
# states), and how long an upload waits for its turn before a 503 photo_work_busy.
PHOTO_INSPECT_CONCURRENCY = env.int("PHOTO_INSPECT_CONCURRENCY", default=2)
PHOTO_INSPECT_WAIT_SECONDS = env.float("PHOTO_INSPECT_WAIT_SECONDS", default=10.0)
# Perceptual-hash distance (bits of 64) under which two photos are the same picture, and
# how far back duplicates are looked for.
PHOTO_DUPLICATE_DISTANCE = env.int("PHOTO_DUPLICATE_DISTANCE", default=6)
PHOTO_DUPLICATE_LOOKBACK_DAYS = env.int("PHOTO_DUPLICATE_LOOKBACK_DAYS", default=180)
PARTNER_SIGNATURE_TOLERANCE_SECONDS = env.int("PARTNER_SIGNATURE_TOLERANCE_SECONDS", default=300)
# Requests we send to partners (carbon.services.partner_outbound): connect + read timeout.
PARTNER_OUTBOUND_TIMEOUT_SECONDS = env.float("PARTNER_OUTBOUND_TIMEOUT_SECONDS", default=10.0)
# Days a bank has to confirm an offset before it is voided (points back); the offset's hold
# times out 2 days later (rewards.offsets.services.requests.offset_hold_timeout).
OFFSETS_CONFIRM_DAYS = env.int("OFFSETS_CONFIRM_DAYS", default=14)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- rewards: offers, vouchers, merchant staff ---------------------------------------------
# A voucher's ledger hold outlives the voucher by this much, so the vouchers' own expiry job
# (below) resolves it as the offer says before the ledger's job would void it.
REWARDS_HOLD_GRACE_HOURS = env.int("REWARDS_HOLD_GRACE_HOURS", default=24)
# How long a merchant-staff invitation's one-time token may be used to set a password.
REWARDS_INVITATION_HOURS = env.int("REWARDS_INVITATION_HOURS", default=72)
CELERY_BEAT_SCHEDULE["rewards-expire-vouchers"] = {
    "task": "rewards.tasks.expire_vouchers",
    "schedule": 10 * 60.0,
}
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "OfferKindEnum": "rewards.offers.models.OfferKind",
        "VoucherStatusEnum": "rewards.vouchers.models.VoucherStatus",
    }
)
# --- transit top-ups (rewards/topups) -----------------------------------------
# Sent to the operator's endpoint_url + TOPUP_OPERATOR_PATH. A send without an answer is
# retried after TOPUP_RETRY_BASE_SECONDS, doubling up to TOPUP_RETRY_MAX_SECONDS (with jitter),
# with the same request id; with no answer TOPUP_DEADLINE_MINUTES after the request (or after
# TOPUP_MAX_ATTEMPTS sends) the top-up fails and the hold is voided. A worker's claim on a row
# lasts TOPUP_LEASE_SECONDS (at least 4 x PARTNER_OUTBOUND_TIMEOUT_SECONDS + 5 is used); a row
# left `sending` longer is sent again by the sweep, every TOPUP_SWEEP_SECONDS.
# The caller's ledger hold must outlive deadline + lease + sweep interval (1 day 3 minutes by
# default: rewards.topups.services.topup_min_hold_timeout()); topup_request refuses a shorter
# one. LEDGER_HOLD_TIMEOUT_MINUTES (7 days) is enough.
TOPUP_OPERATOR_PATH = env.str("TOPUP_OPERATOR_PATH", default="/topups")
TOPUP_MAX_AMOUNT_CNY = env.int("TOPUP_MAX_AMOUNT_CNY", default=500)
TOPUP_RETRY_BASE_SECONDS = env.float("TOPUP_RETRY_BASE_SECONDS", default=30.0)
TOPUP_RETRY_MAX_SECONDS = env.float("TOPUP_RETRY_MAX_SECONDS", default=30 * 60.0)
TOPUP_MAX_ATTEMPTS = env.int("TOPUP_MAX_ATTEMPTS", default=30)
TOPUP_DEADLINE_MINUTES = env.int("TOPUP_DEADLINE_MINUTES", default=24 * 60)
TOPUP_LEASE_SECONDS = env.int("TOPUP_LEASE_SECONDS", default=120)
TOPUP_SWEEP_SECONDS = env.int("TOPUP_SWEEP_SECONDS", default=60)
TOPUP_SWEEP_BATCH = env.int("TOPUP_SWEEP_BATCH", default=50)
CELERY_BEAT_SCHEDULE["topups-sweep"] = {
    "task": "rewards.topups.tasks.sweep_topups",
    "schedule": float(TOPUP_SWEEP_SECONDS),
}
# --- biodiversity -------------------------------------------------------------
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["sightings"] = env.str(
    "THROTTLE_SIGHTINGS", default="60/min"
)
# The public map's tiles: empty = district outlines only (works offline); in production a
# tile server of your own or a licensed one, e.g. https://tiles.example.org/{z}/{x}/{y}.png
BIODIVERSITY_MAP_TILE_URL = env.str("BIODIVERSITY_MAP_TILE_URL", default="")
BIODIVERSITY_MAP_TILE_ATTRIBUTION = env.str("BIODIVERSITY_MAP_TILE_ATTRIBUTION", default="")
BIODIVERSITY_MAP_CENTER = env.str("BIODIVERSITY_MAP_CENTER", default="30.56,114.32")
# Darwin Core: occurrenceID is this URL plus the sighting's id; the dataset's title.
BIODIVERSITY_OCCURRENCE_BASE_URL = env.str(
    "BIODIVERSITY_OCCURRENCE_BASE_URL", default="https://carbon.city/biodiversity/sightings"
)
BIODIVERSITY_DATASET_TITLE = env.str(
    "BIODIVERSITY_DATASET_TITLE", default="Carbon City biodiversity sightings"
)
CELERY_BEAT_SCHEDULE["biodiversity-map-grid"] = {
    "task": "biodiversity.tasks.rebuild_map_grid",
    "schedule": 60.0,
}
# --- money through Stripe (rewards/payments, sponsorships, pool, settlements) --
# Without STRIPE_SECRET_KEY the payment endpoints answer `payments_not_configured`.
# STRIPE_API_BASE points the client at a Stripe-compatible server (a local one in tests and
# demos); empty means Stripe itself. Webhooks are verified with STRIPE_WEBHOOK_SECRET and
# refused when their timestamp is more than STRIPE_WEBHOOK_TOLERANCE_SECONDS old.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default=300)
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=20.0)
STRIPE_CURRENCY = env.str("STRIPE_CURRENCY", default="cny")
# Outbox of Stripe calls: retried with backoff (same idempotency key) up to the max attempts;
# a worker's claim lasts STRIPE_LEASE_SECONDS; the sweep runs every STRIPE_SWEEP_SECONDS.
STRIPE_MAX_ATTEMPTS = env.int("STRIPE_MAX_ATTEMPTS", default=12)
STRIPE_RETRY_BASE_SECONDS = env.float("STRIPE_RETRY_BASE_SECONDS", default=30.0)
STRIPE_RETRY_MAX_SECONDS = env.float("STRIPE_RETRY_MAX_SECONDS", default=3600.0)
STRIPE_LEASE_SECONDS = env.int("STRIPE_LEASE_SECONDS", default=120)
STRIPE_SWEEP_SECONDS = env.int("STRIPE_SWEEP_SECONDS", default=60)
# Sponsorships: the smallest and largest card payment, in fen.
SPONSORSHIP_MIN_FEN = env.int("SPONSORSHIP_MIN_FEN", default=100_00)
SPONSORSHIP_MAX_FEN = env.int("SPONSORSHIP_MAX_FEN", default=1_000_000_00)
POOL_MAX_TONNES = env.int("POOL_MAX_TONNES", default=1000)
CELERY_BEAT_SCHEDULE["payments-sweep"] = {
    "task": "rewards.payments.tasks.sweep_stripe_requests",
    "schedule": float(STRIPE_SWEEP_SECONDS),
}
CELERY_BEAT_SCHEDULE["settlements-monthly"] = {
    "task": "rewards.settlements.tasks.settle_last_month",
    "schedule": 24 * 3600.0,  # daily: settling a month already settled does nothing
}
# --- leaderboards ----------------------------------------------------------------
# "redis" (sorted sets) when REDIS_URL is set, else "database"; set LEADERBOARD_BACKEND to
# choose. LEADERBOARD_REDIS_URL defaults to REDIS_URL.
LEADERBOARD_BACKEND = env.str("LEADERBOARD_BACKEND", default="redis" if REDIS_URL else "database")
LEADERBOARD_REDIS_URL = env.str("LEADERBOARD_REDIS_URL", default=REDIS_URL)
# At most one push per board (and per resident's balance) this often, in seconds.
LEADERBOARD_PUSH_INTERVAL = env.float("LEADERBOARD_PUSH_INTERVAL", default=1.0)
# How often each ASGI worker looks for changed boards to push.
LEADERBOARD_POLL_SECONDS = env.float("LEADERBOARD_POLL_SECONDS", default=0.1)
# Rows in a pushed update and a socket snapshot; the API's ?limit= caps at LEADERBOARD_MAX_LIMIT.
LEADERBOARD_PUSH_ROWS = env.int("LEADERBOARD_PUSH_ROWS", default=20)
LEADERBOARD_MAX_LIMIT = env.int("LEADERBOARD_MAX_LIMIT", default=100)
# A socket's resident outside the pushed rows has their rank re-read at most this often.
LEADERBOARD_ME_SECONDS = env.float("LEADERBOARD_ME_SECONDS", default=5.0)
# On Redis, board writes after commit gather in a per-process outbox for this long (seconds)
# and go out in one round trip (carbon.leaderboards.publisher); 0 writes each one inline.
# At LEADERBOARD_PUBLISH_LIMIT pending score changes the writer sends them itself.
LEADERBOARD_PUBLISH_SECONDS = env.float("LEADERBOARD_PUBLISH_SECONDS", default=0.02)
LEADERBOARD_PUBLISH_LIMIT = env.int("LEADERBOARD_PUBLISH_LIMIT", default=5000)
# Residents `manage.py seed_demo` grows the demo city to (its --size overrides). The test
# suite sets 0: tests that need a city ask for one of their own size.
DEMO_CITY_SIZE = env.int("DEMO_CITY_SIZE", default=1500)
# --- zero waste: cells, notice periods, campaigns and their anomaly review (zerowaste) -------
# Days a cell stays in its public notice period (公示) before it may be certified; how long
# before expiry a certificate may be renewed; the reminders to renew (days before expiry).
ZEROWASTE_NOTICE_DAYS = env.int("ZEROWASTE_NOTICE_DAYS", default=7)
ZEROWASTE_RENEWAL_WINDOW_DAYS = env.int("ZEROWASTE_RENEWAL_WINDOW_DAYS", default=90)
ZEROWASTE_REMINDER_DAYS = [int(d) for d in env.list("ZEROWASTE_REMINDER_DAYS", default=[90, 30, 7])]
# The vote anomaly review (zerowaste.campaigns.anomalies): "new" accounts, a burst (votes for
# one candidate in one window, at least BURST_MIN_VOTES and BURST_FACTOR x its usual rate), a
# cluster (new accounts from one registration day with identical ballots), serial voting (a
# run of votes for one candidate by different accounts, each within SERIAL_GAP_SECONDS, at
# a rhythm varying by at most SERIAL_JITTER_SECONDS).
ZEROWASTE_ANOMALY = {
    "NEW_ACCOUNT_DAYS": env.int("ZEROWASTE_NEW_ACCOUNT_DAYS", default=30),
    "BURST_WINDOW_SECONDS": env.int("ZEROWASTE_BURST_WINDOW_SECONDS", default=600),
    "BURST_MIN_VOTES": env.int("ZEROWASTE_BURST_MIN_VOTES", default=30),
    "BURST_FACTOR": env.int("ZEROWASTE_BURST_FACTOR", default=5),
    "CLUSTER_MIN_ACCOUNTS": env.int("ZEROWASTE_CLUSTER_MIN_ACCOUNTS", default=8),
    "SERIAL_MIN_RUN": env.int("ZEROWASTE_SERIAL_MIN_RUN", default=10),
    "SERIAL_GAP_SECONDS": env.float("ZEROWASTE_SERIAL_GAP_SECONDS", default=3.0),
    "SERIAL_JITTER_SECONDS": env.float("ZEROWASTE_SERIAL_JITTER_SECONDS", default=0.5),
}
CELERY_BEAT_SCHEDULE.update(
    {
        "zerowaste-expire-cells": {"task": "zerowaste.tasks.expire_cells", "schedule": 3600.0},
        "zerowaste-remind-renewals": {
            "task": "zerowaste.tasks.remind_renewals",
            "schedule": crontab(hour=9, minute=0),
        },
        "zerowaste-review-votes": {"task": "zerowaste.tasks.review_votes", "schedule": 900.0},
        "zerowaste-publish-results": {
            "task": "zerowaste.tasks.publish_results",
            "schedule": 3600.0,
        },
    }
)
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "CellKindEnum": "zerowaste.cells.models.CellKind",
        "CellStatusEnum": "zerowaste.cells.models.CellStatus",
        "CampaignPhaseEnum": "zerowaste.campaigns.serializers.PHASES",
        # GeoJSON's "type" members (zero waste's and biodiversity's maps).
        "GeoJsonPointTypeEnum": ["Point"],
        "GeoJsonFeatureTypeEnum": ["Feature"],
        "GeoJsonFeatureCollectionTypeEnum": ["FeatureCollection"],
    }
)
