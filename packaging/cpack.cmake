# The Debian package (cpack -G DEB in the build folder, or packaging/deb.sh): the two programs, the
# desktop entry and its icon, and the demo model, installed under /usr. Included by the top-level
# CMakeLists.txt after every install() rule.

set(WP_PACKAGE_MAINTAINER "Windowpane maintainers <maintainers@windowpane.invalid>" CACHE STRING
    "Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME windowpane)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "Windowpane")
set(CPACK_PACKAGE_CONTACT "${WP_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Local LLM chat and attention viewer (Gemma, Gemma2, Qwen2 on the CPU)")
set(CPACK_PACKAGE_DESCRIPTION
    "Windowpane runs Gemma, Gemma2 and Qwen2 models from Hugging Face model folders on the CPU with
its own engine, and shows what every layer attends to: attention masks, attention weights and KV
caches, token by token. It comes as a Qt desktop app (windowpane) and a command-line tool
(windowpane-cli), with a small demo model to try them on.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # windowpane_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Shared-library dependencies come from dpkg-shlibdeps (dpkg-dev) on the installed programs; the
# SQLite driver is a Qt plugin, and libsecret is opened by QtKeychain, both at run time, so no
# linker record names them. Without a Secret Service (GNOME Keyring, KeePassXC) or KWallet running,
# endpoint keys last for the session only.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
if(WP_BUILD_GUI)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libqt6sql6-sqlite, libsecret-1-0")
  set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "gnome-keyring | kwalletmanager")
endif()
# gzip: the model's weights barely compress, and xz takes about ten times as long for a tenth less size.
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)

include(CPack)
