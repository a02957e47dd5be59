#!/usr/bin/env bash
# Installs the dependencies, builds, and packs Windowpane into a Debian package (packaging/cpack.cmake);
# prints the path of the .deb. Install it with: sudo apt install ./build/windowpane_<version>_<arch>.deb
# Usage: packaging/deb.sh [extra cmake arguments]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${WP_BUILD_DIR:-$root/build}"
"$root/packaging/install-deps.sh"
"$root/packaging/build.sh" "$@"
cd "$build"
cpack -G DEB >cpack.log 2>&1 || { cat cpack.log >&2; exit 1; }
deb="$(sed -n 's/^CPack: - package: \(.*\.deb\) generated\.$/\1/p' cpack.log)"
[ -f "$deb" ] || { cat cpack.log >&2; echo "deb.sh: no .deb was generated" >&2; exit 1; }
echo "$deb"
