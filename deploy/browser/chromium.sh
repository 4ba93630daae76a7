#!/usr/bin/env bash
# Debian's Chromium and a CJK font for the browser tests (Playwright drives /usr/bin/chromium;
# `playwright install` cannot download its own browser here). Without the font, Chinese
# renders as boxes in screenshots and PDFs. Installs only what is missing, only as root.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
fc-list 2>/dev/null | grep -qi "wenquanyi\|wqy" || missing+=(fonts-wqy-microhei)
command -v pdftotext >/dev/null || missing+=(poppler-utils)
[ ${#missing[@]} = 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "browser tests need: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2; exit 1
fi
echo "browser: installing Debian's ${missing[*]} (once)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
