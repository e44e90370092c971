#!/usr/bin/env bash
# Debian packages ispbill needs: PDF rendering for invoices (always); with --test also
# FreeRADIUS 3.2 with rlm_rest, rlm_sql and radclient for the network-enforcement tests, and
# Chromium for the browser tests, and systemd (systemd-analyze verify checks deploy/systemd/).
# Installs only what is missing, so a machine that has them is
# not touched; needs root (as on the project's machines) otherwise.
#   scripts/system-deps.sh          what `make run` needs
#   scripts/system-deps.sh --test   what `make test` needs
set -euo pipefail
needed=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils)
if [ "${1:-}" = "--test" ]; then
  needed+=(freeradius freeradius-rest freeradius-utils freeradius-postgresql chromium systemd)
fi
missing=()
for pkg in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "installing Debian packages: ${missing[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
# freeradius's postinst may start the packaged daemon on 1812/1813 where an init system lets it
# (here policy-rc.d usually denies it). ispbill's tests start their own instance on free ports
# with a generated configuration, so stop and disable the packaged one wherever it started.
if printf '%s\n' "${missing[@]}" | grep -qx freeradius; then
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now freeradius >/dev/null 2>&1 || true
  fi
  if [ -x /etc/init.d/freeradius ]; then
    $SUDO /etc/init.d/freeradius stop >/dev/null 2>&1 || true
  fi
  $SUDO update-rc.d freeradius disable >/dev/null 2>&1 || true
fi
