"""WSGI entry point (``gunicorn wsgi:app``): the only module-level application object."""

from fhirnet.web.app import create_app

app = create_app()
