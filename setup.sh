#!/usr/bin/env bash
# One-command set-up on a fresh Debian/Ubuntu machine.
#   ./setup.sh lab    install everything, then open JupyterLab on notebooks/
#   ./setup.sh test   install everything, build the test guest (cached), run the test suite
# Extra arguments after `test` go to pytest.
set -euo pipefail
cd "$(dirname "$0")"

SYSTEM_PACKAGES=(qemu-system-x86 qemu-utils mtools gdisk dosfstools openssh-client ca-certificates)
TEST_PACKAGES=(busybox-static dropbear-bin cpio kmod zstd xz-utils genisoimage binutils openssl)

need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_system() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "setup: installing ${missing[*]}"
        need_root apt-get update -q
        need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
}

python_env() {
    local extras=$1
    if [ -z "${VIRTUAL_ENV:-}" ] && [ "${SMARTOS_LAB_NO_VENV:-}" != 1 ] && [ ! -w "$(python3 -c 'import site,sys; print(site.getsitepackages()[0])')" ]; then
        python3 -m venv .venv 2>/dev/null || { install_system python3-venv; python3 -m venv .venv; }
        . .venv/bin/activate
    fi
    python3 -m pip install -q --upgrade pip >/dev/null
    python3 -m pip install -q -e ".[$extras]"
}

case "${1:-}" in
    lab)
        install_system "${SYSTEM_PACKAGES[@]}"
        python_env notebook
        smartos-lab doctor || true
        root_flag=(); [ "$(id -u)" -eq 0 ] && root_flag=(--allow-root)
        exec python3 -m jupyterlab --notebook-dir=notebooks "${root_flag[@]}" "${@:2}"
        ;;
    test)
        install_system "${SYSTEM_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
        python_env "test,notebook"
        python3 -m tests.guest.build --variant base
        # OpenZFS for the zfs test guest: headers + zfs-dkms from Debian contrib (root; minutes once)
        if [ "$(id -u)" -ne 0 ]; then
            sudo env "PATH=$PATH" "PYTHONPATH=$PWD" python3 -c \
                'from tests.guest.zfs import ensure_zfs_build_deps; ensure_zfs_build_deps()'
        fi
        python3 -m tests.guest.build --variant zfs
        exec python3 -m pytest "${@:2}"
        ;;
    *)
        echo "usage: $0 lab|test [args...]" >&2
        exit 2
        ;;
esac
