#!/bin/sh
# Builds and runs the codec benchmark. Arguments go to bench-formats, e.g.
#   bench/run_formats.sh --importance q4_0 iq4_xs
# BUILD_DIR overrides the build folder (default: build next to this script).
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
flock /tmp/lowbit-build.lock ninja -C "$build" -j2 bench-formats
exec "$build/bin/bench-formats" "$@"
