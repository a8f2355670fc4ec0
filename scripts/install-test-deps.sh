#!/usr/bin/env bash
# Installs what the test suite needs on Debian 12, idempotently: Dovecot (private
# instances are started by the tests themselves), Chromium + ChromeDriver, PostgreSQL,
# Cyrus and Courier unpacked beside it (see below), mbsync (the benchmark's peer),
# openssl (test certificates) and the npm packages of the OpenID provider in e2e/oidc
# (Node.js and npm must already be there).
set -euo pipefail
log() { printf '[install-test-deps] %s\n' "$*" >&2; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

need=()
# dovecot-core has the daemon (in /usr/sbin, not on every user's PATH); dovecot-imapd
# the IMAP server process it starts.
[ -x /usr/sbin/dovecot ] || need+=(dovecot-core)
[ -x /usr/lib/dovecot/imap ] || need+=(dovecot-imapd)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
command -v mbsync >/dev/null || need+=(isync)
command -v openssl >/dev/null || need+=(openssl)
command -v sqlite3 >/dev/null || need+=(sqlite3)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)

if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} from Debian"
  $SUDO apt-get update -qq
  # Debian does not start services here (policy-rc.d); the tests run private instances.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Cyrus IMAP and Courier-IMAP for the cross-server tests (e2e/src/cyrus.rs, courier.rs).
# Their Debian packages conflict with dovecot-imapd (all provide imap-server), so they are
# unpacked (apt-get download + dpkg -x) into a tools directory and run from there; their
# library dependencies, which conflict with nothing, are installed the normal way. A
# marker names the package set, so a second run costs one file read.
kit_dir="${MAILFERRY_KIT_TOOLS:-/opt/mailferry-kit}"
kit_unpack=(cyrus-imapd cyrus-common courier-imap courier-base courier-authlib courier-authlib-userdb)
kit_libs=(libxapian30 libpcre3 libical3 libidn12 libltdl7 libgamin0 gamin libcourier-unicode4
  libgdbm6 libsasl2-2 libsasl2-modules libsasl2-modules-db sasl2-bin libjansson4 libicu72
  libxml2 libsqlite3-0 libpq5 libwrap0 libkrb5-3 libldap-2.5-0 libcom-err2 zlib1g)
kit_marker="$kit_dir/.unpacked-v1 ${kit_unpack[*]}"
if [ "$(cat "$kit_dir/.marker" 2>/dev/null)" != "$kit_marker" ]; then
  log "unpacking ${kit_unpack[*]} into $kit_dir (and installing their libraries)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${kit_libs[@]}" >/dev/null
  $SUDO mkdir -p "$kit_dir"
  $SUDO chown "$(id -u):$(id -g)" "$kit_dir"
  rm -rf "$kit_dir/debs" "$kit_dir/root"
  mkdir -p "$kit_dir/debs" "$kit_dir/root"
  (cd "$kit_dir/debs" && apt-get download "${kit_unpack[@]}" 2>/dev/null >/dev/null \
     || apt-get download "${kit_unpack[@]}")
  for deb in "$kit_dir"/debs/*.deb; do dpkg -x "$deb" "$kit_dir/root"; done
  # Every binary the tests run must find its libraries (system ones or unpacked ones).
  missing=""
  kit_ld="$kit_dir/root/usr/lib:$kit_dir/root/usr/lib/x86_64-linux-gnu"
  for bin in usr/lib/cyrus/bin/master usr/lib/cyrus/bin/imapd usr/lib/cyrus/bin/ctl_cyrusdb \
             usr/sbin/couriertcpd usr/lib/courier/courier/imaplogin usr/bin/imapd \
             usr/lib/courier/courier-authlib/authdaemond usr/lib/courier/courier-authlib/makedatprog; do
    [ -x "$kit_dir/root/$bin" ] || { missing+=" $bin(absent)"; continue; }
    absent=$(LD_LIBRARY_PATH="$kit_ld" ldd "$kit_dir/root/$bin" | awk '/not found/{print $1}' | tr '\n' ' ' || true)
    [ -z "$absent" ] || missing+=" $bin($absent)"
  done
  [ -z "$missing" ] || { log "unpacked servers lack:$missing"; exit 1; }
  printf '%s\n' "$kit_marker" > "$kit_dir/.marker"
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
log "test tools ready: $(dovecot --version | cut -d' ' -f1), Cyrus and Courier in $kit_dir, $(/usr/bin/chromium --version 2>/dev/null), mbsync $(mbsync --version | awk '{print $2}'), node $(node -v 2>/dev/null)"
