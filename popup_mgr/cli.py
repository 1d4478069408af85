"""The popup-mgr command line. The same commands are on `flask --app popup_mgr`."""
import json
import os
import secrets
import sqlite3
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from popup_mgr import (backup, campaigns, demo, doctor, operations, reconcile, rollups, serving, signals,
                       storage, tune_jobs, tune_sync, users)
from popup_mgr import db as database

# Beacon threads spend part of each request waiting (GIL released) for the group commit of their
# batch; 16 threads keep the CPU busy meanwhile. Measured with bench/ingest.py on 2 cores: 8 -> 16
# threads raised POST /api/impression throughput by about half and left the bare-Flask baseline
# unchanged (CPU-bound either way).
SERVER_THREADS = 16
MAX_REQUEST_BODY = 1024 * 1024

# Connections, not threads, are what slow clients use up: waitress reads a whole request before a
# thread sees it, so a client that trickles one header line every few seconds holds a connection
# slot but no thread. With waitress's default 100 slots, 200 such clients stopped every popup,
# offer and beacon. 1,000 slots cost little (a socket and a small buffer each; poll() instead of
# select(), which cannot watch descriptors above 1,024), idle connections are closed after 15 s
# (a beacon or an offer request arrives whole; a browser's idle keep-alive reconnects) and checked
# every 5 s. A reverse proxy in front (docs/deploy.md) buffers slow clients before they reach us.
CONNECTION_LIMIT = 1000
CHANNEL_TIMEOUT_S = 15
CLEANUP_INTERVAL_S = 5
LISTEN_BACKLOG = 2048


def waitress_settings():
    """The keyword arguments `popup-mgr serve` gives waitress (bench/ uses the same).

    clear_untrusted_proxy_headers=False: waitress would otherwise drop X-Forwarded-For (no waitress
    trusted_proxy is set); the app believes it only from POPUP_TRUSTED_PROXIES peers
    (netaddr.client_ip), for visitor hashes and login throttling."""
    return {"threads": SERVER_THREADS, "max_request_body_size": MAX_REQUEST_BODY, "ident": "popup_mgr",
            "connection_limit": CONNECTION_LIMIT, "channel_timeout": CHANNEL_TIMEOUT_S,
            "cleanup_interval": CLEANUP_INTERVAL_S, "backlog": LISTEN_BACKLOG, "asyncore_use_poll": True,
            "clear_untrusted_proxy_headers": False}


def _allow_enough_open_files(needed=CONNECTION_LIMIT + 256):
    """Raise the soft limit of open files towards the hard one, so that every connection slot
    (plus the database files, logs and threads) can have its descriptor."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _db():
    return database.get_db()


@click.command("init-db")
@with_appcontext
def init_db():
    """Create or migrate the database (idempotent)."""
    path = current_app.config["DATABASE"]
    applied = database.migrate(path)
    click.echo(f"Database ready at {path} (schema version {database.latest_version()}"
               + (f", applied migrations {applied})" if applied else ")"), err=True)


@click.command("create-admin")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def create_admin(username, password_stdin):
    """Add an admin user."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        users.create_user(_db(), username, password)
    except ValueError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"Admin {username!r} created.", err=True)


@click.command("create-token")
@click.argument("name")
@click.option("--read-only", is_flag=True, help="The token can read (GET) but not change anything.")
@with_appcontext
def create_token(name, read_only):
    """Print a new API token (and nothing else) on stdout."""
    try:
        click.echo(users.create_token(_db(), name, scope="read" if read_only else "full"))
    except ValueError as exc:
        raise click.ClickException(str(exc))


@click.command("list-tokens")
@click.option("--all", "include_revoked", is_flag=True, help="Also list revoked tokens.")
@with_appcontext
def list_tokens(include_revoked):
    """List API tokens: id, name, scope, created, last used (never the token itself)."""
    for token in users.list_tokens(_db(), include_revoked=include_revoked):
        state = f"revoked {token['revoked_at']}" if token["revoked_at"] else "live"
        click.echo(f"{token['id']:>4}  {token['name']:<24} {token['scope']:<4}  created {token['created_at']}"
                   f"  last used {token['last_used_at'] or 'never'}  {state}")


@click.command("revoke-token")
@click.argument("token")
@with_appcontext
def revoke_token(token):
    """Revoke the token with this id (or the one live token with this name)."""
    try:
        db = _db()
        name = users.revoke_token(db, users.token_id_by_name_or_id(db, token), "cli")
    except ValueError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"Token {name!r} revoked.", err=True)


