"""Configuration: the documented example is the defaults, and mistakes name the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mailroom.config import ConfigError, load_config, parse_config
from tests.conftest import REPO


def test_example_config_documents_exactly_the_defaults(tmp_path: Path) -> None:
    example = tomllib.loads((REPO / "config.example.toml").read_text(encoding="utf-8"))
    documented = parse_config(example, tmp_path, environ={})
    defaults = parse_config({}, tmp_path, environ={})
    assert documented == defaults
    assert defaults.database.url == f"sqlite:///{tmp_path}/var/mailroom.db"
    assert (defaults.smtp.listen_host, defaults.smtp.listen_port) == ("127.0.0.1", 8025)
    assert defaults.outbound.maildir == tmp_path / "var" / "outbox"
    assert defaults.sender_address == defaults.mailboxes.daily


def test_no_file_means_embedded_defaults() -> None:
    config = load_config(None, environ={})
    assert config.rules.rulebook == "guangzhou-2004"
    assert config.outbound.relay_host is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[smtp]\nlisten = 8025\n", "[smtp] listen must be a string"),
        ('[smtp]\nlisten = "localhost"\n', "[smtp] listen 'localhost' must be host:port"),
        ("[smtp]\nmax_message_bytes = -1\n", "[smtp] max_message_bytes must be a positive"),
        ('[smpt]\nlisten = "127.0.0.1:25"\n', "unknown section [smpt]"),
        ('[database]\nuri = "sqlite:///x.db"\n', "unknown key [database] uri"),
        ('[database]\nurl = "mysql://x"\n', "[database] url must be a sqlite:/// or postgresql"),
        ('[mailboxes]\ndaily = "not-an-address"\n', "[mailboxes] daily 'not-an-address'"),
        ('[reports]\ntimezone = "Mars/Olympus"\n', "[reports] timezone 'Mars/Olympus'"),
        ('[outbound]\nstarttls = "yes"\n', "[outbound] starttls must be true or false"),
        ('[imap.inf]\nhost = "127.0.0.1"\n', "[imap.inf] username is required"),
        ('[imap.inf]\nhost = "h"\nusername = "u"\nmailbox = "x"\n', "[imap.inf] mailbox"),
        ('[security]\nreply_key_secret = "short"\n', "[security] reply_key_secret must be at"),
        ('[imap.inf]\nhost = "h"\nusername = "u"\npoll_seconds = 3600\n', "poll_seconds must be"),
        ('[smtp]\ntls_cert = "cert.pem"\n', "[smtp] tls_cert and tls_key must be set together"),
        ("[outbound]\nretry_seconds = 0\n", "[outbound] retry_seconds must be a positive"),
        ('[outbound]\nhelo_name = "mail room"\n', "[outbound] helo_name 'mail room' is not a"),
        ('[outbound]\nhelo_name = "[mail.room]"\n', "[outbound] helo_name '[mail.room]' is not"),
        ('[outbound]\nverp = "yes"\n', "[outbound] verp must be true or false"),
        ("[database\n", "is not valid TOML"),
    ],
)
def test_a_bad_key_or_value_is_one_line_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mailroom.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert message in str(err.value)
    assert "\n" not in str(err.value).strip() or "TOML" in str(err.value)


def test_secrets_come_from_the_environment(tmp_path: Path) -> None:
    data = {"imap": {"inf": {"host": "127.0.0.1", "username": "inf", "ssl": False}}}
    config = parse_config(
        data,
        tmp_path,
        environ={
            "MAILROOM_OUTBOUND_PASSWORD": "s3cret",
            "MAILROOM_REPLY_KEY_SECRET": "k3y-k3y-k3y-k3y-k3y",
            "MAILROOM_IMAP_INF_PASSWORD": "imap-pass",
            "MAILROOM_DATABASE_URL": "postgresql://mailroom@127.0.0.1/mailroom",
        },
    )
    assert config.outbound.password == "s3cret"
    assert config.security.reply_key_secret == "k3y-k3y-k3y-k3y-k3y"
    assert config.imap[0].password == "imap-pass"
    assert config.imap[0].ssl is False
    assert config.database.url == "postgresql://mailroom@127.0.0.1/mailroom"


def test_mailbox_kinds_accept_plus_addresses() -> None:
    boxes = parse_config({}, Path("."), environ={}).mailboxes
    assert boxes.kind_of("INF@mailroom.test") == "daily"
    assert boxes.kind_of("desk+abc123@mailroom.test") == "desk"
    assert boxes.kind_of("sfxx@mailroom.test") == "solicited"
    assert boxes.kind_of("inf@other.test") is None
    assert boxes.kind_of("nobody") is None


def test_the_office_time_zone_is_an_office_setting_read_also_where_it_was_before(
    tmp_path: Path,
) -> None:
    assert str(parse_config({}, tmp_path, environ={}).zone) == "Asia/Shanghai"
    office = parse_config({"office": {"timezone": "Asia/Urumqi"}}, tmp_path, environ={})
    assert str(office.zone) == "Asia/Urumqi"
    legacy = parse_config({"reports": {"timezone": "Asia/Urumqi"}}, tmp_path, environ={})
    assert str(legacy.zone) == "Asia/Urumqi"
    with pytest.raises(ConfigError, match=r"\[office\] timezone and \[reports\] timezone differ"):
        parse_config(
            {"office": {"timezone": "Asia/Urumqi"}, "reports": {"timezone": "Asia/Shanghai"}},
            tmp_path,
            environ={},
        )


def test_the_relay_may_be_greeted_with_a_name_or_an_address_literal(tmp_path: Path) -> None:
    for name in ("mailroom.example.gov.cn", "[192.0.2.25]", "[IPv6:2001:db8::25]", "mx-1"):
        config = parse_config({"outbound": {"helo_name": name}}, tmp_path, environ={})
        assert config.outbound.helo_name == name
    assert parse_config({}, tmp_path, environ={}).outbound.helo_name == ""
