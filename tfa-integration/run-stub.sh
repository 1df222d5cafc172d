#!/usr/bin/env bash
# Quadrant: build TF-A v2.12.1 (patched) with the four-world configuration
# (EL3 SPMD+RMMD, S-EL2 SPMC, R-EL2 RMM, NS-EL2 BL33) around tiny assembly
# stubs, boot it in QEMU and check the stubs' output.
#
# Usage: tfa-integration/run-stub.sh            (CONFIG=debug by default)
#        CONFIG=release tfa-integration/run-stub.sh
# Env:   TFA_SRC  pristine Debian source tree (read only; copied, never modified)
#        OUT      scratch dir (default /tmp/quadrant-tfa-stub)
#        RUN=0    build only, do not boot QEMU
# Exit status 0 only if every check passed and QEMU powered itself off.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TFA_SRC=${TFA_SRC:-/root/.cache/quadrant/tfa/src}
OUT=${OUT:-/tmp/quadrant-tfa-stub}
CONFIG=${CONFIG:-debug}
RUN=${RUN:-1}
CROSS_COMPILE=${CROSS_COMPILE:-aarch64-linux-gnu-}

case "$CONFIG" in
debug)   TFA_DEBUG=(DEBUG=1 LOG_LEVEL=40) ;;	# INFO: image loads, SPMC/RMM init
release) TFA_DEBUG=(DEBUG=0 LOG_LEVEL=20) ;;	# NOTICE: banners only
*) echo "CONFIG must be debug or release" >&2; exit 2 ;;
esac

mkdir -p "$OUT"
log() { printf '==> %s\n' "$*"; }

# 1. Stubs (GNU as/ld/objcopy only).
log "building stubs"
"$HERE/stubs/build.sh" "$OUT/stubs" >/dev/null

