#!/usr/bin/env bash
# Builds and installs pgvector 0.8.0 into the machine's PostgreSQL 15.
# Debian bookworm ships no pgvector package, so we fetch Debian trixie's source package
# through a private apt sources list and lists directory (the machine's own apt
# configuration is never touched), then build it with PGXS. Idempotent: does nothing
# when the installed extension already reports 0.8.0 or newer.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
VERSION=0.8.0
sharedir=$("$PG_CONFIG" --sharedir 2>/dev/null || true)

if [ -n "$sharedir" ] && [ -f "$sharedir/extension/vector--$VERSION.sql" ] \
   && [ -f "$("$PG_CONFIG" --pkglibdir)/vector.so" ]; then
  echo "pgvector $VERSION already installed"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! [ -x "$PG_CONFIG" ] || ! dpkg -s postgresql-server-dev-15 >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq postgresql-server-dev-15 make gcc >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial"
# Same mirror as the machine's own sources, trixie suite, source packages only.
mirror=$( (grep -shoE "https?://[^ ]+/debian/?$" /etc/apt/sources.list.d/*.sources /etc/apt/sources.list || true) | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}
echo "deb-src [trusted=yes] ${mirror%/} trixie main" > "$work/sources.list"
apt_opts=(-o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o Dir::State::Lists="$work/lists" -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq
(cd "$work" && apt-get "${apt_opts[@]}" source --download-only -qq pgvector)
tarball=$(ls "$work"/pgvector_${VERSION}*.orig.tar.* 2>/dev/null | head -n1)
if [ -z "$tarball" ]; then
  echo "pgvector $VERSION source not found; got: $(ls "$work")" >&2
  exit 1
fi
mkdir -p "$work/src"
tar -xf "$tarball" -C "$work/src" --strip-components=1
make -s -C "$work/src" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
make -s -C "$work/src" install PG_CONFIG="$PG_CONFIG" >/dev/null
echo "pgvector $VERSION installed"
