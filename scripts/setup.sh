#!/usr/bin/env bash
# Installs what this machine lacks (Debian packages, npm packages) and builds D-RE. Quick when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "setup: run as root (containers need it)" >&2; exit 102; fi

mapfile -t wanted < <(grep -v '^\s*#' scripts/debian-packages.txt | awk 'NF {print $1}')
# One dpkg-query for all of them (packages dpkg has never heard of are only named on stderr).
installed=" $(dpkg-query -W -f='${Package}=${Status}\n' "${wanted[@]}" 2>/dev/null | awk -F= '$2 == "install ok installed" {print $1}' | tr '\n' ' ' || true) "
missing=()
for p in "${wanted[@]}"; do
  [[ $installed == *" $p "* ]] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
# With newuidmap present LXC maps ids through it, which refuses root's unlisted ranges: every unprivileged start fails.
if command -v newuidmap >/dev/null; then
  echo "setup: warning: newuidmap (package uidmap) is installed; unprivileged application containers will not start (apt-get remove uidmap)" >&2
fi

# etcd-server enables a system-wide etcd on 127.0.0.1:2379; D-RE runs its own members (dred --cluster names them), so none is left running here.
if command -v systemctl >/dev/null && systemctl is-enabled --quiet etcd 2>/dev/null; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi

# QEMU runs as this unprivileged system user (src/sys/confine.ts); in group kvm where that exists, for /dev/kvm.
if ! getent passwd dre-qemu >/dev/null; then
  echo "setup: adding system user dre-qemu"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group dre-qemu
fi
if getent group kvm >/dev/null && ! id -nG dre-qemu | tr ' ' '\n' | grep -qx kvm; then usermod -a -G kvm dre-qemu; fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi
# Rebuild only when a source is newer than the last build.
if [ ! -f dist/.built ] || [ -n "$(find src test bench tsconfig.json package.json -newer dist/.built -print -quit)" ]; then
  npm run --silent build
  chmod +x dist/src/cli/*.js dist/src/bin/*.js
  touch dist/.built
fi
# The CLIs' man pages and bash/zsh completions (scripts/gen-docs.mjs made them in the build).
for f in man/man1/dre-app.1 man/man1/dre-sys.1 bash-completion/completions/dre-app bash-completion/completions/dre-sys zsh/site-functions/_dre-app zsh/site-functions/_dre-sys; do
  if ! cmp -s "dist/share/$f" "/usr/local/share/$f"; then install -D -m 0644 "dist/share/$f" "/usr/local/share/$f"; fi
done

# libdaware (daware.h, libdaware.so/.a, pkg-config daware, daware-register) under /usr/local: rebuilt only when c/daware changed.
if [ ! -f /usr/local/lib/pkgconfig/daware.pc ] || [ -n "$(find c/daware -path c/daware/build -prune -o -type f -newer /usr/local/lib/pkgconfig/daware.pc -print -quit)" ]; then
  echo "setup: building and installing libdaware"
  make -s -C c/daware install PREFIX=/usr/local
fi

# dre-notify, dred's relay of the containers' NOTIFY_SOCKETs, under /usr/local/libexec/dre: rebuilt only when c/notify changed.
if [ ! -x /usr/local/libexec/dre/dre-notify ] || [ -n "$(find c/notify -path c/notify/build -prune -o -type f -newer /usr/local/libexec/dre/dre-notify -print -quit)" ]; then
  echo "setup: building and installing dre-notify"
  make -s -C c/notify install PREFIX=/usr/local
fi

# The C interface (libdreapp, libdresys): built and installed under /usr/local when c/dre changed or is not installed.
if [ ! -f c/dre/build/.installed ] || [ -n "$(find c/dre -path c/dre/build -prune -o -newer c/dre/build/.installed -print -quit)" ] || ! pkg-config --exists dreapp dresys; then
  echo "setup: building and installing libdreapp and libdresys"
  make -s -C c/dre install PREFIX=/usr/local >/dev/null
  touch c/dre/build/.installed
fi
