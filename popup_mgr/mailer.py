"""Sending alert and digest e-mail through an SMTP server (standard library smtplib + email).

POPUP_SMTP_URL names the server, one URL:

    smtp://user:password@host:port            plain SMTP (default port 25); add ?starttls=1 to
                                              upgrade the connection with STARTTLS
    smtp+starttls://user:password@host:port   STARTTLS (default port 587), what most providers want
    smtps://user:password@host:port           TLS from the first byte (default port 465)

User name and password are optional and percent-encoded (`p%40ss` for `p@ss`). Query parameters:
`from=alerts@example.com` (the sender; default the user name when it is an address, else
popup-mgr@<host>), `timeout=10` (seconds for connecting and for each reply), `cafile=/path.pem`
(trust a private CA, e.g. a relay with its own certificate). TLS connections always verify the
server's certificate and name.

POPUP_ALERT_TO lists the recipients, separated by commas.

The password is never logged nor put into an error message or repr: errors name the server as
`host:port` only.
"""
import dataclasses
import smtplib
import socket
import ssl
import urllib.parse
import email.policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from popup_mgr import alert_settings

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
DEFAULT_TIMEOUT_S = 10.0
# Header lines up to RFC 5322's hard limit: folding a subject at 78 characters can put it all on
# a continuation line ("Subject:\n [popup_mgr] ..."), which some readers show with a leading space.
POLICY = email.policy.default.clone(max_line_length=998)


class MailError(RuntimeError):
    """Mail could not be sent (not configured, bad setting, server refused or unreachable)."""


@dataclasses.dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str                      # "plain", "starttls" or "tls"
    sender: str
    username: str = ""
    password: str = dataclasses.field(default="", repr=False)
    timeout: float = DEFAULT_TIMEOUT_S
    cafile: str = ""

    def describe(self):
        """The server for people and logs, without credentials."""
        return f"{self.host}:{self.port} ({self.security})"


def parse_smtp_url(url):
    """SmtpServer from a POPUP_SMTP_URL; raises MailError for anything unusable."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        # The message of urllib's error can quote the URL, password included.
        raise MailError("POPUP_SMTP_URL is not a valid URL") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise MailError("POPUP_SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise MailError("POPUP_SMTP_URL has no host")
    query = dict(urllib.parse.parse_qsl(parts.query))
    if _stray_at_sign(url.strip(), parts):
        # A password with an unencoded / ? or # ends the host early: the rest of the password
        # would be read as a port or a path, and the mail sent to the wrong server.
        raise MailError("POPUP_SMTP_URL's password must be percent-encoded (@ as %40, / as %2F,"
                        " ? as %3F, # as %23)")
    security = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}[parts.scheme]
    if security == "plain" and query.get("starttls", "").lower() in ("1", "true", "yes"):
        security = "starttls"
    username = urllib.parse.unquote(parts.username or "")
    return SmtpServer(
        host=parts.hostname, port=port or DEFAULT_PORTS[parts.scheme], security=security,
        sender=query.get("from") or _default_sender(username, parts.hostname),
        username=username, password=urllib.parse.unquote(parts.password or ""),
        timeout=_timeout(query.get("timeout")), cafile=query.get("cafile", ""))


def _stray_at_sign(url, parts):
    """True when an @ sits somewhere other than after the user part or in the from= address."""
    in_from = sum(pair.count("@") for pair in parts.query.split("&") if pair.startswith("from="))
    return url.partition("://")[2].count("@") != parts.netloc.count("@") + in_from


def _default_sender(username, host):
    return username if "@" in username else f"popup-mgr@{host}"


def _timeout(text):
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        raise MailError("timeout in POPUP_SMTP_URL must be a number of seconds") from None
    if not 0 < value <= 300:
        raise MailError("timeout in POPUP_SMTP_URL must be between 0 and 300 seconds")
    return value


def recipients(config):
    """The addresses in POPUP_ALERT_TO."""
    return [a.strip() for a in alert_settings.get(config, "ALERT_TO").split(",") if a.strip()]


def is_configured(config):
    return bool(alert_settings.get(config, "SMTP_URL")) and bool(recipients(config))


def server(config):
    url = alert_settings.get(config, "SMTP_URL")
    if not url:
        raise MailError("e-mail is not configured: set POPUP_SMTP_URL")
    return parse_smtp_url(url)


def build_message(sender, to, subject, text, html=None):
    """A text e-mail, or text + HTML alternatives when html is given."""
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def send(config, subject, text, html=None):
    """Send one e-mail to every POPUP_ALERT_TO recipient; returns the recipients.

    Raises MailError when mail is not configured or the server does not accept the message.
    """
    smtp = server(config)
    to = recipients(config)
    if not to:
        raise MailError("no recipients: set POPUP_ALERT_TO")
    message = build_message(smtp.sender, to, subject, text, html)
    try:
        with _connect(smtp) as connection:
            if smtp.username:
                connection.login(smtp.username, smtp.password)
            refused = connection.send_message(message, from_addr=smtp.sender, to_addrs=to)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"{smtp.describe()} refused the user name or password ({exc.smtp_code})") from None
    except smtplib.SMTPException as exc:
        raise MailError(f"{smtp.describe()} did not take the message: {_reason(exc)}") from None
    except (OSError, ssl.SSLError) as exc:
        raise MailError(f"cannot talk to {smtp.describe()}: {_reason(exc)}") from None
    if refused:
        raise MailError(f"{smtp.describe()} refused {', '.join(sorted(refused))}")
    return to


def _connect(smtp):
    context = ssl.create_default_context(cafile=smtp.cafile or None)
    if smtp.security == "tls":
        return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context,
                                local_hostname=_local_name())
    connection = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout, local_hostname=_local_name())
    if smtp.security == "starttls":
        try:
            connection.starttls(context=context)
        except BaseException:
            connection.close()
            raise
    return connection


def _local_name():
    # smtplib asks the resolver for our fully qualified name, which can stall for seconds on a
    # box without reverse DNS; the plain host name is what HELO needs.
    return socket.gethostname() or "localhost"


def _reason(exc):
    """An exception's message without anything that could carry a credential (smtplib's
    exceptions hold the server's reply and never the password; kept short for one line)."""
    text = str(exc) or type(exc).__name__
    return text[:200]


MASK = "••••••"
# Query parameters parse_smtp_url understands; any other one is left out of the shown URL (it
# does nothing, and someone may have put a secret there).
SHOWN_PARAMETERS = ("from", "timeout", "cafile", "starttls")


def masked_url(url):
    """POPUP_SMTP_URL for the admin page: the password replaced by a mask, whatever its length.

    Raises MailError (whose message never quotes the URL) when the URL cannot be used: an
    unreadable URL is not shown at all, since where its password starts is unknown.
    """
    parse_smtp_url(url)
    parts = urllib.parse.urlsplit(url.strip())
    userinfo = ""
    if parts.username is not None:
        userinfo = parts.username + (f":{MASK}" if parts.password is not None else "") + "@"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port else ""
    query = urllib.parse.urlencode([(name, value) for name, value in urllib.parse.parse_qsl(parts.query)
                                    if name in SHOWN_PARAMETERS], safe="@/")
    return f"{parts.scheme}://{userinfo}{host}{port}" + (f"?{query}" if query else "")
