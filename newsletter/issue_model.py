"""What an issue file may contain: the pydantic model, and the loaded Issue.

Issue YAML is read with every scalar kept as the text written (see issue_yaml), so
the validators here decide what a date or a number looks like, and say what is
wrong in words ("there is no 31 November 2026").
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DATE_TIME = re.compile(r"\d{4}-\d{1,2}-\d{1,2}[T ]")
_WHOLE = re.compile(r"\+?\d+")


def parse_date(value: Any, example: str = "2021-01-25") -> dt.date:
    """A date from YYYY-MM-DD text; ValueError says what is wrong in words."""
    if isinstance(value, dt.datetime):
        raise ValueError(f"write the date alone, YYYY-MM-DD (e.g. {example}), without a time")
    if isinstance(value, dt.date):
        return value
    text = value.strip() if isinstance(value, str) else ""
    match = _DATE.fullmatch(text)
    if not match:
        if _DATE_TIME.match(text):
            raise ValueError(f"write the date alone, YYYY-MM-DD (e.g. {example}), without a "
                             "time")
        shown = "nothing" if value is None else repr(text) if text else "a list or fields"
        raise ValueError(f"expected a date written YYYY-MM-DD, e.g. {example}, got {shown}")
    year, month, day = (int(part) for part in match.groups())
    if year < 1:
        raise ValueError(f"there is no year {year}; write the date YYYY-MM-DD, e.g. {example}")
    if not 1 <= month <= 12:
        raise ValueError(f"there is no month {month}; the month is written 01 to 12, "
                         f"e.g. {example}")
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        name = calendar.month_name[month]
        raise ValueError(f"there is no {day} {name} {year}; {name} {year} has {days} days")
    return dt.date(year, month, day)


def _whole_number(value: Any) -> Any:
    if isinstance(value, str):
        if not _WHOLE.fullmatch(value.strip()):
            raise ValueError(f"expected a whole number, 1 or more, like 12, got {value!r}")
        return int(value.strip())
    if isinstance(value, bool):
        raise ValueError("expected a whole number, 1 or more, like 12")
    return value


def _one_line(value: str) -> str:
    if "\n" in value.strip():
        raise ValueError("must be a single line; remove the line break")
    return value.strip()


def _web_url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in schemes or not parts.netloc:
        wanted = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(f"expected a full web address starting with {wanted}, got {value!r}")
    return value.strip()


class Item(BaseModel):
    """One news summary in an issue."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, description="Headline, one line.")
    url: str = Field(description="Link to the full story (http or https).")
    summary: str = Field(
        min_length=1, description="A few sentences, in Markdown. Raw HTML is shown as text."
    )
    source: str | None = Field(None, description="Publication, e.g. 'The Guardian'.")
    published: dt.date | None = Field(None, description="Publication date, YYYY-MM-DD.")
    photo_credit: str | None = Field(None, description="Who took the photo, e.g. 'Reuters'.")
    image: str | None = Field(None, description="Picture for the item (an https address).")
    image_alt: str | None = Field(
        None,
        validate_default=True,
        description="Describes the picture for people who cannot see it. Required with image.",
    )
    section: str | None = Field(None, description="Heading to group items under.")

    @field_validator("published", mode="before")
    @classmethod
    def _published_date(cls, value: Any) -> dt.date | None:
        return None if value is None else parse_date(value, "2021-01-14")

    @field_validator("title")
    @classmethod
    def _title_one_line(cls, value: str) -> str:
        return _one_line(value)

    @field_validator("url")
    @classmethod
    def _url_http(cls, value: str) -> str:
        return _web_url(value, ("http", "https"))

    @field_validator("image")
    @classmethod
    def _image_https(cls, value: str | None) -> str | None:
        return None if value is None else _web_url(value, ("https",))

    @field_validator("image_alt")
    @classmethod
    def _alt_with_image(cls, value: str | None, info: ValidationInfo) -> str | None:
        # "image" is validated first. It is missing from info.data when it was given but
        # invalid: it still needs its alt text, so that is reported at the same time.
        has_image = info.data.get("image") or "image" not in info.data
        if has_image and not (value or "").strip():
            raise ValueError("required when image is given; describe the picture in a few words")
        return value


class IssueModel(BaseModel):
    """What an issue file may contain."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        title="Newsletter issue",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    date: dt.date = Field(description="The day the issue goes out, YYYY-MM-DD.")
    number: int | None = Field(
        None, ge=1, description="Issue number; counted from the first issue when left out."
    )
    subject: str = Field(min_length=1, description="Email subject line, one line.")
    preheader: str | None = Field(
        None, description="Preview text shown after the subject in the inbox."
    )
    intro: str | None = Field(None, description="Opening words, in Markdown.")
    items: list[Item] = Field(min_length=1, description="The news summaries, in order.")
    draft: bool = Field(False, description="Drafts are left out of the web archive.")

    @field_validator("date", mode="before")
    @classmethod
    def _issue_date(cls, value: Any) -> dt.date:
        return parse_date(value)

    @field_validator("number", mode="before")
    @classmethod
    def _number_decimal(cls, value: Any) -> Any:
        return None if value is None else _whole_number(value)

    @field_validator("subject")
    @classmethod
    def _subject_one_line(cls, value: str) -> str:
        return _one_line(value)


@dataclass(frozen=True)
class Issue:
    """A loaded, valid issue: the model plus where it came from."""

    path: Path
    model: IssueModel
    number: int

    @property
    def name(self) -> str:
        """The file's stem, used for output files and archive URLs."""
        return self.path.stem

    # The model's fields that templates and callers read from the issue itself.
    @property
    def date(self) -> dt.date:
        """The day the issue goes out."""
        return self.model.date

    @property
    def subject(self) -> str:
        """The email's subject line."""
        return self.model.subject

    @property
    def preheader(self) -> str | None:
        """The preview text shown after the subject in inboxes."""
        return self.model.preheader

    @property
    def intro(self) -> str | None:
        """The opening words, in Markdown."""
        return self.model.intro

    @property
    def items(self) -> list[Item]:
        """The news summaries, in file order."""
        return self.model.items

    @property
    def draft(self) -> bool:
        """Drafts are left out of the web archive."""
        return self.model.draft

    @property
    def sections(self) -> list[tuple[str | None, list[Item]]]:
        """Items grouped by consecutive section headings, in file order."""
        groups: list[tuple[str | None, list[Item]]] = []
        for item in self.model.items:
            if groups and groups[-1][0] == item.section:
                groups[-1][1].append(item)
            else:
                groups.append((item.section, [item]))
        return groups


def json_schema() -> dict[str, Any]:
    """The JSON Schema of issue files, for editors."""
    return IssueModel.model_json_schema()
