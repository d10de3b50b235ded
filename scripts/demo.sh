#!/bin/sh
# The README's demo: container storage at work, step by step, on a real store.
# LAMINA_ROOT picks the store (default /var/lib/lamina); LAMINA picks the binary.
set -eu
cd "$(dirname "$0")/.."
LAMINA=${LAMINA:-$(pwd)/.venv/bin/lamina}
export LAMINA_ROOT="${LAMINA_ROOT:-/var/lib/lamina}"
work=$(mktemp -d)
cleanup() {
  "$LAMINA" image umount demo/busybox >/dev/null 2>&1 || true
  "$LAMINA" umount demo-c >/dev/null 2>&1 || true
  "$LAMINA" rm -f demo-c demo-reader >/dev/null 2>&1 || true
  "$LAMINA" volume rm demo-data >/dev/null 2>&1 || true
  rm -rf "$work"
}
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

step "8. A container: the image's layers + an init layer + a writable layer"
# Leftovers of an interrupted earlier run would collide with the names below.
"$LAMINA" rm -f demo-c demo-reader >/dev/null 2>&1 || true
"$LAMINA" volume rm demo-data >/dev/null 2>&1 || true
run "$LAMINA" run --name demo-c demo/busybox sh -c 'echo hello > /hello.txt; rm /bin/vi; touch /etc/passwd'
run "$LAMINA" ps -a

step "9. Where its files live: GraphDriver (the init layer comes first in LowerDir)"
run "$LAMINA" inspect -f '{{json .GraphDriver}}' demo-c
upper=$("$LAMINA" inspect -f '{{.GraphDriver.Data.UpperDir}}' demo-c)
lowers=$("$LAMINA" inspect -f '{{.GraphDriver.Data.LowerDir}}' demo-c)
echo "$lowers" | tr ':' '\n' | while read -r d; do
  printf 'LowerDir: %s\n' "$d"
  ls -A "$d" | head -n 8 | sed 's/^/    /'
done
printf 'UpperDir: %s\n' "$upper"
(cd "$upper" && find . -mindepth 1 | sort | sed 's/^/    /')

step "10. The deleted /bin/vi is a whiteout in the upper dir: a character device 0:0"
run ls -l "$upper/bin/vi"
printf 'whiteout: %s\n' "$(stat -c '%F %t:%T' "$upper/bin/vi")"

step "11. The merged view (what the container sees), mounted on the host"
merged=$("$LAMINA" mount demo-c)
echo "merged: $merged"
run cat "$merged/hello.txt"
ls "$merged/bin/vi" 2>&1 | sed 's/^/    /' || true
run "$LAMINA" umount demo-c

step "12. lamina diff: what the container changed, against the init layer"
run "$LAMINA" diff demo-c

step "13. A named volume: created, written by one container, read by the next"
run "$LAMINA" volume create demo-data
run "$LAMINA" volume inspect demo-data
run "$LAMINA" run --rm -v demo-data:/data demo/busybox sh -c 'echo kept > /data/note'
run "$LAMINA" run --name demo-reader -v demo-data:/data demo/busybox cat /data/note
mountpoint=$("$LAMINA" volume inspect -f '{{.Mountpoint}}' demo-data)
printf 'the data lives on the host in %s:\n' "$mountpoint"
run ls -l "$mountpoint"
run cat "$mountpoint/note"

step "14. Clean up: containers (their layers and mounts), then the volume"
run "$LAMINA" rm demo-c demo-reader
run "$LAMINA" volume rm demo-data
echo
echo "Done. Try: $LAMINA inspect demo/busybox | less, and docs/tutorial.md"
