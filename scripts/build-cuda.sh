#!/usr/bin/env bash
# Builds a CUDA-enabled, stripped release binary of llmzip on a Debian 12 machine, from nothing
# but the package registries, and checks it on this machine (which may have no GPU).
#
#   scripts/build-cuda.sh            install what is missing, build, check; last line: the binary
#   scripts/build-cuda.sh --no-check install and build only
#
# What it does, and why (docs/devices.md has the longer story):
# 1. nvcc: Debian's `nvidia-cuda-toolkit` (CUDA 11.8), from the archive's `contrib` and `non-free`
#    components, which are added to apt's sources if missing. Skipped when nvcc is on PATH.
# 2. Two dependencies get a patched copy, made here from cargo's own download of them, so that
#    the binary needs no CUDA library to *start*:
#    - cudarc (used by candle) is switched from link-time to run-time loading of libcuda,
#      libcublas, libcurand and libnvrtc (its `dynamic-loading` mode);
#    - candle-kernels links the CUDA runtime statically (libcudart_static.a) instead of
#      libcudart.so.
#    llmzip then checks for the driver library itself before asking candle for a device, so a
#    machine without a GPU gets an error message, not a loader failure or a panic.
# 3. The build runs on a copy of the tracked files in $LLMZIP_CUDA_DIR (default target-cuda/),
#    with its own Cargo.lock and target directory: the repository's Cargo.lock, target/ and the
#    CPU build are never touched.
# 4. Kernels are compiled for compute capability $CUDA_COMPUTE_CAP (default 90: Hopper, H100 and
#    H200). candle-kernels embeds them as PTX for that capability, which the driver JIT-compiles
#    (so newer drivers work, e.g. CUDA 13), plus a static library of SASS for the same capability.
# 5. Checks (unless --no-check): no CUDA library among the binary's load-time dependencies;
#    `--device cpu` archives byte-identical to the CPU build's, and each binary decodes the
#    other's; `--device cuda` exits 1 with a message naming the missing driver or device (when
#    this machine has no usable GPU).
#
# Idempotent: installed packages, patched copies and the cargo target are reused; a second run
# only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
check=1
for arg in "$@"; do
    case "$arg" in
        --no-check) check=0 ;;
        *) echo "usage: $0 [--no-check]" >&2; exit 2 ;;
    esac
done
work="${LLMZIP_CUDA_DIR:-$root/target-cuda}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
log() { echo "build-cuda: $*" >&2; }

# --- 1. nvcc -------------------------------------------------------------------------------
if ! command -v nvcc >/dev/null; then
    log "installing Debian's nvidia-cuda-toolkit (needs contrib and non-free)"
    sources=/etc/apt/sources.list.d/debian.sources
    if [ -f "$sources" ]; then
        # deb822 format: "Components: main" -> "Components: main contrib non-free".
        for c in contrib non-free; do
            grep -Eq "^Components:.*\b$c\b( |$)" "$sources" ||
                sed -i -E "/^Components:/ s/\$/ $c/" "$sources"
        done
    else
        for c in contrib non-free; do
            grep -Eq "^deb .* main.*\b$c\b( |$)" /etc/apt/sources.list ||
                sed -i -E "/^deb / s/\$/ $c/" /etc/apt/sources.list
        done
    fi
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        nvidia-cuda-toolkit >&2
fi
log "$(nvcc --version | tail -1)"

# --- 2. the tracked sources, copied --------------------------------------------------------
# Tracked files plus untracked ones git does not ignore, as a fresh checkout of this tree would
# have them. tar keeps modification times, so cargo rebuilds only what changed.
src="$work/src"
rm -rf "$src"
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard |
    tar -C "$root" --null --ignore-failed-read -T - -cf - | tar -C "$src" -xf -

# --- 3. patched dependencies ---------------------------------------------------------------
(cd "$src" && cargo fetch -q)
registry="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ | head -1)"
locked() { # version of crate $1 in the repository's lock file
    awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' \
        "$root/Cargo.lock"
}
patched="$work/patched"
mkdir -p "$patched"
# patch_crate CRATE FILE SED_EXPR EXPECTED: a copy of CRATE (at its locked version) with one sed
# edit of FILE, which must leave the line EXPECTED in it (so an upstream change fails loudly).
patch_crate() {
    local dir="$patched/$1-$(locked "$1")" file="$2" expr="$3" expected="$4"
    [ -d "$dir" ] || cp -r "$registry/$(basename "$dir")" "$dir"
    grep -qF -- "$expected" "$dir/$file" || sed -i -e "$expr" "$dir/$file"
    grep -qF -- "$expected" "$dir/$file" || { log "FAIL: patching $file of $1"; exit 1; }
}
# cudarc: `dynamic-linking` (what candle asks for) becomes run-time loading.
for f in $(cd "$registry/cudarc-$(locked cudarc)" &&
    grep -rl 'feature = "dynamic-linking"' build.rs src); do
    patch_crate cudarc "$f" 's/feature = "dynamic-linking"/feature = "dynamic-linking-off"/g' \
        'dynamic-linking-off'
