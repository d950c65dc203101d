# residency_library(NAME n SRCS ... DEPS ...) creates residency_<n> with the
# alias residency::<n>. Include paths are repository-relative
# ("runtime/engine/engine.h"), so every target sees the repository root.
function(residency_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(residency_${ARG_NAME} STATIC ${ARG_SRCS})
  add_library(residency::${ARG_NAME} ALIAS residency_${ARG_NAME})
  target_include_directories(residency_${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  if(ARG_DEPS)
    target_link_libraries(residency_${ARG_NAME} PUBLIC ${ARG_DEPS})
  endif()
endfunction()