@click.command("unlock")
@click.argument("username")
@with_appcontext
def unlock(username):
    """Lift the login slow-down of an account after wrong passwords."""
    cleared = users.clear_login_failures(_db(), username, actor="cli")
    click.echo(f"{username!r} unlocked." if cleared else f"{username!r} had no failed logins to clear.", err=True)


@click.command("reset-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@click.option("--remove-2fa", is_flag=True, help="Also turn two-factor off (a lost phone and lost recovery codes).")
@with_appcontext
def reset_password(username, password_stdin, remove_2fa):
    """Set a new password; every session of the account ends and its login slow-down is lifted."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    db = _db()
    try:
        user_id = users.user_id_by_name(db, username)
        users.set_password(db, user_id, password, "cli")
        if remove_2fa:
            users.disable_totp(db, user_id, "cli")
    except ValueError as exc:
        raise click.ClickException(str(exc))
    users.clear_login_failures(db, username, actor="cli")
    click.echo(f"Password of {username!r} reset; its sessions are ended.", err=True)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@with_appcontext
def serve(host, port):
    """Serve the admin, API, beacons and embed script with waitress."""
    run_server(current_app._get_current_object(), host, port)


def served_base_url(app, host, port):
    """The URL links are built with: POPUP_BASE_URL, else this server's own address."""
    if os.environ.get("POPUP_BASE_URL"):
        return app.config["BASE_URL"]
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown_host}:{port}"


def run_server(app, host, port):
    import waitress
    # Without a configured public URL, links (click URLs, snippets) point at this server.
    app.config["BASE_URL"] = served_base_url(app, host, port)
    _check_storage(app.config["DATABASE"])
    try:
        running = operations.start(app, jobs=operations.periodic_jobs(app))
    except serving.DatabaseBusy as exc:
        raise click.ClickException(str(exc))
    click.echo(f"popup_mgr serving on http://{host}:{port}/ (database {app.config['DATABASE']})", err=True)
    try:
        _allow_enough_open_files()
        waitress.serve(app, host=host, port=port, **waitress_settings())
    finally:
        running.stop()


def _check_storage(path):
    """Before serving: the database file is intact (quick_check) and writable (an empty write
    transaction takes the write lock), else one line and STARTUP_FAILURE_EXIT."""
    try:
        with database.connection(path) as db:
            storage.startup_check(db, path)
            storage.write_check(db)
    except storage.StartupFailure as exc:
        _cannot_start(str(exc))
    except (sqlite3.Error, OSError) as exc:
        _cannot_start(storage.describe_failure(exc, path))


@click.command("demo-data")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3660),
              help="Business days of history, ending today.")
@click.option("--impressions", default=450_000, show_default=True, type=click.IntRange(0),
              help="Impressions in total over those days (clicks and conversions follow from them).")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed (same seed, same history).")
@with_appcontext
def demo_data(days, impressions, seed):
    """Sample campaigns (if there are none) and a realistic history of real ledger rows."""
    summary = demo.generate(_db(), days=days, impressions=impressions, seed=seed,
                            tz=current_app.config["BUSINESS_TZ"], base_url=current_app.config["BASE_URL"],
                            progress=_echo_progress)
    _announce_catalog_change()
    click.echo("Demo history {first_day}..{last_day}: {impressions:,} impressions, {clicks:,} clicks,"
               " {conversions:,} conversions for {campaigns} campaigns in {seconds} s.".format(**summary), err=True)


def _echo_progress(text):
    click.echo(f"  ... {text}", err=True)


def _announce_catalog_change():
    signals.notify_catalog_changed(current_app._get_current_object())


# What `quickstart` fills an empty database with: two months at today's traffic (so the
# dashboard's "last 30 days" has a previous period to compare with), written in seconds.
QUICKSTART_DEMO_DAYS = 60
QUICKSTART_DEMO_IMPRESSIONS = 60 * 15_000


@click.command("quickstart")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=lambda: int(os.environ.get("PORT", 8000)), type=int,
              help="Port (default: $PORT or 8000).")
