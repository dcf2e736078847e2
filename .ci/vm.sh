#!/usr/bin/env bash
# Boots a Debian kernel with IPVS under qemu (TCG) and runs lbcore's IPVS offload test in it
# (lbcore-net/tests/ipvs_vm.rs, guest program lbcore-net/tests/vm/guest.rs).
#
# Idempotent and cached: the .debs (kernel, busybox-static, ipvsadm and its libraries) are
# downloaded once into $LBCORE_VM_CACHE (default ~/.cache/lbcore-vm) and extracted once per
# package version; the initramfs is repacked each run (about a second) around the freshly
# built static guest binary and lbd (the guest also runs `lbd --offload ipvs`). Installs
# qemu-system-x86 with apt when it is missing (root).
# Fails loudly on any error; LBCORE_REQUIRE_NETNS=1 makes the test fail rather than skip.
#
#   bash .ci/vm.sh            prepare, then run the VM test
#   bash .ci/vm.sh --prepare  prepare only (what .ci/test's vm job does: its tests job then runs
#                             the VM test as part of `cargo test --workspace`)
set -euo pipefail
PREPARE_ONLY=0
case "${1:-}" in
    "") ;;
    --prepare) PREPARE_ONLY=1 ;;
    *) echo "usage: $0 [--prepare]" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${LBCORE_VM_CACHE:-$HOME/.cache/lbcore-vm}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
START=$(date +%s)
step() { echo "[vm.sh +$(( $(date +%s) - START ))s] $*"; }
die() { echo "vm.sh: error: $*" >&2; exit 1; }

mkdir -p "$CACHE/debs"

# 1. qemu
if ! command -v qemu-system-x86_64 >/dev/null; then
    step "installing qemu-system-x86"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null \
        || die "apt-get install qemu-system-x86 failed"
fi

# 2. packages (.deb, downloaded once; the kernel package is what linux-image-amd64 depends on)
PKGS="busybox-static ipvsadm libnl-3-200 libnl-genl-3-200 libpopt0 libc6"
have_debs() {
    ls "$CACHE"/debs/linux-image-*-amd64_*.deb >/dev/null 2>&1 || return 1
    for p in $PKGS; do ls "$CACHE/debs/${p}_"*.deb >/dev/null 2>&1 || return 1; done
}
if ! have_debs; then
    step "downloading packages"
    KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}' || true)
    if [ -z "$KPKG" ]; then
        apt-get update -qq || die "apt-get update failed"
        KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
    fi
    [ -n "$KPKG" ] || die "cannot resolve the kernel package of linux-image-amd64"
    (cd "$CACHE/debs" && apt-get download -q "$KPKG" $PKGS) || die "apt-get download failed"
    have_debs || die "packages missing after download"
fi

