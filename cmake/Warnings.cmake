# Warnings for everything we compile. -Wconversion is added per file where
# the code handles untrusted numbers (see daemon/ and proto/).
set(AIOD_WARNINGS
    -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
    -Wvla -Wpointer-arith -Wno-unused-parameter -Wno-missing-field-initializers)
if(AIOD_WERROR)
  list(APPEND AIOD_WARNINGS -Werror)
endif()

# Applies the project's warnings to a target.
function(aiod_warnings target)
  target_compile_options(${target} PRIVATE ${AIOD_WARNINGS})
endfunction()
