# shellcheck shell=bash
# Debian bookworm arm64 packages fetched with a private apt state: a separate
# list and cache directory and an empty dpkg status, so the host's own package
# database and architecture list are never touched. Sourced by
# images/build-image.sh (the root file systems) and cross/sysroot-arm64.sh
# (the C libraries tablet-shell links against).
#
#   arm64_apt_init CACHE_DIR   sets APT (an apt-get command line) and APT_DIR
#   arm64_closure PKG...       the packages apt would install for PKG..., one a line
#   arm64_download PKG...      downloads them (and their dependencies) into the cache
#   arm64_deb_of PKG           the downloaded .deb of PKG

arm64_apt_init() {
  local cache=$1
  APT_DIR=$cache/apt
  mkdir -p "$APT_DIR"/{lists/partial,cache,archives/partial}
  : > "$APT_DIR/status"
  cat > "$APT_DIR/sources.list" <<SOURCES
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
SOURCES
  APT=(apt-get -q -oAPT::Architecture=arm64 -oAPT::Architectures=arm64
    -oDir::State::Lists="$APT_DIR/lists" -oDir::Cache="$APT_DIR/cache"
    -oDir::Cache::archives="$APT_DIR/archives" -oDir::State::status="$APT_DIR/status"
    -oDir::Etc::SourceList="$APT_DIR/sources.list" -oDir::Etc::SourceParts=/nonexistent
    -oDebug::NoLocking=1)
  # Two builders may share one cache; flock keeps them from refreshing at once.
  exec {APT_LOCK}> "$APT_DIR/lock"
  flock "$APT_LOCK"
  if [ -z "$(find "$APT_DIR/lists" -name '*_Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    echo "arm64-apt: refreshing arm64 package lists" >&2
    "${APT[@]}" update >> "$cache/apt.log" 2>&1 || { echo "arm64-apt: apt-get update failed, see $cache/apt.log" >&2; return 1; }
  fi
  APT_LOG=$cache/apt.log
}

arm64_closure() { "${APT[@]}" -s install --no-install-recommends "$@" | awk '/^Inst /{print $2}'; }

arm64_download() {
  "${APT[@]}" -y -d install --no-install-recommends "$@" >> "$APT_LOG" 2>&1 ||
    { echo "arm64-apt: downloading packages failed, see $APT_LOG" >&2; return 1; }
}

# A package is either arm64 or all; ls fails for the other pattern.
arm64_deb_of() { { ls "$APT_DIR"/archives/"$1"_*_arm64.deb "$APT_DIR"/archives/"$1"_*_all.deb 2>/dev/null || true; } | head -1; }
