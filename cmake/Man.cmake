# Man pages from Markdown, converted at build time by go-md2man (Debian
# package go-md2man).
#
# Included from a CMakeLists.txt, this file finds go-md2man and defines
#
#   aiod_man_pages(FILE.md...)
#
# which turns each docs/man/NAME.SECTION.md into NAME.SECTION in the current
# binary directory and installs it into ${CMAKE_INSTALL_MANDIR}/manSECTION:
# sections 1, 5 and 8 in the install component "aiod", section 3 in
# "libaioclient-dev". Every other name in a page's NAME paragraph (the
# functions an aioc_*(3) page documents) gets a one-line ".so" page pointing
# at it, so `man aioc_close` finds aioc_connect(3).
#
# With -DAIOD_MAN_GZIP=ON the pages are installed compressed (gzip -9n, so
# the files do not depend on the build time).
#
# Run with `cmake -P` (as the build does), this file converts one page:
#   cmake -DGO_MD2MAN=... -DMAN_IN=x.8.md -DMAN_OUT=x.8 -DVERSION=0.1.0
#         [-DALIASES=a.3:b.3] [-DGZIP=/bin/gzip] -P Man.cmake
# go-md2man does the conversion; afterwards the .TH line gets the source
# ("aiod VERSION") and the manual's name, the NAME line's dash becomes the
# "\-" that whatis/lexgrog look for, and text lines that start with "." or
# "'" (which roff would read as requests) are escaped.

if(CMAKE_SCRIPT_MODE_FILE)
  cmake_minimum_required(VERSION 3.22)
  foreach(var GO_MD2MAN MAN_IN MAN_OUT VERSION)
    if(NOT DEFINED ${var})
      message(FATAL_ERROR "Man.cmake: ${var} is not set")
    endif()
  endforeach()

  get_filename_component(page "${MAN_OUT}" NAME)
  string(REGEX MATCH "[0-9]$" section "${page}")
  if(section STREQUAL "1")
    set(manual "User Commands")
  elseif(section STREQUAL "3")
    set(manual "Library Functions Manual")
  elseif(section STREQUAL "5")
    set(manual "File Formats Manual")
  elseif(section STREQUAL "8")
    set(manual "System Manager's Manual")
  else()
    set(manual "aiod")
  endif()

  execute_process(COMMAND "${GO_MD2MAN}" -in "${MAN_IN}" -out "${MAN_OUT}.tmp"
                  RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "go-md2man failed on ${MAN_IN} (${rc}): ${err}")
  endif()
  file(READ "${MAN_OUT}.tmp" roff)
  file(REMOVE "${MAN_OUT}.tmp")

  # .TH TITLE SECTION -> .TH TITLE SECTION "DATE" "aiod VERSION" "MANUAL".
  # The date honours SOURCE_DATE_EPOCH (reproducible builds).
  string(TIMESTAMP date "%Y-%m-%d" UTC)
  string(REGEX MATCH "\n\\.TH ([^ \n]+) ([^ \n]+)[^\n]*" th "\n${roff}")
  if(NOT th)
    message(FATAL_ERROR "${MAN_IN}: no title; the first line must be like '% AIOCTL 1'")
  endif()
  set(title "${CMAKE_MATCH_1}")
  string(REGEX REPLACE "^\n" "" th "${th}")
  set(new_th ".TH ${title} ${section} \"${date}\" \"aiod ${VERSION}\" \"${manual}\"")
  string(REPLACE "${th}" "${new_th}" roff "${roff}")

  # go-md2man writes ".nh" before ".TH", which turns hyphenation back on:
  # move it after, and fill lines without justifying them (long options,
  # paths and JSON lines leave nothing to stretch).
  string(REGEX REPLACE "^\\.nh\n" "" roff "${roff}")
  string(REPLACE "${new_th}\n" "${new_th}\n.nh\n.ad l\n" roff "${roff}")

  # NAME: "name, name - what" -> "name, name \- what".
  string(FIND "${roff}" ".SH NAME\n" at)
  if(at LESS 0)
    message(FATAL_ERROR "${MAN_IN}: no NAME section")
  endif()
  string(SUBSTRING "${roff}" 0 ${at} head)
  string(SUBSTRING "${roff}" ${at} -1 tail)
  string(FIND "${tail}" " - " dash)
  string(FIND "${tail}" " -\n" dash_eol) # the dash ends a line
  if(dash_eol GREATER_EQUAL 0 AND (dash LESS 0 OR dash_eol LESS dash))
    set(dash ${dash_eol})
  endif()
  string(FIND "${tail}" "\n.SH " next)
  if(dash LESS 0 OR (next GREATER 0 AND dash GREATER next))
    message(FATAL_ERROR "${MAN_IN}: the NAME paragraph needs 'name - description'")
  endif()
  string(SUBSTRING "${tail}" 0 ${dash} before)
  math(EXPR after_at "${dash} + 3")
  math(EXPR sep_at "${dash} + 2")
  string(SUBSTRING "${tail}" ${sep_at} 1 sep)
  string(SUBSTRING "${tail}" ${after_at} -1 after)
  set(roff "${head}${before} \\-${sep}${after}")

  # go-md2man 2.0 leaves a text line starting with "." or "'" as it is, which
  # roff would take for a request. Escape every such line that is not one of
  # the requests go-md2man itself writes.
  string(REGEX MATCHALL "\n[.'][^\n]*" lines "${roff}")
  set(requests nh ad TH SH SS PP LP P TP IP HP RS RE nf fi br sp in TS TE EX EE)
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "^\n")
      continue() # a piece after a ";" inside a line, not a line start
    endif()
    string(REGEX MATCH "^\n[.']([A-Za-z]+)( |$)" m "${line}")
    if(m AND CMAKE_MATCH_1 IN_LIST requests)
      continue()
    endif()
    string(SUBSTRING "${line}" 1 -1 text)
    string(REPLACE "${line}" "\n\\&${text}" roff "${roff}")
  endforeach()

  file(WRITE "${MAN_OUT}" "${roff}")
  if(GZIP)
    execute_process(COMMAND "${GZIP}" -9n -c "${MAN_OUT}" OUTPUT_FILE "${MAN_OUT}.gz"
                    RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "gzip failed on ${MAN_OUT}")
    endif()
  endif()

  # Alias pages: ".so manS/PAGE" (man-db also finds PAGE.gz).
  get_filename_component(dir "${MAN_OUT}" DIRECTORY)
  string(REPLACE ":" ";" ALIASES "${ALIASES}")
  foreach(alias IN LISTS ALIASES)
    file(WRITE "${dir}/aliases/${alias}" ".so man${section}/${page}\n")
    if(GZIP)
      execute_process(COMMAND "${GZIP}" -9n -c "${dir}/aliases/${alias}"
                      OUTPUT_FILE "${dir}/aliases/${alias}.gz" RESULT_VARIABLE rc)
      if(NOT rc EQUAL 0)
        message(FATAL_ERROR "gzip failed on ${alias}")
      endif()
    endif()
  endforeach()
  return()
