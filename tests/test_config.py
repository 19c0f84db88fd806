"""newsletter.toml: every value is checked when the file is read, with file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter import config as config_module
from newsletter.config import CONFIG_NAME, load_config, parse_config
from newsletter.errors import ConfigError
from newsletter.project import init_project, skeleton_dir

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = (ROOT / CONFIG_NAME).read_text(encoding="utf-8")
FILE = Path("/projects/brief/newsletter.toml")


def line_of(text: str, start: str) -> int:
    """1-based number of the first line of ``text`` starting with ``start``."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(start))


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, FILE)
    return str(caught.value)


def test_the_sample_loads_with_its_values() -> None:
    config = load_config(ROOT / CONFIG_NAME)
    assert config.name == "East Turkistan Weekly Brief"
    assert config.sender.from_email == "brief@example.org"
    assert config.brand.logo_width == 160
    assert config.delivery.transport == "outbox" and config.delivery.batch_size == 1000
    assert config.delivery.timeout == 30.0 and isinstance(config.delivery.timeout, float)
    assert str(config.zone) == "Europe/Berlin"
    assert config.issue_url("2026-01-05") == "https://news.example.org/issues/2026-01-05/"
    assert config.service_url == "https://news.example.org"


def test_the_init_skeleton_loads(tmp_path: Path) -> None:
    assert (skeleton_dir() / CONFIG_NAME).is_file()
    project = init_project(tmp_path / "brief", name='The "Daily" Brief \\ News')
    assert project.config.name == 'The "Daily" Brief \\ News'


def test_defaults_fill_what_is_left_out() -> None:
    text = (
        '[newsletter]\nname = "B"\npostal_address = "Street 1"\n'
        'archive_url = "https://x.org/"\n[sender]\nfrom_email = "a@x.org"\n'
    )
    config = parse_config(text, FILE)
    assert config.timezone == "UTC" and config.delivery.batch_size == 1000
    assert config.brand.logo_url == "" and config.database_url == ""


# (line in the sample to change, what to write instead, key, words the error must say)
BAD_VALUES = [
    (
        "logo_width = 160",
        'logo_width = "big"',
        "[brand] logo_width",
        'write a number of pixels from 1 to 544, like 200 (it says "big")',
    ),
    ("logo_width = 160", "logo_width = 0", "[brand] logo_width", "a number of pixels"),
    (
        'timezone = "Europe/Berlin"',
        'timezone = "Europe/Berlln"',
        "[newsletter] timezone",
        'write a time zone name, like "Europe/Berlin"',
    ),
    (
        'timezone = "Europe/Berlin"',
        'timezone = "../../etc/passwd"',
        "[newsletter] timezone",
        "time zone name",
    ),
    (
        "batch_size = 1000",
        "batch_size = 1001",
        "[delivery] batch_size",
        "from 1 to 1000 (SendGrid takes at most 1000 recipients per request)",
    ),
    ("batch_size = 1000", "batch_size = 0", "[delivery] batch_size", "from 1 to 1000"),
    (
        'logo_url = "https://news.example.org/logo.png"',
        'logo_url = "logo.png"',
        "[brand] logo_url",
        "looks like a file on a computer",
    ),
    (
        'logo_url = "https://news.example.org/logo.png"',
        "logo_url = 'C:\\Users\\ann\\logo.png'",
        "[brand] logo_url",
        'it says "C:\\Users\\ann\\logo.png"; that looks like a file on a computer',
    ),
    (
        'logo_url = "https://news.example.org/logo.png"',
        'logo_url = "http://x.org/logo.png"',
        "[brand] logo_url",
        "email programs block images sent over http://",
    ),
    (
        'primary_color = "#1d4e89"',
        'primary_color = "blue"',
        "[brand] primary_color",
        "write a colour code",
    ),
    (
        'from_email = "brief@example.org"',
        'from_email = "brief"',
        "[sender] from_email",
        "write an email address",
    ),
    (
        'reply_to = "comms@example.org"',
        'reply_to = "comms@"',
        "[sender] reply_to",
        "write an email address",
    ),
    (
        'transport = "outbox"',
        'transport = "carrier-pigeon"',
        "[delivery] transport",
        'write "outbox", "sendgrid" or "smtp"',
    ),
    ("concurrency = 4", 'concurrency = "4"', "[delivery] concurrency", 'it says "4"'),
    ("timeout = 30", "timeout = true", "[delivery] timeout", "a number of seconds"),
    (
        'archive_url = "https://news.example.org/"',
        'archive_url = "news.example.org"',
        "[newsletter] archive_url",
        "write the archive's web address",
    ),
    (
        'web_url = "https://news.example.org"',
        'web_url = "ftp://x.org"',
        "[newsletter] web_url",
        "write the web service's address",
    ),
    (
        'language = "en"',
        'language = "English language"',
        "[newsletter] language",
        "write a language code",
    ),
    (
        'name = "East Turkistan Weekly Brief"',
        'name = "  "',
        "[newsletter] name",
        "the newsletter's name",
    ),
    (
        'logo_alt = "Example Rights Network"',
        'logo_dark_url = "logo-dark.png"',
        "[brand] logo_dark_url",
        "write the web address of a logo drawn for dark backgrounds",
    ),
    (
        'timezone = "Europe/Berlin"',
        'greeting = "  "',
        "[newsletter] greeting",
        "write the word the email greets readers with",
    ),
    (
        'logo_alt = "Example Rights Network"',
        "logo_size = 3",
        "[brand] logo_size",
        "unknown setting; the settings here are logo_url, logo_alt, logo_width",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "says"), BAD_VALUES, ids=[f"{case[2]}={case[1]}" for case in BAD_VALUES]
)
def test_each_bad_value_names_file_line_and_key(old: str, new: str, key: str, says: str) -> None:
    assert SAMPLE.count(old) == 1
    text = SAMPLE.replace(old, new)
    message = problems(text)
    line = line_of(text, new)
    assert f"{FILE}:{line}: {key}: " in message
    assert says in message


