"""mailer: POPUP_SMTP_URL parsing, and real delivery to a local SMTP server (aiosmtpd) in plain
SMTP, with a login, with STARTTLS and with TLS from the first byte; failures are MailError and
never show the password."""
import logging
import socket
import time

import pytest

from tests.mail_support import (Credentials, Inbox, free_port, parts, self_signed_certificate, server_tls_context,
                          start_server)
from popup_mgr import mailer

PASSWORD = "s3cr3t-p@ss:word"
QUOTED_PASSWORD = "s3cr3t-p%40ss%3Aword"


@pytest.fixture
def inbox():
    return Inbox()


@pytest.fixture
def plain_server(inbox):
    controller = start_server(inbox)
    yield controller
    controller.stop()


def config_for(url, to="mike@example.com, ops@example.com"):
    return {"SMTP_URL": url, "ALERT_TO": to}


@pytest.mark.parametrize("url, expected", [
    ("smtp://mail.example.com", ("mail.example.com", 25, "plain", "", "")),
    ("smtp://mail.example.com?starttls=1", ("mail.example.com", 25, "starttls", "", "")),
    ("smtp+starttls://bob@mail.example.com", ("mail.example.com", 587, "starttls", "bob", "")),
    (f"smtps://bob%40example.com:{QUOTED_PASSWORD}@mail.example.com",
     ("mail.example.com", 465, "tls", "bob@example.com", PASSWORD)),
    ("smtps://mail.example.com:2465", ("mail.example.com", 2465, "tls", "", "")),
])
def test_parse_smtp_url(url, expected):
    smtp = mailer.parse_smtp_url(url)
    assert (smtp.host, smtp.port, smtp.security, smtp.username, smtp.password) == expected


def test_sender_timeout_and_cafile_come_from_the_query():
    smtp = mailer.parse_smtp_url("smtp://u:p@h:26?from=alerts@mode.example&timeout=2.5&cafile=/etc/ca.pem")
    assert (smtp.sender, smtp.timeout, smtp.cafile) == ("alerts@mode.example", 2.5, "/etc/ca.pem")
    # Without from=: the user name when it is an address, else popup-mgr@host.
    assert mailer.parse_smtp_url("smtp://bob%40x.example:p@h").sender == "bob@x.example"
    assert mailer.parse_smtp_url("smtp://bob:p@h").sender == "popup-mgr@h"


@pytest.mark.parametrize("url, message", [
    ("http://mail.example.com", "must start with"),
    ("smtp://", "no host"),
    (f"smtp://u:{QUOTED_PASSWORD}@h:notaport", "not a valid URL"),
    ("smtp://h?timeout=soon", "timeout"),
    ("smtp://h?timeout=0", "timeout"),
])
def test_unusable_urls_are_refused_without_showing_the_password(url, message):
    with pytest.raises(mailer.MailError, match=message) as caught:
        mailer.parse_smtp_url(url)
    assert PASSWORD not in str(caught.value) and QUOTED_PASSWORD not in str(caught.value)


def test_repr_and_description_leave_the_password_out():
    smtp = mailer.parse_smtp_url(f"smtps://bob:{QUOTED_PASSWORD}@mail.example.com")
    assert PASSWORD not in repr(smtp) and PASSWORD not in smtp.describe()
    assert smtp.describe() == "mail.example.com:465 (tls)"


def test_text_and_html_mail_reaches_every_recipient(plain_server, inbox):
    to = mailer.send(config_for(f"smtp://127.0.0.1:{plain_server.port}?from=alerts@mode.example"),
                     "Digest: $12.34", "Revenue 12.34", "<p>Revenue <b>12.34</b></p>")

    assert to == ["mike@example.com", "ops@example.com"]
    [received] = inbox.messages
    assert received["from"] == "alerts@mode.example"
    assert received["to"] == ["mike@example.com", "ops@example.com"]
    message = received["message"]
    assert message["Subject"] == "Digest: $12.34"
    assert message["To"] == "mike@example.com, ops@example.com"
    assert message["Message-ID"] and message["Date"]
    body = parts(message)
    assert body["text/plain"].strip() == "Revenue 12.34"
    assert body["text/html"].strip() == "<p>Revenue <b>12.34</b></p>"


