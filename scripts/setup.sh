#!/usr/bin/env bash
# Set up pyk3s on a Debian/Ubuntu machine (Python 3.11+ and kubectl present) and run it.
#
#   scripts/setup.sh --run-server [SERVER FLAGS...]   install what the server needs, then `pyk3s server FLAGS`
#   scripts/setup.sh --test [PYTEST ARGS...]          install what the tests need, then ruff and pytest
#   scripts/setup.sh --bench                          install the benchmark peers (nginx, knot, wrk, h2load, ...)
#   scripts/setup.sh --install                        only install what the server needs
#
# Debian packages are installed with apt-get only when missing (root needed then); the venv is
# `.venv` in the checkout, with pyk3s installed editable (`.[test]` for --test).  Packaged services
# (postgresql, etcd, nginx, knot) are kept from starting on install by a temporary policy-rc.d.
# --test is what CI runs (`.ci/run`): ruff, mypy, then pytest, printing every skip reason; it fails
# when a whole test file is skipped on a machine that should run it, or when no test ran.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_PKGS="iproute2 nftables kmod procps util-linux"
TEST_PKGS="dnsutils curl etcd-server etcd-client postgresql chromium containerd runc busybox-static docker-registry skopeo zstd"
BENCH_PKGS="knot unbound dnsperf wrk haproxy nginx-light iperf3 iptables nghttp2-client"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

mode=${1:-}
[ $# -gt 0 ] && shift
case "$mode" in
  --run-server) want="$SERVER_PKGS" extras="" ;;
  --install) want="$SERVER_PKGS" extras="" ;;
  --test) want="$SERVER_PKGS $TEST_PKGS" extras="[test]" ;;
  --bench) want="$SERVER_PKGS $BENCH_PKGS" extras="" ;;
  -h|--help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac

say() { echo "setup: $*" >&2; }

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { say "Python 3.11 or newer is needed as python3 (found $(python3 -V 2>&1))"; exit 1; }
# Debian's python3 has no venv/ensurepip until python3-venv is installed
python3 -c 'import ensurepip, venv' 2>/dev/null || want="$want python3-venv"

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages:$missing; run this script as root (sudo) to install them"
    exit 1
  fi
  say "installing Debian packages:$missing"
  policy_added=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  trap '[ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
  [ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d
  policy_added=""
fi
command -v kubectl >/dev/null || say "kubectl is not on PATH: the server runs, but \`pyk3s kubectl\` and the tests need it"

if [ ! -x .venv/bin/python ]; then
  say "creating the venv in .venv"
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e ".$extras"

case "$mode" in
  --run-server)
    exec .venv/bin/pyk3s server "$@"
    ;;
  --test)
    command -v kubectl >/dev/null || { say "kubectl is required on PATH for the tests"; exit 1; }
    export PATH="$PWD/.venv/bin:$PATH"
    # leftovers of an earlier crashed run (only names pyk3s owns)
    python -m pyk3s killall --leftovers-only >/dev/null 2>&1 || true
    ruff check pyk3s tests bench
    mypy
    set +e
    python -m pytest -q -p no:cacheprovider -rs --rerun-show-tracebacks --durations=20 --require-areas "$@"
    rc=$?
    set -e
    if [ "$rc" -eq 5 ]; then
      say "no test ran"
      exit 1
    fi
    exit "$rc"
    ;;
esac
