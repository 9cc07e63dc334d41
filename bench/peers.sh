# shellcheck shell=bash
# Source it: sets PEERS to the peers' scripts in ../shared/peers beside the checkout (for a git worktree:
# beside the main checkout), or to $PEERS_DIR, and sources their helpers (lib/common.sh).
_bench_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="${PEERS_DIR:-}"
if [ -z "$PEERS" ]; then
  for _d in "$_bench_root/../shared" \
            "$(git -C "$_bench_root" rev-parse --path-format=absolute --git-common-dir 2>/dev/null)/../../shared"; do
    [ -f "$_d/peers/lib/common.sh" ] && { PEERS="$(cd "$_d/peers" && pwd)"; break; }
  done
fi
[ -n "$PEERS" ] || { echo "no ../shared/peers beside the checkout: set PEERS_DIR" >&2; exit 1; }
# shellcheck source=/dev/null
. "$PEERS/lib/common.sh"