done
patch_crate cudarc Cargo.toml \
    's/^dynamic-linking = \[\]$/dynamic-linking = ["fallback-dynamic-loading"]/' \
    'dynamic-linking = ["fallback-dynamic-loading"]'
# candle-kernels: the CUDA runtime linked statically, from where the C compiler finds it.
cudart_dir="$(dirname "$(readlink -f "$(cc -print-file-name=libcudart_static.a)")")"
[ -f "$cudart_dir/libcudart_static.a" ] || { log "FAIL: no libcudart_static.a"; exit 1; }
patch_crate candle-kernels build.rs \
    "s|rustc-link-lib=dylib=cudart\");|rustc-link-lib=static=cudart_static\"); println!(\"cargo:rustc-link-search=native=$cudart_dir\");|" \
    "rustc-link-search=native=$cudart_dir"
# cudaforge: CUDA 11.8 has no `sm_90a`, the arch-specific variant cudaforge picks for 90 and up;
# plain sm_90 (and compute_90 PTX, which newer GPUs' drivers JIT-compile) instead.
patch_crate cudaforge src/compute_cap.rs \
    's/b if b >= 90 => Self::with_suffix(b, "a"),/b if b >= 90 \&\& false => Self::with_suffix(b, "a"),/' \
    'b if b >= 90 && false => Self::with_suffix(b, "a"),'
patches=()
for c in cudarc candle-kernels cudaforge; do
    patches+=(--config "patch.crates-io.$c.path=\"$patched/$c-$(locked "$c")\"")
done

# --- 4. build ------------------------------------------------------------------------------
log "building for compute capability $CUDA_COMPUTE_CAP (first build: about 8 minutes on 2 cores)"
(
    cd "$src"
    cargo build --release --features cuda --bin llmzip \
        --target-dir "$work/target" \
        "${patches[@]}" >&2
)
bin="$work/llmzip-cuda"
cp "$work/target/release/llmzip" "$bin.tmp"
strip "$bin.tmp"
mv "$bin.tmp" "$bin"

# --- 5. checks -----------------------------------------------------------------------------
if [ "$check" = 1 ]; then
    if ldd "$bin" | grep -Ei 'libcuda|libcudart|libcublas|libcurand|libnvrtc'; then
        log "FAIL: the binary needs a CUDA library to start (see above)"
        exit 1
    fi
    "$bin" --version >&2
    cpu="$root/target/release/llmzip"
    if [ ! -x "$cpu" ]; then
        log "building the CPU binary to compare with"
        cargo build --release --bin llmzip >&2
    fi
    t="$(mktemp -d)"
    trap 'rm -rf "$t"' EXIT
    { head -c 3000 README.md; printf '\0\r\n\377 binary tail'; } > "$t/in"
    "$cpu" -q compress -c --device cpu "$t/in" > "$t/cpu.llmz"
    "$bin" -q compress -c --device cpu "$t/in" > "$t/cuda.llmz"
    cmp "$t/cpu.llmz" "$t/cuda.llmz"
    "$bin" -q decompress -c "$t/cpu.llmz" | cmp - "$t/in"
    "$cpu" -q decompress -c "$t/cuda.llmz" | cmp - "$t/in"
    log "ok: --device cpu gives the CPU build's archive ($(wc -c < "$t/cpu.llmz") bytes), both decode"
    # try_cuda [hide]: --device cuda must work, or exit 1 naming the driver or device. With
    # `hide`, the driver library is first hidden in a private mount namespace (root only), to
    # check the machine that has no NVIDIA driver at all.
    hide_driver() {
        for f in $(ldconfig -p | awk '/libcuda\.so/ {print $NF}' | sort -u); do
            mount --bind /dev/null "$f"
        done
        exec "$@"
    }
    try_cuda() {
        local cmd=("$bin" -q compress -c --device cuda "$t/in")
        if [ "${1:-}" = hide ]; then
            cmd=(unshare -m bash -c "$(declare -f hide_driver); hide_driver \"\$@\"" hide "${cmd[@]}")
        fi
        set +e
        "${cmd[@]}" > /dev/null 2> "$t/err"
        local rc=$?
        set -e
        if [ "$rc" = 0 ]; then
            log "ok: --device cuda works here"
        elif [ "$rc" = 1 ] && grep -Eqi 'driver|device' "$t/err" && ! grep -qi 'panick' "$t/err"; then
            log "ok: ${1:+with the driver hidden, }--device cuda exits 1: $(head -1 "$t/err")"
        else
            log "FAIL: --device cuda exited $rc${1:+ (driver hidden)}:"
            cat "$t/err" >&2
            exit 1
        fi
    }
    try_cuda
    if [ "$(id -u)" = 0 ] && ldconfig -p | grep -q 'libcuda\.so'; then
        try_cuda hide
    fi
fi
echo "$bin"
