# Sourced by ci/setup and ci/test: where the Windows toolchain and the project's Wine prefix live.
# shellcheck shell=bash
PH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PH_ROOT
# The project-local Wine prefix (never the user's ~/.wine).
export WINEPREFIX="${PH_WINEPREFIX:-$PH_ROOT/target/wine-prefix}"
export WINEDEBUG=-all
# No crash debugger: a crashing server under test must just die (winedbg would start per crash).
export WINEDLLOVERRIDES="mscoree=;mshtml=;winedbg.exe=d"
export WINE_LOADER=/usr/lib/wine/wine64
export WINESERVER=/usr/lib/wine/wineserver
# The Windows target is built by Debian's rustc-web (it ships std sources for -Zbuild-std),
# in its own target dir so the two compilers never rebuild each other's artifacts.
export PH_WIN_TARGET=x86_64-pc-windows-gnu
export PH_WIN_TARGET_DIR="$PH_ROOT/target/windows"
win_env() {
  env RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$WINE_LOADER" \
    "$@"
}