# 3. extract once per set of package versions
KDEB=$(ls "$CACHE"/debs/linux-image-*-amd64_*.deb | sort -V | tail -1)
KEY=$(for f in "$KDEB" $(for p in $PKGS; do ls "$CACHE/debs/${p}_"*.deb | sort -V | tail -1; done); do basename "$f"; done | sha256sum | cut -c1-16)
BASE="$CACHE/base-$KEY"
if [ ! -f "$BASE/.done" ]; then
    step "extracting packages into $BASE"
    rm -rf "$BASE" "$BASE.x"
    mkdir -p "$BASE.x/x" "$BASE.x/root"
    dpkg-deb -x "$KDEB" "$BASE.x/x"
    for p in $PKGS; do dpkg-deb -x "$(ls "$CACHE/debs/${p}_"*.deb | sort -V | tail -1)" "$BASE.x/x"; done
    X="$BASE.x/x"; R="$BASE.x/root"
    KVER=$(ls "$X/lib/modules" | head -1)
    cp "$X/boot/vmlinuz-$KVER" "$BASE.x/vmlinuz"
    mkdir -p "$R/bin" "$R/sbin" "$R/lib/x86_64-linux-gnu" "$R/lib64" "$R/lib/modules/$KVER"
    cp "$X/bin/busybox" "$R/bin/busybox"
    cp "$X/sbin/ipvsadm" "$R/sbin/ipvsadm"
    for l in libnl-3.so.200 libnl-genl-3.so.200 libpopt.so.0 libc.so.6; do
        f=$(find "$X/lib" "$X/usr/lib" -name "$l" 2>/dev/null | head -1)
        [ -n "$f" ] || die "library $l not found in the packages"
        cp -L "$f" "$R/lib/x86_64-linux-gnu/$l"
    done
    cp -L "$(find "$X/lib" "$X/usr/lib" -name ld-linux-x86-64.so.2 | head -1)" "$R/lib64/ld-linux-x86-64.so.2"
    # Modules: IPVS and its schedulers, dummy, crc32c, with their dependency closure.
    M="$X/lib/modules/$KVER"
    declare -A seen=()
    add_mod() {
        local name=$1 f
        [ -n "${seen[$name]:-}" ] && return 0
        seen[$name]=1
        f=$(find "$M/kernel" -name "$name.ko" -o -name "$name.ko.xz" | head -1)
        [ -n "$f" ] || die "module $name not found"
        mkdir -p "$R/lib/modules/$KVER/$(dirname "${f#$M/}")"
        case "$f" in
            *.xz) xz -dc "$f" > "$R/lib/modules/$KVER/${f#$M/}"; f2="$R/lib/modules/$KVER/${f#$M/}"; mv "$f2" "${f2%.xz}" ;;
            *) cp "$f" "$R/lib/modules/$KVER/${f#$M/}" ;;
        esac
        local deps
        deps=$(strings "$f" 2>/dev/null | sed -n 's/^depends=//p' | head -1)
        [ -z "$deps" ] && deps=$(xz -dc "$f" 2>/dev/null | strings | sed -n 's/^depends=//p' | head -1 || true)
        for d in ${deps//,/ }; do add_mod "$d"; done
    }
    for f in "$M"/kernel/net/netfilter/ipvs/ip_vs*.ko*; do
        n=$(basename "$f"); n=${n%.xz}; n=${n%.ko}
        case "$n" in ip_vs_ftp|ip_vs_pe_sip) continue ;; esac
        add_mod "$n"
    done
    add_mod dummy
    add_mod crc32c_generic
    echo "$KVER" > "$BASE.x/kver"
    rm -rf "$BASE.x/x"
    mv "$BASE.x" "$BASE"
    touch "$BASE/.done"
fi

# 4. the static guest program and lbd (the guest runs `lbd --offload ipvs` too)
step "building the guest program and lbd (static)"
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release -p lbcore-net \
    --example ipvs-vm-guest --bin lbd --target x86_64-unknown-linux-gnu || die "guest/lbd build failed"
GUEST="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/examples/ipvs-vm-guest"
LBD="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/lbd"
for b in "$GUEST" "$LBD"; do
    ldd "$b" 2>&1 | grep -qE "statically linked|not a dynamic executable" \
        || die "$b is not statically linked"
done

# 5. initramfs
step "packing the initramfs"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -a "$BASE/root/." "$WORK/"
cp "$GUEST" "$WORK/guest"
cp "$LBD" "$WORK/lbd"
cp "$ROOT/lbcore-net/tests/vm/init" "$WORK/init"
chmod 755 "$WORK/init" "$WORK/guest" "$WORK/lbd"
mkdir -p "$CACHE/current"
(cd "$WORK" && find . | "$BASE/root/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1 > "$CACHE/current/initramfs.gz.tmp")
mv "$CACHE/current/initramfs.gz.tmp" "$CACHE/current/initramfs.gz"
cp "$BASE/vmlinuz" "$CACHE/current/vmlinuz"

if [ "$PREPARE_ONLY" = 1 ]; then
    step "prepared $CACHE/current (vmlinuz, initramfs.gz)"
    exit 0
fi

# 6. the test
step "running the VM test"
LBCORE_REQUIRE_NETNS=1 LBCORE_VM_DIR="$CACHE/current" cargo test -q -p lbcore-net --test ipvs_vm -- --nocapture \
    || die "VM test failed"
step "done in $(( $(date +%s) - START )) s"