# 2. A patched copy of the pristine tree, redone whenever the patches change.
SRC=$OUT/tfa-src
STAMP=$(cat "$HERE"/patches/*.patch | sha256sum | cut -d' ' -f1)
if [ ! -f "$SRC/.quadrant-patches" ] || [ "$(cat "$SRC/.quadrant-patches")" != "$STAMP" ]; then
	log "copying $TFA_SRC -> $SRC and applying patches"
	rm -rf "$SRC"
	cp -a "$TFA_SRC" "$SRC"
	for p in "$HERE"/patches/*.patch; do
		echo "    $(basename "$p")"
		patch -p1 -s -d "$SRC" < "$p"
	done
	echo "$STAMP" > "$SRC/.quadrant-patches"
fi

# 3. Stage the SP layout: sp_layout.json names its files relative to itself.
# Copy only on change: a newer sp_layout.json regenerates sp_gen.mk, and every
# TF-A object depends on the makefiles (MAKEFILE_LIST), so that would force a
# full rebuild.
SP=$OUT/sp
mkdir -p "$SP"
stage() { cmp -s "$1" "$2" || cp "$1" "$2"; }
stage "$HERE/sp_layout.json" "$SP/sp_layout.json"
stage "$HERE/sp/echo.dts" "$SP/echo.dts"
stage "$OUT/stubs/echo_sp_stub.bin" "$SP/echo.bin"

# 4. TF-A.
BUILD_BASE=$OUT/build-$CONFIG
BUILD_PLAT=$BUILD_BASE/qemu/$CONFIG
MAKE_ARGS=(
	CROSS_COMPILE="$CROSS_COMPILE"
	PLAT=qemu
	QEMU_USE_GIC_DRIVER=QEMU_GICV3
	ENABLE_RME=1
	SPD=spmd
	SPMD_SPM_AT_SEL2=1
	BL32="$OUT/stubs/spmc_stub.bin"
	RMM="$OUT/stubs/rmm_stub.bin"
	BL33="$OUT/stubs/ns_stub.bin"
	QEMU_TOS_FW_CONFIG_DTS="$HERE/spmc_manifest.dts"
	QEMU_TB_FW_CONFIG_DTS="$HERE/tb_fw_config.dts"
	SP_LAYOUT_FILE="$SP/sp_layout.json"
	ARM_BL2_SP_LIST_DTS="$BUILD_PLAT/sp_list_fragment.dts"
	ARM_LINUX_KERNEL_AS_BL33=1
	"${TFA_DEBUG[@]}"
	BUILD_BASE="$BUILD_BASE"
)
log "make ${MAKE_ARGS[*]} all fip"
t0=$(date +%s.%N)
make -C "$SRC" -j"$(nproc)" "${MAKE_ARGS[@]}" all fip > "$OUT/make-$CONFIG.log" 2>&1 || {
	tail -30 "$OUT/make-$CONFIG.log"; echo "TF-A build failed (log: $OUT/make-$CONFIG.log)" >&2; exit 1; }
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v l="$OUT/make-$CONFIG.log" 'BEGIN { printf "    build took %.1f s (log: %s)\n", b - a, l }'
BIOS=$BUILD_PLAT/qemu_fw.bios
# qemu_fw.bios is bl1.bin with fip.bin written at 256 KiB (platform.mk target,
# part of "all" when BL33 is set). Double-check that layout.
cmp -s -n "$(stat -c %s "$BUILD_PLAT/fip.bin")" -i 0:262144 "$BUILD_PLAT/fip.bin" "$BIOS" \
	|| { echo "fip.bin is not at offset 256 KiB in $BIOS" >&2; exit 1; }
ls -l "$BIOS"

[ "$RUN" = 1 ] || exit 0

# 5. Boot. SYSTEM_OFF ends QEMU via the secure PL061 GPIO (exit status 0).
QEMU=(qemu-system-aarch64
	-nodefaults -machine virt,secure=on,virtualization=on,gic-version=3
	-cpu max,x-rme=on -smp 4 -m 2G
	-bios "$BIOS" -nographic -serial mon:stdio
	-semihosting-config enable=on,target=native)
log "${QEMU[*]}"
set +e
timeout 60 "${QEMU[@]}" < /dev/null 2>&1 | tee "$OUT/qemu-$CONFIG.log"
qrc=${PIPESTATUS[0]}
set -e

# 6. Checks.
L=$OUT/qemu-$CONFIG.log
fail=0
check() { if grep -qa -- "$2" "$L"; then echo "  ok   $1"; else echo "  FAIL $1"; fail=1; fi; }
echo "==> checks"
check "TF-A banner"          "NOTICE:  BL31: v2.12.1"
check "SPMC entered (core 0)" "stub spmc: S-EL2 entry x0=0x000000000eefb000 .* x4=0x0000000000000000 CurrentEL=0x0000000000000008 \[x0\]=0x00000000d00dfeed"
check "RMM entered (core 0)"  "stub rmm: R-EL2 entry x0=0x0000000000000000 x1=0x0000000000000004 x2=0x0000000000000020 x3=0x00000000418ff000 manifest.version=0x0000000000000003"
check "BL33 entered, x0=DTB"  "stub ns: NS-EL2 entry x0=0x0000000040000000 x1=0x0000000000000000 x2=0x0000000000000000 x3=0x0000000000000000 CurrentEL=0x0000000000000008 \[x0\]=0x00000000d00dfeed"
check "FFA_VERSION via SPMC"  "stub ns: FFA_VERSION x0=0x0000000000010002 Y"
check "FFA_ID_GET by SPMD"    "stub ns: FFA_ID_GET .* Y"
check "FFA_SPM_ID_GET by SPMD" "stub ns: FFA_SPM_ID_GET .* Y"
check "RMI_VERSION via RMM"   "stub ns: RMI_VERSION x0=0x0000000000000000 .* Y"
check "CPU_ON core 1"         "stub ns: secondary entry x0=0x0000000000005ec0"
check "SPMC entered (core 1)" "stub spmc: S-EL2 entry .* x4=0x0000000000000001"
check "RMM entered (core 1)"  "stub rmm: R-EL2 entry x0=0x0000000000000001"
check "SYSTEM_OFF reached"    "QEMU System Power off"
if tr -d '\r' < "$L" | grep -qa " N$"; then echo "  FAIL a stub verdict was N"; fail=1; fi
if [ "$qrc" -ne 0 ]; then echo "  FAIL qemu exit status $qrc (124 = timeout)"; fail=1
else echo "  ok   qemu exited by itself, status 0"; fi
[ "$fail" = 0 ] && echo "==> PASS ($CONFIG)" || echo "==> FAIL ($CONFIG)"
exit "$fail"