@with_appcontext
def quickstart(host, port):
    """First run: create the database with demo data and an admin, print the login, serve."""
    app = current_app._get_current_object()
    db = _db()
    if not campaigns.any_campaign(db):
        click.echo(f"Creating demo campaigns and {QUICKSTART_DEMO_DAYS} days of history"
                   f" ({QUICKSTART_DEMO_IMPRESSIONS:,} impressions)...", err=True)
        summary = demo.generate(db, days=QUICKSTART_DEMO_DAYS, impressions=QUICKSTART_DEMO_IMPRESSIONS,
                                tz=app.config["BUSINESS_TZ"], base_url=served_base_url(app, host, port),
                                progress=_echo_progress)
        click.echo("Demo data ready in {seconds} s.".format(**summary), err=True)
        _announce_catalog_change()
    if not users.any_user(db):
        password = secrets.token_urlsafe(12)
        users.create_user(db, "admin", password)
        _print_login(app, port, f"admin / {password}  (shown once; add more with popup-mgr create-admin)")
    else:
        _print_login(app, port, "use your existing admin account")
    run_server(app, host, port)


def _print_login(app, port, credentials):
    click.echo("", err=True)
    click.echo(f"  popup_mgr admin: http://127.0.0.1:{port}/login", err=True)
    click.echo(f"  login: {credentials}", err=True)
    click.echo("", err=True)


@click.command("backup")
@click.argument("target", required=False, type=click.Path(dir_okay=False))
@with_appcontext
def backup_command(target):
    """Write an online backup (default: instance/backups/popup-<time>.db)."""
    try:
        path = backup.backup(current_app.config["DATABASE"], target)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc))
    click.echo(str(path))


@click.command("restore")
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--verify", "then_verify", is_flag=True,
              help="After restoring, check that daily_stats equals the ledger (exit 1 if not).")
@click.option("--secret-from", type=click.Path(dir_okay=False, exists=True),
              help="The old server's secret_key file, when restoring onto a new box.")
@click.option("--force", is_flag=True, help="Restore even while a server uses the database (it keeps "
                                            "serving stale offers until restarted).")
@with_appcontext
def restore_command(source, yes, then_verify, secret_from, force):
    """Replace the database with a backup (the current one is kept as a pre-restore copy).

    Refused while `popup-mgr serve` uses the database: stop the server first."""
    path = current_app.config["DATABASE"]
    if not yes:
        click.confirm(f"Replace the content of {path} with {source}?", abort=True)
    try:
        safety = backup.restore(path, source, secret_from=secret_from, force=force)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"Restored {source} into {path}" + (f"; previous content kept in {safety}" if safety else ""),
               err=True)
    if then_verify:
        _report_differences(backup.verify_database(path), f"the restored {path}")


@click.command("verify")
@click.argument("backup_file", required=False, type=click.Path(dir_okay=False, exists=True))
@click.option("--from", "first_day", metavar="YYYY-MM-DD", help="First day (default: the earliest in the ledger).")
@click.option("--to", "last_day", metavar="YYYY-MM-DD", help="Last day (default: the latest in the ledger).")
@with_appcontext
def verify(backup_file, first_day, last_day):
    """Check that daily_stats equals the ledger; exit 1 and print the differences if not.

    With BACKUP_FILE, check that backup instead, read-only (integrity, schema, row counts and the
    ledger), without changing it or anything beside it."""
    if backup_file:
        try:
            found = backup.verify_backup(backup_file)
        except backup.BackupError as exc:
            raise click.ClickException(str(exc))
        rows = ", ".join(f"{table} {count:,}" for table, count in sorted(found["tables"].items()) if count)
        click.echo(f"verify: {backup_file} is intact (schema {found['schema_version']}; {rows or 'no rows'}).")
        _report_differences(found["rollup_differences"], backup_file)
        return
    for value in (first_day, last_day):
        if value is not None:
            _check_day(value)
    db = _db()
    present = rollups.ledger_day_range(db)
    if present is None:
        click.echo("verify: ledger and daily_stats are empty; nothing to compare.")
        return
    first_day, last_day = first_day or present[0], last_day or present[1]
    if first_day > last_day:
        raise click.BadParameter(f"--from {first_day} is after --to {last_day}")
    _report_differences(rollups.differences(db, first_day, last_day), f"{first_day} .. {last_day}")


def _tune_problem(app):
    """For doctor: None when Tune accepts the key, the reason when not, NOT_CONNECTED without one."""
    if not tune_jobs.settings(app).configured:
        return doctor.NOT_CONNECTED
    ok, sentence = tune_jobs.test_connection(app)
    return None if ok else sentence