endif()

find_program(GO_MD2MAN go-md2man REQUIRED
             DOC "go-md2man, which turns docs/man/*.md into man pages (Debian: apt-get install go-md2man)")
option(AIOD_MAN_GZIP "Install the man pages gzip-compressed" OFF)
if(AIOD_MAN_GZIP)
  find_program(AIOD_GZIP gzip REQUIRED)
endif()
set(AIOD_MAN_SCRIPT "${CMAKE_CURRENT_LIST_FILE}")

# The names in a page's NAME paragraph other than the page itself, as alias
# file names (NAME.SECTION). Names with wildcards are left out.
function(aiod_man_aliases md page section ret)
  file(READ "${md}" text)
  string(REGEX MATCH "\n## NAME\n\n([^\n]+(\n[^\n]+)*)" m "\n${text}")
  set(names "${CMAKE_MATCH_1}")
  if(names MATCHES "^([^-]*)[ \n]-[ \n]")
    set(names "${CMAKE_MATCH_1}")
  endif()
  string(REGEX REPLACE "[ \n]" "" names "${names}")
  string(REPLACE "," ";" names "${names}")
  set(out "")
  foreach(n IN LISTS names)
    if(n STREQUAL "" OR n STREQUAL page OR n MATCHES "[^A-Za-z0-9_.-]")
      continue()
    endif()
    list(APPEND out "${n}.${section}")
  endforeach()
  set(${ret} "${out}" PARENT_SCOPE)
endfunction()

function(aiod_man_pages)
  set(all_outputs "")
  set(seen "")
  foreach(md IN LISTS ARGN)
    get_filename_component(file "${md}" NAME)
    string(REGEX REPLACE "\\.md$" "" page "${file}")
    if(NOT page MATCHES "^(.+)\\.([1-8])$")
      message(FATAL_ERROR "${md}: man page sources are named NAME.SECTION.md")
    endif()
    set(base "${CMAKE_MATCH_1}")
    set(section "${CMAKE_MATCH_2}")
    set(out "${CMAKE_CURRENT_BINARY_DIR}/${page}")

    aiod_man_aliases("${md}" "${base}" "${section}" aliases)
    set(unique "")
    foreach(a IN LISTS aliases)
      if(a IN_LIST seen OR a STREQUAL page)
        continue()
      endif()
      list(APPEND seen "${a}")
      list(APPEND unique "${a}")
    endforeach()
    set(aliases "${unique}")
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${md}")

    set(outputs "${out}")
    set(installed "${out}")
    set(alias_files "")
    foreach(a IN LISTS aliases)
      list(APPEND outputs "${CMAKE_CURRENT_BINARY_DIR}/aliases/${a}")
      list(APPEND alias_files "${CMAKE_CURRENT_BINARY_DIR}/aliases/${a}")
    endforeach()
    set(gzip_arg "")
    if(AIOD_MAN_GZIP)
      set(gzip_arg "-DGZIP=${AIOD_GZIP}")
      set(installed "${out}.gz")
      list(TRANSFORM alias_files APPEND ".gz")
      list(APPEND outputs "${out}.gz" ${alias_files})
    endif()
    string(REPLACE ";" ":" aliases_arg "${aliases}") # a list through the command line

    add_custom_command(
      OUTPUT ${outputs}
      COMMAND "${CMAKE_COMMAND}" "-DGO_MD2MAN=${GO_MD2MAN}" "-DMAN_IN=${md}" "-DMAN_OUT=${out}"
              "-DVERSION=${PROJECT_VERSION}" "-DALIASES=${aliases_arg}" ${gzip_arg}
              -P "${AIOD_MAN_SCRIPT}"
      DEPENDS "${md}" "${AIOD_MAN_SCRIPT}"
      COMMENT "Man page ${page}"
      VERBATIM)
    list(APPEND all_outputs ${outputs})

    if(section STREQUAL "3")
      set(component libaioclient-dev)
    else()
      set(component aiod)
    endif()
    install(FILES ${installed} ${alias_files}
            DESTINATION "${CMAKE_INSTALL_MANDIR}/man${section}"
            COMPONENT ${component})
  endforeach()
  add_custom_target(man ALL DEPENDS ${all_outputs})
endfunction()
