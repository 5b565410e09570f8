#!/bin/bash
# Every entry of a directory tree, sorted: first one line each with type, mode, owner, size
# (not for directories: it depends on the file system), link target and path; then the
# sha256 of every regular file. What verify compares between the source's stopped container
# and the destination's. The snapshot directory .zfs is left out.
#   manifest.sh DIR
set -euo pipefail
cd "$1"
find . -path ./.zfs -prune -o ! -name . -printf '%y %m %U:%G %s L%l %P\n' \
    | awk '$1 == "d" { $4 = "-" } { print }' | LC_ALL=C sort
find . -path ./.zfs -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 -r sha256sum --
