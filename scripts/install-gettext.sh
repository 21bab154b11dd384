#!/bin/sh
# GNU gettext's msgfmt, which `manage.py compilemessages` runs to build locale/*/LC_MESSAGES/django.mo from the .po
# files (`make messages`; `make run` and `make test` depend on it). Debian's package, as install-browser.sh does.
set -eu
if command -v msgfmt >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gettext
msgfmt --version | head -n1
