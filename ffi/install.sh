#!/usr/bin/env bash
# Installs the lbcore C library: header, static and shared library, pkg-config file.
#
#   ffi/install.sh PREFIX            e.g. ffi/install.sh /usr/local
#
# Builds `cargo build -p lbcore-ffi --release` first (set LBCORE_SKIP_BUILD=1 to use what is
# already built), reading the artefacts from $CARGO_TARGET_DIR (default: target/). Honours
# DESTDIR for staged installs, and LIBDIR / INCLUDEDIR (default PREFIX/lib, PREFIX/include).
# Installs:
#   $INCLUDEDIR/lbcore.h
#   $LIBDIR/liblbcore.a            (liblbcore_ffi.a renamed)
#   $LIBDIR/liblbcore.so           (liblbcore_ffi.so renamed; no SONAME versioning before 1.0)
#   $LIBDIR/pkgconfig/lbcore.pc
# Then (with PKG_CONFIG_PATH=$LIBDIR/pkgconfig unless that is on pkg-config's default path):
#   cc app.c $(pkg-config --cflags --libs lbcore)                                  # shared
#   cc app.c $(pkg-config --cflags lbcore) $(pkg-config --variable=static_libs lbcore)   # static
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 PREFIX" >&2; exit 2; }
PREFIX=$1
case $PREFIX in /*) ;; *) echo "$0: PREFIX must be an absolute path" >&2; exit 2 ;; esac
LIBDIR=${LIBDIR:-$PREFIX/lib}
INCLUDEDIR=${INCLUDEDIR:-$PREFIX/include}
DESTDIR=${DESTDIR:-}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=${CARGO_TARGET_DIR:-target}
# Link line of the staticlib, from `cargo rustc -p lbcore-ffi --release --crate-type staticlib
# -- --print native-static-libs` (same list as .ci/test).
LIBS_PRIVATE="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

if [ "${LBCORE_SKIP_BUILD:-0}" != 1 ]; then
    cargo build -p lbcore-ffi --release
fi
id=$(cargo pkgid -p lbcore-ffi)
VERSION=${id##*[#@]}
for f in "$TARGET/release/liblbcore_ffi.a" "$TARGET/release/liblbcore_ffi.so" ffi/include/lbcore.h; do
    [ -f "$f" ] || { echo "$0: $f not found (build first)" >&2; exit 1; }
done

install -d "$DESTDIR$LIBDIR/pkgconfig" "$DESTDIR$INCLUDEDIR"
install -m 0644 ffi/include/lbcore.h "$DESTDIR$INCLUDEDIR/lbcore.h"
install -m 0644 "$TARGET/release/liblbcore_ffi.a" "$DESTDIR$LIBDIR/liblbcore.a"
install -m 0755 "$TARGET/release/liblbcore_ffi.so" "$DESTDIR$LIBDIR/liblbcore.so"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@LIBDIR@|$LIBDIR|g" -e "s|@INCLUDEDIR@|$INCLUDEDIR|g" \
    -e "s|@VERSION@|$VERSION|g" -e "s|@LIBS_PRIVATE@|$LIBS_PRIVATE|g" \
    ffi/lbcore.pc.in >"$DESTDIR$LIBDIR/pkgconfig/lbcore.pc"
chmod 0644 "$DESTDIR$LIBDIR/pkgconfig/lbcore.pc"
echo "installed lbcore $VERSION into $DESTDIR$PREFIX"
