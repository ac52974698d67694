# Debian packages with CPack's DEB generator (scripts/package.sh builds them).
#
#   aiod              the daemon, aioctl, the bundled plugins, the systemd
#                     units, the sysusers and tmpfiles snippets, the conffile
#                     /etc/aiod/aiod.conf, man pages of sections 1, 5 and 8
#                     and the example settings file
#   libaioclient1     the shared client library
#   libaioclient-dev  aioc.h, aiod/plugin.h, the static library, the .so
#                     link, libaioclient.pc, aiod-plugin.pc, the CMake package
#                     and the man pages of section 3
#
# Every install() rule names one of these components. The daemon's default
# plugin directory and settings file are compiled in, so the packages are
# built from a build directory configured with CMAKE_INSTALL_PREFIX=/usr.
set(AIOD_DEB_DIR ${PROJECT_SOURCE_DIR}/packaging/debian)

# Files only a package has: /usr/share/doc/<package>/copyright and
# changelog.Debian.gz. EXCLUDE_FROM_ALL: `cmake --install` leaves them out,
# CPack (which installs component by component) puts them in.
string(TIMESTAMP AIOD_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
set(AIOD_DEB_VERSION "${PROJECT_VERSION}-1")
set(AIOD_DEB_MAINTAINER "aiod maintainers <maintainers@users.noreply.b-seed-43e8d2bf.example>")
foreach(pkg aiod libaioclient1 libaioclient-dev)
  set(AIOD_DEB_PACKAGE ${pkg})
  set(out ${PROJECT_BINARY_DIR}/debian/${pkg})
  configure_file(${AIOD_DEB_DIR}/changelog.in ${out}/changelog.Debian @ONLY)
  execute_process(COMMAND gzip -9nf ${out}/changelog.Debian RESULT_VARIABLE r)
  if(NOT r EQUAL 0)
    message(FATAL_ERROR "gzip ${out}/changelog.Debian failed")
  endif()
  install(FILES ${AIOD_DEB_DIR}/copyright ${out}/changelog.Debian.gz
          DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${pkg}
          COMPONENT ${pkg} EXCLUDE_FROM_ALL)
endforeach()

# Manual pages are gzipped in the packages (Debian policy 12.1), as
# dh_compress would: after CPack has installed the components and before it
# packs them. Links to a page are pointed at the compressed page.
set(AIOD_DEB_GZIP_MAN ${PROJECT_BINARY_DIR}/debian/gzip-man.cmake)
file(WRITE ${AIOD_DEB_GZIP_MAN} [=[
file(GLOB_RECURSE pages LIST_DIRECTORIES false "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/*")
foreach(page IN LISTS pages)
  if(NOT page MATCHES "/share/man/man[^/]+/[^/]+$" OR page MATCHES "\\.gz$")
    continue()
  endif()
  if(IS_SYMLINK "${page}")
    file(READ_SYMLINK "${page}" target)
    file(REMOVE "${page}")
    if(NOT target MATCHES "\\.gz$")
      string(APPEND target ".gz")
    endif()
    file(CREATE_LINK "${target}" "${page}.gz" SYMBOLIC)
  else()
    execute_process(COMMAND gzip -9nf "${page}" RESULT_VARIABLE r)
    if(NOT r EQUAL 0)
      message(FATAL_ERROR "gzip ${page} failed")
    endif()
  endif()
endforeach()
]=])
set(CPACK_PRE_BUILD_SCRIPTS ${AIOD_DEB_GZIP_MAN})

set(CPACK_PACKAGE_NAME aiod)
set(CPACK_PACKAGE_VENDOR "aiod")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${AIOD_DEB_MAINTAINER}")
set(CPACK_GENERATOR DEB)
set(CPACK_COMPONENTS_ALL aiod libaioclient1 libaioclient-dev)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/")

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${AIOD_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libaioclient1 gets a shlibs file and the ldconfig trigger.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# Maintainer scripts and conffiles get the modes dpkg expects (0755, 0644).
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# aiod. aioctl links libaioclient statically, so it needs no libaioclient1;
# dpkg-shlibdeps adds the libraries the programs and plugins link. The
# system users come from systemd-sysusers (postinst).
set(CPACK_DEBIAN_AIOD_PACKAGE_NAME aiod)
set(CPACK_DEBIAN_AIOD_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_AIOD_PACKAGE_DEPENDS "systemd | systemd-sysusers")
set(CPACK_DEBIAN_AIOD_DESCRIPTION
    "machine-wide asyncio task daemon
aiod brings Python asyncio's model to a whole machine: one daemon runs a
libuv event loop, task functions come from plugins, and every task runs as
a coroutine on that loop. Clients create, await, gather, cancel and detach
tasks over a Unix socket.

This package contains the daemon aiod, the command-line client aioctl, the
bundled plugins (demo, proc, net) and the systemd units that run aiod as a
socket-activated system service.")
# The trigger: another package that puts a plugin into (or takes one out of)
# the plugin directory has the running daemon re-read it (postinst
# "triggered"), as `aioctl reload` does.
configure_file(${AIOD_DEB_DIR}/triggers.in ${PROJECT_BINARY_DIR}/debian/aiod/triggers @ONLY)
set(CPACK_DEBIAN_AIOD_PACKAGE_CONTROL_EXTRA
    ${AIOD_DEB_DIR}/conffiles ${AIOD_DEB_DIR}/postinst ${AIOD_DEB_DIR}/prerm
    ${AIOD_DEB_DIR}/postrm ${PROJECT_BINARY_DIR}/debian/aiod/triggers)
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr" AND NOT AIOD_SYSCONF_INSTALL_DIR STREQUAL "/etc/aiod")
  message(WARNING "aiod.conf installs to ${AIOD_SYSCONF_INSTALL_DIR}, "
                  "but packaging/debian/conffiles lists /etc/aiod/aiod.conf")
endif()

# libaioclient1: the shared library alone. ldconfig runs from the dpkg
# trigger (packaging/debian/libaioclient1/triggers); the postinst and postrm
# there take the place of the ones CPack would write to call ldconfig.
set(CPACK_DEBIAN_LIBAIOCLIENT1_PACKAGE_NAME libaioclient1)
set(CPACK_DEBIAN_LIBAIOCLIENT1_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_LIBAIOCLIENT1_PACKAGE_CONTROL_EXTRA
    ${AIOD_DEB_DIR}/libaioclient1/triggers ${AIOD_DEB_DIR}/libaioclient1/postinst
    ${AIOD_DEB_DIR}/libaioclient1/postrm)
set(CPACK_DEBIAN_LIBAIOCLIENT1_DESCRIPTION
    "client library for the aiod task daemon
aiod brings Python asyncio's model to a whole machine. libaioclient lets
programs create, await, gather, cancel and detach aiod tasks, with a
blocking and a non-blocking API.

This package contains the shared library.")

# libaioclient-dev: what building a client or a plugin needs. The static
# library and the pkg-config and CMake files need protobuf-c and jansson,
# and the CMake package runs pkg-config (find_dependency(PkgConfig)).
set(CPACK_DEBIAN_LIBAIOCLIENT-DEV_PACKAGE_NAME libaioclient-dev)
set(CPACK_DEBIAN_LIBAIOCLIENT-DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_LIBAIOCLIENT-DEV_PACKAGE_DEPENDS
    "libaioclient1 (= ${AIOD_DEB_VERSION}), libprotobuf-c-dev, libjansson-dev, pkgconf | pkg-config")
set(CPACK_DEBIAN_LIBAIOCLIENT-DEV_DESCRIPTION
    "client library for the aiod task daemon (development files)
aiod brings Python asyncio's model to a whole machine. libaioclient lets
programs create, await, gather, cancel and detach aiod tasks.

This package contains the headers aioc.h and aiod/plugin.h (for writing
plugins), the static library, the pkg-config files libaioclient.pc and
aiod-plugin.pc, the CMake package (find_package(aiod)) and the manual
pages of the C API.")

include(CPack)
