#!/usr/bin/env bash
# Installs what the test suite needs on Debian 12, idempotently: Dovecot (private
# instances are started by the tests themselves), Chromium + ChromeDriver, PostgreSQL,
# mbsync (the benchmark's peer), openssl (test certificates) and the npm packages of
# the OpenID provider in e2e/oidc (Node.js and npm must already be there).
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
# The OpenID provider of the OAuth tests (e2e/oidc): `npm ci` only when node_modules is
# missing or package-lock.json changed since the last install (a hash stamp), so that a
# second run costs no more than a sha256sum.
oidc_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/e2e/oidc"
if [ -f "$oidc_dir/package-lock.json" ]; then
  command -v npm >/dev/null || { log "npm is missing (Node.js 20+ is needed for e2e/oidc)"; exit 1; }
  lock_hash="$(sha256sum "$oidc_dir/package-lock.json" | cut -d' ' -f1)"
  stamp="$oidc_dir/node_modules/.mailferry-lock-sha256"
  if [ ! -d "$oidc_dir/node_modules/oidc-provider" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
    log "installing e2e/oidc's npm packages (npm ci)"
    (cd "$oidc_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    printf '%s\n' "$lock_hash" > "$stamp"
  fi
fi
log "test tools ready: $(dovecot --version | cut -d' ' -f1), $(/usr/bin/chromium --version 2>/dev/null), mbsync $(mbsync --version | awk '{print $2}'), node $(node -v 2>/dev/null)"
