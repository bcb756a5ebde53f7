"""gunicorn settings for clobus-consult: ``gunicorn -c gunicorn.conf.py wsgi:app``.

The settings and hooks live in clobus_consult/serve.py, shared with ``python3 clobus-consult.pyz serve``; every
value can be overridden from the environment (``GUNICORN_BIND``, ``GUNICORN_WORKERS``, ...).
"""
from clobus_consult.serve import *  # noqa: F403
