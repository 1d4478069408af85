#!/usr/bin/env bash
# Install the Debian browsers the browser tests drive (Chromium, Firefox ESR, WebKitGTK + Xvfb)
# when they are missing. Test tools cannot download browsers of their own here, so the tests
# point Playwright and Selenium at these binaries.
set -euo pipefail
packages=()
command -v chromium >/dev/null || packages+=(chromium)
command -v firefox-esr >/dev/null || packages+=(firefox-esr)
command -v WebKitWebDriver >/dev/null || packages+=(webkit2gtk-driver)
command -v xvfb-run >/dev/null || packages+=(xvfb)
[ ${#packages[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Browser tests need: ${packages[*]} (apt-get install -y ${packages[*]}, as root)." >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" fonts-dejavu-core >/dev/null
