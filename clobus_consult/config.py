"""Every setting with its default, in one place.

The chain (see ``create_app``): these defaults → ``instance/config.py`` → environment variables prefixed
``CLOBUS_`` (``CLOBUS_DATABASE_URL`` sets ``DATABASE_URL``; values are parsed as JSON when they parse, so
``CLOBUS_SYNC_MAX_ATTEMPTS=5`` is an int) → the test config.
"""

# Storage. None means ``sqlite:///<instance>/clobus.sqlite3``.
DATABASE_URL = None
DATABASE_MAX_CONNECTIONS = 20
# Apply pending schema migrations when the app starts (under a lock, so several workers are safe).
MIGRATE_ON_START = True

# Authentication: "static" (API_TOKENS), "oidc", or "any" (development only: header required, not checked).
AUTH_MODE = "static"
API_TOKENS = ""
OIDC_ISSUER = None
OIDC_AUDIENCE = None

# Chatwoot Application API (unset URL: Chatwoot sync disabled).
CHATWOOT_URL = None
CHATWOOT_API_TOKEN = None
CHATWOOT_ACCOUNT_ID = None
CHATWOOT_INBOX_ID = None
CHATWOOT_WEBHOOK_SECRET = None
CHATWOOT_WEBHOOK_TOKEN = None

# 1C:ЦЛ OData root, ".../odata/standard.odata/" (unset URL: 1C sync disabled).
ONEC_URL = None
ONEC_USER = None
ONEC_PASSWORD = None
ONEC_COUNTERPARTY_FOLDER = "7ccd31ca-887b-11eb-938b-00e04cd03b68"
ONEC_PULL_INTERVAL_SECONDS = 300

# Sync.
SYNC_INTERVAL_SECONDS = 10
SYNC_INLINE_BUDGET_SECONDS = 5
SYNC_MAX_ATTEMPTS = 20
# A claimed task is someone's for this long; if its worker dies, another takes it over afterwards.
# Must exceed the longest push (several upstream calls, each bounded by the timeouts below).
SYNC_LEASE_SECONDS = 300
SYNC_THREADS = 8  # upstream calls in flight per process
CHATWOOT_TIMEOUT = (3.05, 10.0)  # connect, read (seconds)
ONEC_TIMEOUT = (5.0, 30.0)  # 1C is slow: ~11 s for the first request after idle, 1–5 s per document POST
SCHEDULER_ENABLED = True

# Input rules.
TIMEZONE = "Asia/Tashkent"
DEFAULT_PHONE_REGION = "UZ"
MAX_FUTURE_DAYS = 30
MAX_CONTENT_LENGTH = 64 * 1024

# Rate limits (flask-limiter's own setting names).
RATELIMIT_ENABLED = True
RATELIMIT_DEFAULT = "120 per minute"
RATELIMIT_CREATE = "20 per minute"
RATELIMIT_PER_IP = "600 per minute"
RATELIMIT_STORAGE_URI = "memory://"
RATELIMIT_HEADERS_ENABLED = True

# nginx on this host is the one proxy whose X-Forwarded-For entry is trusted (0: no proxy in front).
PROXY_TRUSTED_HOPS = 1
# Browser origins allowed to call the API (comma-separated), e.g. "https://clobus.uz,https://t.me".
CORS_ORIGINS = ""

# OpenAPI / Swagger UI (flask-smorest).
API_TITLE = "clobus-consult"
API_VERSION = "1.0.0"
OPENAPI_VERSION = "3.0.3"
OPENAPI_URL_PREFIX = "/"
OPENAPI_JSON_PATH = "api/openapi.json"
OPENAPI_SWAGGER_UI_PATH = "docs"
OPENAPI_SWAGGER_UI_URL = "/docs/assets/"  # served by the service itself (swagger-ui-bundle): works offline

# Logs: "json" (one object per line) or "text".
LOG_FORMAT = "json"
LOG_LEVEL = "INFO"

