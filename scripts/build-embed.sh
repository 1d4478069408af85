#!/usr/bin/env bash
# Build embed/popup.min.js (what GET /popup.js serves) from the readable embed/popup.js with the
# pinned terser from package-lock.json. Deterministic: the same source gives the same bytes, and
# tests/test_embed_contract.py checks the committed build matches its source.
set -euo pipefail
cd "$(dirname "$0")/.."
node_modules/.bin/terser embed/popup.js --compress passes=2 --mangle --comments '/^!/' \
  --ecma 2017 --output embed/popup.min.js
