"""The newsletter's web service: sign-up, unsubscribe, SendGrid's event webhook, the archive.

``create_app(project)`` (in :mod:`newsletter.web.app`) builds the ASGI app that
``newsletter serve`` runs under uvicorn; docs/web-service.md explains it for users.
"""

from .embed import snippet

__all__ = ["snippet"]  # for `newsletter lists embed`