def test_text_only_mail_has_no_html_part(plain_server, inbox):
    mailer.send(config_for(f"smtp://127.0.0.1:{plain_server.port}", to="mike@example.com"), "Hi", "Only text")
    [received] = inbox.messages
    assert not received["message"].is_multipart()
    assert {k: v.strip() for k, v in parts(received["message"]).items()} == {"text/plain": "Only text"}


# Plain-text AUTH is what aiosmtpd warns about; here it only spares the test a certificate.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_with_the_percent_decoded_password(inbox, caplog):
    caplog.set_level(logging.DEBUG)
    controller = start_server(inbox, authenticator=Credentials("bob", PASSWORD), auth_required=True,
                              auth_require_tls=False)
    try:
        mailer.send(config_for(f"smtp://bob:{QUOTED_PASSWORD}@127.0.0.1:{controller.port}"), "s", "t")
        assert inbox.messages[0]["login"] == b"bob"

        with pytest.raises(mailer.MailError, match="refused the user name or password") as caught:
            mailer.send(config_for(f"smtp://bob:wrong{QUOTED_PASSWORD}@127.0.0.1:{controller.port}"), "s", "t")
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    assert PASSWORD not in str(caught.value) and "wrong" not in str(caught.value)
    assert PASSWORD not in caplog.text and QUOTED_PASSWORD not in caplog.text


def test_starttls_verifies_the_server_and_then_logs_in(inbox, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    controller = start_server(inbox, tls_context=server_tls_context(cert, key), require_starttls=True,
                              authenticator=Credentials("bob", PASSWORD), auth_required=True)
    try:
        url = f"smtp+starttls://bob:{QUOTED_PASSWORD}@127.0.0.1:{controller.port}"
        # The certificate is not from a public CA: refused unless its CA is named.
        with pytest.raises(mailer.MailError, match="cannot talk to 127.0.0.1"):
            mailer.send(config_for(url), "s", "t")
        mailer.send(config_for(f"{url}?cafile={cert}"), "Over STARTTLS", "t")
        # smtp:// with ?starttls=1 is the same thing.
        mailer.send(config_for(f"smtp://bob:{QUOTED_PASSWORD}@127.0.0.1:{controller.port}"
                               f"?starttls=1&cafile={cert}"), "Also STARTTLS", "t")
    finally:
        controller.stop()
    assert [m["message"]["Subject"] for m in inbox.messages] == ["Over STARTTLS", "Also STARTTLS"]


def test_implicit_tls(inbox, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    controller = start_server(inbox, ssl_context=server_tls_context(cert, key))
    try:
        mailer.send(config_for(f"smtps://127.0.0.1:{controller.port}?cafile={cert}"), "Over TLS", "t")
    finally:
        controller.stop()
    assert inbox.messages[0]["message"]["Subject"] == "Over TLS"


def test_a_server_that_never_answers_times_out():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)   # the kernel completes the handshake; nobody ever sends a greeting
        started = time.monotonic()
        with pytest.raises(mailer.MailError, match="timed out"):
            mailer.send(config_for(f"smtp://127.0.0.1:{silent.getsockname()[1]}?timeout=0.5"), "s", "t")
    assert time.monotonic() - started < 5


def test_nobody_listening():
    with pytest.raises(mailer.MailError, match="cannot talk to 127.0.0.1"):
        mailer.send(config_for(f"smtp://127.0.0.1:{free_port()}"), "s", "t")


@pytest.mark.parametrize("config, message", [
    ({}, "not configured"),
    ({"SMTP_URL": "smtp://127.0.0.1:1", "ALERT_TO": " , "}, "no recipients"),
])
def test_missing_settings(config, message):
    with pytest.raises(mailer.MailError, match=message):
        mailer.send(config, "s", "t")
    assert not mailer.is_configured(config)


def test_settings_come_from_the_environment_when_not_in_the_config(monkeypatch):
    monkeypatch.setenv("POPUP_SMTP_URL", "smtps://mail.example.com")
    monkeypatch.setenv("POPUP_ALERT_TO", "a@example.com,b@example.com")
    assert mailer.is_configured({})
    assert mailer.recipients({}) == ["a@example.com", "b@example.com"]
    assert mailer.server({}).port == 465
    # The app's configuration wins over the environment.
    assert mailer.recipients({"ALERT_TO": "c@example.com"}) == ["c@example.com"]
