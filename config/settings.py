"""Settings for every deployment, read from the environment (see .env.example).

Defaults give the embedded mode: SpatiaLite, in-memory channel layer and cache, a
filesystem Celery broker. Production sets DATABASE_URL (PostGIS) and REDIS_URL.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# The embedded default is for a newcomer's machine; production must set its own key.
SECRET_KEY = env.str(
    "SECRET_KEY", default="embedded-insecure-key-change-me-in-production-0123456789"
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

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
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "carbon",
    "rewards",
    "biodiversity",
    "zerowaste",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
    # Several processes (web, worker, beat) share the file: wait for locks, don't fail.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["TEST"] = {"NAME": None}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Debian 12 ships GDAL 3.6; we never open spatial references or files supplied by users.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
SPATIALITE_LIBRARY_PATH = env.str("SPATIALITE_LIBRARY_PATH", default="mod_spatialite")

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
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

LANGUAGE_CODE = "en-us"
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
        "login": env.str("THROTTLE_LOGIN", default="10/min"),
        "register": env.str("THROTTLE_REGISTER", default="20/hour"),
        "claims": env.str("THROTTLE_CLAIMS", default="120/min"),
        # Linking answers 409 for a card someone else linked: slow down card-number guessing.
        "transit_cards": env.str("THROTTLE_TRANSIT_CARDS", default="20/hour"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Proxies in front of the app; throttles trust X-Forwarded-For only that deep.
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
        "BatchRowStatusEnum": ["accepted", "duplicate", "error"],
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
# A burst puts the resident in the penalty box for this long, doubled at each new burst.
CARBON_PENALTY_BASE_MINUTES = env.int("CARBON_PENALTY_BASE_MINUTES", default=15)
# Two claims of one behaviour by different evidence this close in time are the same act.
CARBON_SAME_ACT_MINUTES = env.int("CARBON_SAME_ACT_MINUTES", default=30)
# Hot system accounts (issuance, expiry, ...) are split in this many rows so concurrent
# awards don't queue on one locked row.
LEDGER_SYSTEM_SHARDS = env.int("LEDGER_SYSTEM_SHARDS", default=16)
LEDGER_HOLD_TIMEOUT_MINUTES = env.int("LEDGER_HOLD_TIMEOUT_MINUTES", default=60 * 24 * 7)
# Keys of the keyed hashes (HMAC-SHA256) that stand in for card numbers and partner account
# ids. The transit operator computes the same card hash, so it shares TRANSIT_CARD_HASH_KEY.
TRANSIT_CARD_HASH_KEY = env.str("TRANSIT_CARD_HASH_KEY", default="embedded-transit-card-key")
PARTNER_REF_HASH_KEY = env.str("PARTNER_REF_HASH_KEY", default="embedded-partner-ref-key")
# Trips faster than this (km/h, station to station along the network) are impossible.
TRANSIT_MAX_SPEED_KMH = env.int("TRANSIT_MAX_SPEED_KMH", default=100)
# Photo evidence limits.
PHOTO_MAX_BYTES = env.int("PHOTO_MAX_BYTES", default=10 * 1024 * 1024)
PHOTO_MAX_PIXELS = env.int("PHOTO_MAX_PIXELS", default=40_000_000)
# Perceptual-hash distance (bits of 64) under which two photos are the same picture, and
# how far back duplicates are looked for.
PHOTO_DUPLICATE_DISTANCE = env.int("PHOTO_DUPLICATE_DISTANCE", default=6)
PHOTO_DUPLICATE_LOOKBACK_DAYS = env.int("PHOTO_DUPLICATE_LOOKBACK_DAYS", default=180)
PARTNER_SIGNATURE_TOLERANCE_SECONDS = env.int("PARTNER_SIGNATURE_TOLERANCE_SECONDS", default=300)
# Fernet key that encrypts partner secrets at rest; derived from SECRET_KEY when unset.
PARTNER_SECRETS_KEY = env.str("PARTNER_SECRETS_KEY", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
