"""What reviewers said about an issue through its review link: Approve, or a comment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .models import Base, UTCDateTime, utcnow

VERDICTS = ("approve", "comment")


class Review(Base):
    """One reviewer's word on one issue."""

    __tablename__ = "studio_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue: Mapped[str] = mapped_column(String(200), index=True)
    reviewer: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(10))
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def add_review(session: Session, issue: str, reviewer: str, verdict: str,
               comment: str = "") -> Review:
    """Keep a reviewer's verdict (``approve`` or ``comment``) on ``issue``."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}")
    review = Review(issue=issue[:200], reviewer=reviewer.strip()[:200] or "A reviewer",
                    verdict=verdict, comment=comment.strip()[:5000], at=utcnow())
    session.add(review)
    return review


def reviews_for(session: Session, issue: str) -> list[Review]:
    """The reviews of ``issue``, oldest first."""
    return list(session.scalars(select(Review).where(Review.issue == issue)
                                .order_by(Review.at, Review.id)))
