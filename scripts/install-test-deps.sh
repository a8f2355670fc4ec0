#!/usr/bin/env bash
# Installs what the test suite needs on Debian 12, idempotently: Dovecot (private
# instances are started by the tests themselves), Chromium + ChromeDriver, PostgreSQL,
# mbsync (the benchmark's peer) and openssl (test certificates).
set -euo pipefail
log() { printf '[install-test-deps] %s\n' "$*" >&2; }

need=()
# dovecot-core has the daemon (in /usr/sbin, not on every user's PATH); dovecot-imapd
# the IMAP server process it starts.
[ -x /usr/sbin/dovecot ] || need+=(dovecot-core)
[ -x /usr/lib/dovecot/imap ] || need+=(dovecot-imapd)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
command -v mbsync >/dev/null || need+=(isync)
command -v openssl >/dev/null || need+=(openssl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)

if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} from Debian"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  # Debian does not start services here (policy-rc.d); the tests run private instances.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
log "test tools ready: $(dovecot --version | cut -d' ' -f1), $(/usr/bin/chromium --version 2>/dev/null), mbsync $(mbsync --version | awk '{print $2}')"
