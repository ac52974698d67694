# Shell completion for aioctl: completion/aioctl (bash), installed where
# bash-completion loads it on demand, the first time `aioctl` is completed.
#
# Included from the root CMakeLists.txt (after GNUInstallDirs). The path is
# relative to the install prefix, as every other install rule: with the
# prefix /usr it is /usr/share/bash-completion/completions/aioctl, what
# `pkg-config --variable=completionsdir bash-completion` says on Debian. The
# file is named after the command, which is how bash-completion finds it.
# It goes into the Debian package "aiod", with aioctl.

set(AIOD_BASH_COMPLETION_DIR
    "${CMAKE_INSTALL_DATADIR}/bash-completion/completions"
    CACHE STRING "Where aioctl's bash completion is installed (relative to the prefix, or absolute)")
install(FILES "${CMAKE_CURRENT_LIST_DIR}/../completion/aioctl"
        DESTINATION "${AIOD_BASH_COMPLETION_DIR}"
        COMPONENT aiod)