def _report_differences(differences, what):
    if not differences:
        click.echo(f"verify: daily_stats equals the ledger for {what}.")
        return
    click.echo(f"verify: {len(differences)} difference(s) between daily_stats and the ledger for {what}:")
    for source, row in differences:
        click.echo(f"  {source:>11}: " + ", ".join(f"{key}={value}" for key, value in row.items()))
    sys.exit(1)


@click.command("doctor")
@with_appcontext
def doctor_command():
    """Check this configuration for production and say what to fix (exit 1 on an error)."""
    app = current_app._get_current_object()
    problems = doctor.check(app.config, tune_check=lambda: _tune_problem(app))
    click.echo(doctor.report(problems))
    if doctor.has_errors(problems):
        sys.exit(1)


def _check_day(value):
    import datetime as dt
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)")


# --- Tune (HasOffers) -------------------------------------------------------------------------------
# Both commands talk to the network themselves (no server needed). A failure exits 1 with the
# network's message (the client never puts the API key in one) and changes nothing.

CLI_ACTOR = "cli"


@click.command("sync-tune")
@click.option("--dry-run", is_flag=True, help="Read the network and report what would change; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@with_appcontext
def sync_tune(dry_run, as_json):
    """Bring campaigns in line with the approved offers at Tune (new ones inactive, holds set and lifted)."""
    try:
        result = tune_jobs.sync_now(current_app._get_current_object(), actor=CLI_ACTOR, dry_run=dry_run)
    except (tune_jobs.NotConfigured, tune_jobs.TuneError, tune_sync.SyncBusy) as exc:
        raise click.ClickException(_tune_failure(exc))
    for skipped in result.skipped:
        click.echo(f"skipped Tune offer {skipped['offer_id']}: {skipped['reason']}", err=True)
    if as_json:
        click.echo(json.dumps(result.as_json(), sort_keys=True))
        return
    click.echo(tune_jobs.describe_sync(result))
    for campaign_id in result.created:
        click.echo(f"  created   campaign #{campaign_id}, inactive until you review it")
    for campaign_id in result.updated:
        click.echo(f"  updated   campaign #{campaign_id} (network facts)")
    for hold in result.held:
        click.echo(f"  held      campaign #{hold['campaign_id']}: {hold['reason']}")
    for campaign_id in result.released:
        click.echo(f"  released  campaign #{campaign_id}")


def _tune_failure(exc):
    if isinstance(exc, tune_jobs.NotConfigured):
        return str(exc)
    return f"Tune: {getattr(exc, 'message', None) or exc}; nothing was changed."


@click.command("reconcile")
@click.option("--from", "first_day", required=True, metavar="YYYY-MM-DD", help="First network day.")
@click.option("--to", "last_day", required=True, metavar="YYYY-MM-DD", help="Last network day.")
@click.option("--json", "as_json", is_flag=True, help="Print the reconciliation as JSON.")
@click.option("--apply", is_flag=True,
              help="Record Tune's conversions we lack and take Tune's status where it differs.")
@with_appcontext
def reconcile_command(first_day, last_day, as_json, apply):
    """Compare our clicks, conversions and revenue with Tune's reports, per offer per day."""
    try:
        first_day, last_day = reconcile.parse_range(first_day, last_day)
    except reconcile.RangeInvalid as exc:
        raise click.UsageError(str(exc))
    try:
        done = tune_jobs.reconcile_days(current_app._get_current_object(), first_day, last_day, apply=apply,
                                        actor=CLI_ACTOR)
    except (tune_jobs.NotConfigured, tune_jobs.TuneError) as exc:
        raise click.ClickException(_tune_failure(exc))
    report = done["report"]
    if as_json:
        click.echo(json.dumps(report | ({"applied": done["applied"]} if apply else {}), sort_keys=True))
        return
    _print_reconciliation(report, done["tz"])
    if apply:
        applied = done["applied"]
        click.echo(f"Applied: {len(applied['recorded'])} conversion(s) recorded, {len(applied['updated'])}"
                   f" status(es) taken from Tune, {applied['unchanged']} already as Tune has them.")
        click.echo("After: " + reconcile.gap_sentence(reconcile.summary(done["after"])))


def _signed_money(text):
    return text if text.startswith("-") or text == "0.00" else "+" + text


def _print_reconciliation(report, tz):
    click.echo(f"Reconciliation with Tune, {report['from']} to {report['to']} (network days, {tz}); diff = Tune - ours")
    click.echo(f"{'date':<10}  {'offer':>7}  {'campaign':>8}  {'clicks ours/tune/diff':>21}"
               f"  {'conv. ours/tune/diff':>20}  revenue ours/tune/diff")
    for day in report["days"]:
        ours, tune, diff = day["ours"], day["tune"], day["diff"]
        marker = " *" if diff["clicks"] or diff["conversions"] or diff["revenue"] != "0.00" else ""
        click.echo(f"{day['date']:<10}  {day['offer_id'] or '-':>7}  {day['campaign_id'] or '-':>8}"
                   f"  {ours['clicks']:>6} {tune['clicks']:>6} {diff['clicks']:>+7}"
                   f"  {ours['conversions']:>6} {tune['conversions']:>6} {diff['conversions']:>+6}"
                   f"  {ours['revenue']} / {tune['revenue']} / {_signed_money(diff['revenue'])}{marker}")
    if not report["days"]:
        click.echo("(no clicks or conversions on either side)")
    totals = report["totals"]
    click.echo(f"Totals: ours {totals['ours']['clicks']} clicks, {totals['ours']['conversions']} conversions,"
               f" ${totals['ours']['revenue']}; Tune {totals['tune']['clicks']} clicks,"
               f" {totals['tune']['conversions']} conversions, ${totals['tune']['revenue']}")
    for title, key in (("Missing in ours (Tune has them, we never received them)", "missing_in_ours"),
                       ("Missing in Tune (raise them with the network)", "missing_in_tune"),
                       ("Status differs", "status_mismatches")):
        rows = report[key]
        click.echo(f"{title}: {len(rows)}")
        for row in rows:
            status = (f"ours {row['ours_status']}, Tune {row['status']}" if key == "status_mismatches"
                      else row["status"])
            click.echo(f"  {row['datetime']}  {row['transaction_id']}  offer {row['offer_id']}  ${row['payout']}"
                       f"  {status}  click {row['click_id'] or '-'}")
    click.echo(reconcile.gap_sentence(reconcile.summary(report)))


COMMANDS = (init_db, create_admin, create_token, list_tokens, revoke_token, unlock, reset_password, serve, demo_data,
            quickstart, backup_command, restore_command, verify, doctor_command, sync_tune, reconcile_command)


def register(app):
    for command in COMMANDS:
        app.cli.add_command(command)


def _create_app():
    from popup_mgr import create_app
    from popup_mgr.config import ConfigError
    try:
        return create_app()
    except ConfigError as exc:
        sys.exit(f"popup-mgr: refusing to start: {exc}")
    except (sqlite3.Error, OSError) as exc:
        # Opening or migrating the database failed: one line that says what to fix, no traceback.
        _cannot_start(storage.describe_failure(exc, os.environ.get("POPUP_DB") or "instance/popup.db"))


def _cannot_start(message):
    click.echo(f"popup-mgr: cannot start: {message}", err=True)
    sys.exit(storage.STARTUP_FAILURE_EXIT)


def product_version():
    """The installed popup_mgr's version (setup.cfg), for --version and support questions."""
    from importlib import metadata
    try:
        return metadata.version("popup_mgr")
    except metadata.PackageNotFoundError:
        return "unknown (not installed; run make install)"


def _print_version(ctx, _param, value):
    if value and not ctx.resilient_parsing:
        click.echo(f"popup-mgr {product_version()}")
        ctx.exit()


class ProductGroup(FlaskGroup):
    """`popup-mgr`: Flask's app loading, but only the product's own commands and options.

    Flask's group adds -e/--env-file, -A/--app, --debug, a --version that prints Flask's versions,
    and every command extensions put on app.cli (flask-limiter's `limiter`). None of them is a
    popup_mgr command: the app is always popup_mgr, configured by POPUP_* variables. They stay
    available as `flask --app popup_mgr ...`."""

    def __init__(self, **extra):
        super().__init__(create_app=_create_app, add_default_commands=False, add_version_option=False,
                         load_dotenv=False, set_debug_flag=False, **extra)
        self.params = [param for param in self.params if param.name not in ("env_file", "app", "debug")]
        self.params.append(click.Option(["--version"], is_flag=True, expose_value=False, is_eager=True,
                                        callback=_print_version, help="Show popup-mgr's version and exit."))

    def list_commands(self, ctx):
        return sorted(self.commands)

    def get_command(self, ctx, name):
        return self.commands.get(name)


main = ProductGroup(help="popup_mgr: popup offer manager for Tune CPL campaigns.")
for _command in COMMANDS:
    main.add_command(_command)
