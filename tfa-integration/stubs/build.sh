#!/bin/sh
# Build the four validation stubs into $1 (default: ./out). GNU binutils only.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/out}
CROSS=${CROSS_COMPILE:-aarch64-linux-gnu-}
mkdir -p "$OUT"
build() { # name addr
	${CROSS}as -I "$HERE" -o "$OUT/$1.o" "$HERE/$1.S"
	${CROSS}ld -nostdlib -Ttext="$2" -e _start -o "$OUT/$1.elf" "$OUT/$1.o"
	${CROSS}objcopy -O binary "$OUT/$1.elf" "$OUT/$1.bin"
}
build spmc_stub    0x0e100000
build rmm_stub     0x40100000
build ns_stub      0x60000000
build echo_sp_stub 0x0e304000
ls -l "$OUT"/*.bin
