#!/bin/sh
# The README's demo: container storage at work, step by step, on a real store.
# LAMINA_ROOT picks the store (default /var/lib/lamina); LAMINA picks the binary.
set -eu
cd "$(dirname "$0")/.."
LAMINA=${LAMINA:-$(pwd)/.venv/bin/lamina}
export LAMINA_ROOT="${LAMINA_ROOT:-/var/lib/lamina}"
work=$(mktemp -d)
cleanup() { "$LAMINA" image umount demo/busybox >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. A busybox rootfs tarball (from Debian's busybox-static)"
scripts/make-busybox-rootfs "$work/busybox.tar.gz"
ls -l "$work/busybox.tar.gz"

step "2. Import it as a one-layer image (store: $LAMINA_ROOT)"
run "$LAMINA" import --change 'CMD ["/bin/sh"]' "$work/busybox.tar.gz" demo/busybox
run "$LAMINA" images

step "3. Its layers: chain id, diff id (sha256 of the uncompressed tar), size, entries"
run "$LAMINA" layers demo/busybox

step "4. Mount it through overlayfs (read-only) and list the merged tree"
merged=$("$LAMINA" image mount demo/busybox)
echo "merged: $merged"
run ls "$merged"
run ls "$merged/bin" | head -n 12
grep " $merged " /proc/self/mountinfo | sed 's/^/mountinfo: /' | cut -c1-200 || true

step "5. The GraphDriver dirs from lamina inspect, and what is in them"
run "$LAMINA" inspect -f '{{json .GraphDriver}}' demo/busybox
for key in LowerDir UpperDir WorkDir MergedDir; do
  dirs=$("$LAMINA" inspect -f "{{index .GraphDriver.Data \"$key\"}}" demo/busybox)
  [ "$dirs" = "<no value>" ] && continue
  echo "$dirs" | tr ':' '\n' | while read -r d; do
    printf '%s: %s\n' "$key" "$d"
    ls "$d" | head -n 8 | sed 's/^/    /'
  done
done
layer=$("$LAMINA" inspect -f '{{.GraphDriver.Data.UpperDir}}' demo/busybox)
layerdir=$(dirname "$layer")
step "6. One layer on disk, as Docker's overlay2 lays it out: $layerdir"
run ls -la "$layerdir"
[ -f "$layerdir/link" ] && printf 'link -> %s (short name under %s/l/)\n' "$(cat "$layerdir/link")" "$(dirname "$layerdir")"

step "7. Every blob re-hashed"
run "$LAMINA" verify
run "$LAMINA" image umount demo/busybox
echo
echo "Done. Try: $LAMINA inspect demo/busybox | less"
