"""The subscriber store: lists, subscribers, memberships and their history.

Quick tour (every function is documented where it is defined)::

    from newsletter.store import Source, add_subscriber, iter_recipients, open_project_database

    db = open_project_database(project)               # the project's database
    with db.transaction() as session:                  # commits on success
        add_subscriber(session, "ann@example.org", "weekly", name="Ann",
                       source=Source.WEB_FORM)
    for recipient in iter_recipients(db.engine, "weekly"):   # constant memory
        ...  # recipient.id, recipient.email, recipient.name

Consent: nobody who unsubscribed, bounced or complained is put back on a list
without their explicit say-so (:mod:`newsletter.store.consent`); self-service
sign-ups go through :func:`sign_up`, which asks leavers to confirm again.

Erasure: :func:`forget` deletes a person for good and keeps only a keyed hash of the
address, so nobody can add it back (:mod:`newsletter.store.erasure`).

Statuses: a membership is unconfirmed, subscribed or unsubscribed; a subscriber
is active, bounced, complained or blocklisted. Only subscribed members who are
active receive mail. Every change is kept in the history with its Source.
"""

from ..emails import InvalidEmail, ascii_email, normalise_email
from .audit import AuditEntry, audit_entries, record_action
from .chores import ChoreLease
from .consent import ConsentRequired, Refusal
from .database import Database, make_engine, normalise_url, open_database, open_project_database
from .erasure import Erasure, Forgotten, forget, use_secret
from .leaving import REASONS, ReasonCount, reason_counts
from .lookup import SubscriberRef, find_subscriber
from .mailqueue import QueuedMail
from .models import (
    Base,
    HistoryEntry,
    MailingList,
    Membership,
    MembershipStatus,
    OptIn,
    Source,
    Subscriber,
    SubscriberStatus,
    email_key,
    utcnow,
)
from .ratelimits import RateLimitCount
from .recipients import (
    Recipient,
    count_recipients,
    iter_recipients,
    last_recipient_id,
    recipients_query,
)
from .review import Review, add_review, reviews_for
from .search import search_subscribers
from .signups import Outcome, SignUp, sign_up
from .subscribers import (
    ListSummary,
    NotFound,
    add_subscriber,
    confirm,
    create_list,
    default_list,
    find_list,
    get_list,
    get_or_create_list,
    get_subscriber,
    history,
    list_summaries,
    memberships,
    record,
    set_subscriber_status,
    subscribe,
    unsubscribe,
)
from .users import ROLE_PERMISSIONS, ROLES, StudioUser, list_users

__all__ = [
    "ROLES",
    "ROLE_PERMISSIONS",
    "AuditEntry",
    "Base",
    "ChoreLease",
    "ConsentRequired",
    "Database",
    "Erasure",
    "Forgotten",
    "HistoryEntry",
    "InvalidEmail",
    "ListSummary",
    "MailingList",
    "Membership",
    "MembershipStatus",
    "NotFound",
    "OptIn",
    "Outcome",
    "QueuedMail",
    "REASONS",
    "RateLimitCount",
    "ReasonCount",
    "Recipient",
    "Refusal",
    "Review",
    "SignUp",
    "Source",
    "Subscriber",
    "SubscriberRef",
    "StudioUser",
    "SubscriberStatus",
    "add_review",
    "add_subscriber",
    "ascii_email",
    "audit_entries",
    "confirm",
    "count_recipients",
    "create_list",
    "default_list",
    "email_key",
    "find_list",
    "find_subscriber",
    "forget",
    "get_list",
    "get_or_create_list",
    "get_subscriber",
    "history",
    "iter_recipients",
    "last_recipient_id",
    "list_users",
    "list_summaries",
    "make_engine",
    "memberships",
    "normalise_email",
    "normalise_url",
    "open_database",
    "open_project_database",
    "reason_counts",
    "recipients_query",
    "record",
    "record_action",
    "reviews_for",
    "search_subscribers",
    "set_subscriber_status",
    "sign_up",
    "subscribe",
    "unsubscribe",
    "use_secret",
    "utcnow",
]
