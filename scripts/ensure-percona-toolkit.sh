# shellcheck shell=bash
# ensure_percona_toolkit installs percona-toolkit (apt) when
# pt-online-schema-change is missing: the online engine's tests run it
# against the test server. Run directly, it installs it now.
ensure_percona_toolkit() {
  if command -v pt-online-schema-change >/dev/null 2>&1; then
    return 0
  fi
  echo "== pt-online-schema-change is missing; installing percona-toolkit"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq percona-toolkit >/dev/null
  command -v pt-online-schema-change >/dev/null 2>&1 || {
    echo "percona-toolkit installed no pt-online-schema-change" >&2
    return 1
  }
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  ensure_percona_toolkit
fi
