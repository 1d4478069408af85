#!/usr/bin/env bash
# Copy the pinned browser files from node_modules (installed from package-lock.json) into the
# folder the app serves them from. Run by `make run` and `make test`; never fetched from a CDN.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=popup_mgr/static/vendor
mkdir -p "$dest"
cp node_modules/htmx.org/dist/htmx.min.js "$dest/htmx.min.js"
cp node_modules/chart.js/dist/chart.umd.min.js "$dest/chart.umd.min.js"
