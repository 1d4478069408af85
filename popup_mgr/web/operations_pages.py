"""Blueprint "operations": GET /metrics (Prometheus text format, admin session or bearer token)
and the Jobs page (every periodic job's last run and outcome, and "run now")."""
from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import login_required

from popup_mgr import metrics, operations, scheduler
from popup_mgr.db import get_db
from popup_mgr.web.auth import api_auth_required

bp = Blueprint("operations", __name__)


@bp.get("/metrics")
@api_auth_required
def metrics_text():
    body, content_type = metrics.exposition(current_app)
    return current_app.response_class(body, content_type=content_type, headers={"Cache-Control": "no-store"})


@bp.get("/admin/jobs")
@login_required
def jobs():
    running = operations.scheduler_for(current_app)
    return render_template("operations/jobs.html", jobs=scheduler.job_status(get_db()),
                           can_run=running.job_names() if running else ())


@bp.post("/admin/jobs/<name>/run")
@login_required
def run_job(name):
    running = operations.scheduler_for(current_app)
    if running is None or name not in running.job_names():
        flash("Jobs run in the server process (popup-mgr serve); this one cannot start it.", "error")
    else:
        running.run_now(name)
        flash(f"“{name}” will run as soon as the scheduler is free; reload to see its outcome.", "success")
    return redirect(url_for("operations.jobs"))
