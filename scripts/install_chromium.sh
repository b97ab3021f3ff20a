#!/usr/bin/env bash
# The browser test drives Debian's Chromium (Playwright cannot download its own browser offline).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "The browser test needs Chromium at /usr/bin/chromium (or set COURSE_CHROMIUM=/path/to/chrome)." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "Installing Chromium for the browser test (apt-get install chromium) ..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version
