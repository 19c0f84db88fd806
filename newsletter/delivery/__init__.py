"""Sending: Mail Send requests, transports (SendGrid, outbox), campaigns and the send itself.

For one transactional message (double opt-in confirmation, welcome)::

    from newsletter.delivery import send_one
    send_one(project, to="ann@example.org", subject="Please confirm", html=..., text=...)
"""

from .single import send_one

__all__ = ["send_one"]
