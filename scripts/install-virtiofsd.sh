#!/usr/bin/env bash
# Installs a virtiofsd that runs unprivileged on Debian 12 into a fixed prefix
# (default /opt/distrotest/virtiofsd), without touching the host's apt sources.
#
# Debian 12 has no usable virtiofsd for non-root (QEMU 7.2's C daemon in
# /usr/lib/qemu needs root). Debian 13's Rust virtiofsd needs glibc 2.39, so
# it is downloaded with trixie's libraries (apt-get download through a private
# apt directory), unpacked with dpkg-deb -x, and run through trixie's dynamic
# loader by the wrapper PREFIX/bin/virtiofsd. Idempotent: does nothing when
# the wrapper already answers --version.
#
# Usage: scripts/install-virtiofsd.sh [PREFIX]
set -euo pipefail

prefix=${1:-/opt/distrotest/virtiofsd}
wrapper=$prefix/bin/virtiofsd
if [ -x "$wrapper" ] && "$wrapper" --version >/dev/null 2>&1; then
  exit 0
fi

sudo=
if [ "$(id -u)" -ne 0 ] && [ ! -w "$(dirname "$prefix")" ]; then sudo=sudo; fi

work=$(mktemp -d /tmp/distrotest-virtiofsd.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/debs"
: >"$work/apt/status"
cat >"$work/apt/sources.list" <<'EOF'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
EOF
apt_opts=(
  -o "Dir::Etc::SourceList=$work/apt/sources.list"
  -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$work/apt/lists"
  -o "Dir::State::Status=$work/apt/status"
  -o "Dir::Cache=$work/apt/cache"
  -o "APT::Architecture=amd64"
  -o "APT::Sandbox::User=root"
  -o "Debug::NoLocking=1"
)
echo "install-virtiofsd: fetching trixie's virtiofsd and its libraries" >&2
apt-get "${apt_opts[@]}" -qq update
# virtiofsd's run-time libraries (its Depends, as measured: libc, libseccomp,
# libcap-ng, libgcc_s).
debs=(virtiofsd libc6 libseccomp2 libcap-ng0 libgcc-s1)
(cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download "${debs[@]}")

root=$prefix/root
stage=$prefix.new
$sudo rm -rf "$stage"
$sudo mkdir -p "$stage/root" "$stage/bin"
for deb in "$work"/debs/*.deb; do
  $sudo dpkg-deb -x "$deb" "$stage/root"
done
bin=
for b in usr/libexec/virtiofsd usr/lib/qemu/virtiofsd usr/bin/virtiofsd; do
  if [ -f "$stage/root/$b" ]; then bin=$b; break; fi
done
if [ -z "$bin" ]; then
  echo "install-virtiofsd: no virtiofsd binary in the trixie package" >&2
  exit 1
fi
$sudo tee "$stage/bin/virtiofsd" >/dev/null <<EOF
#!/bin/sh
# trixie's virtiofsd through trixie's loader and libraries (scripts/install-virtiofsd.sh)
exec $root/usr/lib64/ld-linux-x86-64.so.2 --library-path $root/usr/lib/x86_64-linux-gnu $root/$bin "\$@"
EOF
$sudo chmod 0755 "$stage/bin/virtiofsd"
$sudo chmod -R a+rX "$stage"
$sudo rm -rf "$prefix"
$sudo mv "$stage" "$prefix"
"$wrapper" --version >&2
