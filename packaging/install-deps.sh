#!/usr/bin/env bash
# Installs everything Windowpane needs to build, test and package on Debian 12 (run as root, or with sudo
# available). Used by the README and by .ci/run.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libopenblas-dev nlohmann-json3-dev
  libcurl4-openssl-dev libssl-dev  # the hub client (HTTP, SHA-256)
  libcpp-httplib-dev  # windowpane-cli serve (HTTP server)
  libsentencepiece-dev libpcre2-dev libutf8proc-dev
  libgtest-dev libgmock-dev
  python3  # tests/hub/fake_hub.py, the hub the download tests talk to
  qt6-base-dev qt6-svg-dev libqt6sql6-sqlite libgl-dev fonts-dejavu-core
  qtkeychain-qt6-dev  # remote endpoints' API keys in the platform's secret store
  libsecret-1-0  # QtKeychain reaches the Secret Service (GNOME Keyring, KeePassXC) through it
  dbus gnome-keyring libsecret-tools  # tests/ui/with_secret_service.sh: a real Secret Service for the key tests
  dpkg-dev desktop-file-utils
  clang libclang-rt-14-dev  # tests/fuzz (libFuzzer); GCC's sanitizers come with build-essential
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# npm fetches llama.cpp for the GGUF comparison test (tests/gguf); a Node.js from elsewhere will do.
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
