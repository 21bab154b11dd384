#!/bin/sh
# Install the headless browser the realtime browser test drives (tests/realtime/test_browser.py, marker "browser").
# Debian's chromium package provides /usr/bin/chromium; Playwright drives it through executable_path, so
# `playwright install` (which downloads browsers from a CDN) is never needed. The Python package is separate:
# pip install playwright==1.65.2 (not in requirements-dev.txt yet).
set -eu
if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || true)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
/usr/bin/chromium --version