def test_every_problem_is_reported_at_once() -> None:
    text = SAMPLE.replace("logo_width = 160", "logo_width = -1").replace(
        'timezone = "Europe/Berlin"', 'timezone = "Berlin"'
    )
    message = problems(text)
    assert f"{FILE}:{line_of(text, 'logo_width')}: [brand] logo_width" in message
    assert f"{FILE}:{line_of(text, 'timezone')}: [newsletter] timezone" in message


def test_missing_settings_and_tables_are_named() -> None:
    text = SAMPLE.replace("postal_address = ", "# postal_address = ")
    assert (
        f"{FILE}:{line_of(text, '[newsletter]')}: [newsletter] postal_address: required; "
        "write the organisation's postal address"
    ) in problems(text)
    without_sender = SAMPLE.split("[sender]")[0]
    assert f"{FILE}: the [sender] table is missing; it holds from_email" in problems(without_sender)


def test_unknown_tables_and_stray_settings_are_named() -> None:
    text = SAMPLE.replace("[brand]", "[branding]")
    assert f"{FILE}:{line_of(text, '[branding]')}: unknown table [branding]" in problems(text)
    text = 'name = "Brief"\n' + SAMPLE
    assert f"{FILE}:1: name: a setting above the first [table]" in problems(text)


def test_bad_toml_names_the_file() -> None:
    message = problems(SAMPLE.replace('name = "East Turkistan Weekly Brief"', "name = Brief"))
    assert str(FILE) in message and "not valid TOML" in message


def test_messages_do_not_speak_programmer() -> None:
    message = problems(SAMPLE.replace("logo_width = 160", 'logo_width = "200"'))
    for jargon in ("int", "str", "Input should", "type=", "pydantic"):
        assert jargon not in message.replace("print", "")


def test_every_table_has_its_plain_words() -> None:
    assert set(config_module._TABLES) == set(config_module._File.model_fields)
    for model in config_module._TABLES.values():
        for key, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{key} needs words for its errors"
