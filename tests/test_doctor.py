"""popup-mgr doctor's checks, each against the real thing it checks: files and directories on
disk, an SMTP server on 127.0.0.1 (aiosmtpd), a socket that never greets, a Tune check callable."""
import os
import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from popup_mgr import doctor

STRONG_SECRET = "Xq3v9-Lm2Pz8_rT5wYb7Nc4Jd6Hk1Gs0Fa-QeUo"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A real SMTP server on 127.0.0.1 that accepts mike/letmein, and the URL to reach it."""
    def authenticate(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"mike", b"letmein"), handled=False)

    controller = Controller(object(), hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    yield f"127.0.0.1:{controller.port}"
    controller.stop()


@pytest.fixture
def good(tmp_path, smtp_server):
    """A production configuration with nothing to complain about."""
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)
    database = instance / "popup.db"
    database.write_bytes(b"")
    database.chmod(0o600)
    config = {"ENV_NAME": "production", "SECRET_KEY": STRONG_SECRET, "BASE_URL": "https://offers.modefreefinds.com",
              "TRUSTED_PROXIES": "127.0.0.1, ::1", "DATABASE": str(database)}
    environ = {"POPUP_SMTP_URL": f"smtp://mike:letmein@{smtp_server}", "POPUP_ALERT_TO": "mike@example.com",
               "POPUP_TUNE_API_KEY": "tune-key"}
    return config, environ


def whats(problems):
    return [(p.severity, p.what) for p in problems]


def test_a_good_configuration_has_no_problems(good):
    config, environ = good
    problems = doctor.check(config, environ=environ, tune_check=lambda: None)
    assert problems == []
    assert doctor.report(problems) == "doctor: no problems found." and not doctor.has_errors(problems)


@pytest.mark.parametrize("secret", [None, "short", "changeme" * 5, "ab" * 20])
def test_weak_secrets_are_errors(good, secret):
    config, environ = good
    [problem] = doctor.check({**config, "SECRET_KEY": secret}, environ=environ)
    assert problem.severity == "error" and "POPUP_SECRET_KEY" in problem.what and "token_urlsafe" in problem.fix


@pytest.mark.parametrize("url, fragments", [
    ("http://offers.modefreefinds.com", ["not https"]),
    ("https://127.0.0.1:8000", ["loopback"]),
    ("https://localhost", ["local name"]),
    ("https://popup.lan", ["local name"]),
    ("https://10.0.0.5", ["private address"]),
    ("https://192.168.1.20", ["private address"]),
    ("https://[::1]", ["loopback"]),
    ("https://offers", ["single-label"]),
    ("http://popup.local:8000", ["not https", "local name"]),
])
def test_base_urls_the_internet_cannot_use(good, url, fragments):
    config, environ = good
    problems = doctor.check({**config, "BASE_URL": url}, environ=environ)
    assert len(problems) == len(fragments) and all(p.severity == "error" for p in problems)
    for problem, fragment in zip(problems, fragments):
        assert fragment in problem.what


def test_a_base_url_with_a_path_is_a_warning(good):
    config, environ = good
    [problem] = doctor.check({**config, "BASE_URL": "https://offers.modefreefinds.com/popup"}, environ=environ)
    assert problem.severity == "warning" and "path" in problem.what


def test_trusted_proxies(good):
    config, environ = good
    [behind_tls] = doctor.check({**config, "TRUSTED_PROXIES": ""}, environ=environ)
    assert behind_tls.severity == "warning" and "https URL means a proxy" in behind_tls.what
    problems = doctor.check({**config, "TRUSTED_PROXIES": "", "BASE_URL": "http://offers.modefreefinds.com"},
                            environ=environ)
    assert ("info" in [p.severity for p in problems]
            and any("only once a proxy" in p.what for p in problems))
    [bad] = doctor.check({**config, "TRUSTED_PROXIES": "127.0.0.1, proxy.local"}, environ=environ)
    assert bad.severity == "error" and "'proxy.local'" in bad.what
    [everyone] = doctor.check({**config, "TRUSTED_PROXIES": "0.0.0.0/0"}, environ=environ)
    assert "trusts every address" in everyone.what


def test_backup_dir_problems(good, tmp_path):
    config, environ = good
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    [problem] = doctor.check(config, environ={**environ, "POPUP_BACKUP_DIR": str(not_a_dir / "backups")})
    assert problem.severity == "error" and "not writable" in problem.what

    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o755)
    [problem] = doctor.check(config, environ={**environ, "POPUP_BACKUP_DIR": str(open_dir)})
    assert problem.severity == "warning" and "chmod 700" in problem.fix

    # A directory that does not exist yet is fine when it can be created.
    assert doctor.check(config, environ={**environ, "POPUP_BACKUP_DIR": str(tmp_path / "new" / "b")},
                        tune_check=lambda: None) == []
    assert not (tmp_path / "new").exists()

    [problem] = doctor.check(config, environ={**environ, "POPUP_BACKUP_KEEP": "0"})
    assert problem.severity == "error" and "POPUP_BACKUP_KEEP" in problem.fix


def test_a_world_readable_database_is_a_warning(good):
    config, environ = good
    os.chmod(config["DATABASE"], 0o644)
    [problem] = doctor.check(config, environ=environ)
    assert problem.severity == "warning" and "chmod 600" in problem.fix


def test_smtp_that_does_not_answer(good):
    config, environ = good
    closed = free_port()
    [problem] = doctor.check(config, environ={**environ, "POPUP_SMTP_URL": f"smtp://127.0.0.1:{closed}"})
    assert problem.severity == "error" and "ConnectionRefusedError" in problem.what

    # A port that accepts connections but never greets: the timeout ends the check.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"smtp://127.0.0.1:{silent.getsockname()[1]}"
        assert "timed out" in doctor.smtp_problem(url, timeout_s=0.3)


def test_smtp_credentials_are_checked(good, smtp_server):
    assert doctor.smtp_problem(f"smtp://mike:letmein@{smtp_server}") is None
    assert doctor.smtp_problem(f"smtp://mike:wrong@{smtp_server}") == "it refused the user name and password"
    assert "scheme" in doctor.smtp_problem(f"http://{smtp_server}")


def test_smtp_settings_missing(good):
    config, environ = good
    [problem] = doctor.check(config, environ={k: v for k, v in environ.items() if k != "POPUP_SMTP_URL"})
    assert problem.severity == "warning" and "no alert" in problem.what
    [problem] = doctor.check(config, environ={k: v for k, v in environ.items() if k != "POPUP_ALERT_TO"})
    assert problem.severity == "warning" and "POPUP_ALERT_TO" in problem.what


def test_tune_key(good):
    config, environ = good
    [rejected] = doctor.check(config, environ=environ, tune_check=lambda: "Invalid API key")
    assert rejected.severity == "error" and "Invalid API key" in rejected.what

    def unreachable():
        raise TimeoutError("read timed out")

    [down] = doctor.check(config, environ=environ, tune_check=unreachable)
    assert "TimeoutError: read timed out" in down.what
    [off] = doctor.check(config, environ={k: v for k, v in environ.items() if k != "POPUP_TUNE_API_KEY"})
    assert off.severity == "info" and "not connected" in off.what


def test_problems_come_worst_first_and_read_well(good):
    config, environ = good
    problems = doctor.check({**config, "ENV_NAME": "development", "SECRET_KEY": None}, environ={})
    assert [p.severity for p in problems] == sorted((p.severity for p in problems), key=doctor.SEVERITIES.index)
    assert doctor.has_errors(problems)
    text = doctor.report(problems)
    assert text.startswith("ERROR: POPUP_SECRET_KEY is not set") and "\n  fix: " in text
