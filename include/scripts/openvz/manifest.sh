#!/bin/bash
# Every entry of a directory tree, one line each, sorted: type, mode, owner, size, link target,
# path, and for regular files their sha256 (what verify compares between the source's stopped
# container and the destination's). The snapshot directory .zfs is left out.
#   manifest.sh DIR
set -euo pipefail
cd "$1"
find . -path ./.zfs -prune -o ! -name . -printf '%y %m %U:%G %s L%l %P\n' | LC_ALL=C sort > /tmp/.airlift-manifest.$$
while read -r type mode owner size link path; do
    if [ "$type" = f ]; then
        echo "$type $mode $owner $size $path $(sha256sum < "$path" | cut -c1-64)"
    else
        [ "$type" = l ] || size=-  # a directory's size depends on the file system
        echo "$type $mode $owner $size ${link#L} $path"
    fi
done < /tmp/.airlift-manifest.$$
rm -f /tmp/.airlift-manifest.$$
