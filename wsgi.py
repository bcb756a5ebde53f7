"""The WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``."""
from clobus_consult import create_app

app = create_app()
