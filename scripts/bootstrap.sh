#!/usr/bin/env bash
# Install what DataLibrary needs on this machine: Debian packages, uv, the virtual
# environment with the project. Idempotent and quiet when everything is in place.
#   scripts/bootstrap.sh          run-time needs (make up)
#   scripts/bootstrap.sh --test   plus what the test suite drives (chromium, slapd)
set -euo pipefail
cd "$(dirname "$0")/.."

want=(bubblewrap r-base-core r-cran-irkernel r-cran-curl r-cran-jsonlite git)  # git: http-backend serves project repositories
if [[ "${1:-}" == "--test" ]]; then
  want+=(chromium slapd ldap-utils haproxy slurm-wlm munge postgresql postgresql-client)
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # slapd's package starts a system instance we do not use; the tests run their own.
  if [[ " ${missing[*]} " == *" slapd "* ]]; then
    "${sudo_cmd[@]}" service slapd stop >/dev/null 2>&1 || pkill -x slapd || true
  fi
  # the same for haproxy, munge and slurm: the HA script and the Slurm tests start their own
  for service in haproxy munge slurmctld slurmd; do
    if [[ " ${missing[*]} " == *" ${service%d} "* || " ${missing[*]} " == *" slurm-wlm "* ]]; then
      "${sudo_cmd[@]}" service "$service" stop >/dev/null 2>&1 || true
    fi
  done
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore uv
fi

extras="."
[[ "${1:-}" == "--test" ]] && extras=".[dev]"
hash=$(sha256sum pyproject.toml | cut -c1-16)
stamp=".venv/.bootstrap-$hash-${1:-run}"
# "--test" installs a superset of the run-time needs
[[ -f ".venv/.bootstrap-$hash---test" ]] && stamp=".venv/.bootstrap-$hash---test"
if [[ ! -f "$stamp" ]]; then
  echo "bootstrap: building .venv"
  [[ -x .venv/bin/python ]] || uv venv --quiet --python python3 .venv
  # Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set, every CLI command would
  # otherwise compile each module it imports again (about 1 s of CPU per command).
  uv pip install --quiet --compile-bytecode --python .venv/bin/python -e "$extras"
  .venv/bin/python -m compileall -q -j 0 src >/dev/null
  find .venv -maxdepth 1 -name '.bootstrap-*' ! -name ".bootstrap-$hash-*" -delete
  touch "$stamp"
fi
