# The one version number of NEF: the VERSION file at the repository root. CMake's project version,
# the C API's nef_version(), `nef --version`, nef.__version__ and the wheel's metadata (through
# scikit-build-core's regex provider in pyproject.toml) all come from it. Included before
# project(): sets NEF_VERSION (the full PEP 440 string, e.g. 0.2.0rc1) and NEF_VERSION_NUMERIC
# (MAJOR.MINOR.PATCH, what project(VERSION) accepts), and generates nef/version.h.
file(READ "${CMAKE_CURRENT_LIST_DIR}/../VERSION" _nef_version_file)
string(STRIP "${_nef_version_file}" NEF_VERSION)
# A PEP 440 subset with three release numbers, so that Python, CMake and C agree on its parts.
set(_nef_version_re
    "^([0-9]+)\\.([0-9]+)\\.([0-9]+)((a|b|rc)[0-9]+)?(\\.post[0-9]+)?(\\.dev[0-9]+)?$")
# Numbers are written in PEP 440's normal form (no leading zeros), so "01.2.3" is rejected
# instead of becoming 1.2.3 in the wheel and 01.2.3 elsewhere.
if(NOT NEF_VERSION MATCHES "${_nef_version_re}" OR NEF_VERSION MATCHES "(^|[^0-9])0[0-9]")
  message(FATAL_ERROR "VERSION: '${NEF_VERSION}' is not a version of the form MAJOR.MINOR.PATCH "
                      "with an optional aN/bN/rcN, .postN and .devN suffix (PEP 440 normal form)")
endif()
string(REGEX MATCH "${_nef_version_re}" _nef_unused "${NEF_VERSION}")
set(NEF_VERSION_MAJOR ${CMAKE_MATCH_1})
set(NEF_VERSION_MINOR ${CMAKE_MATCH_2})
set(NEF_VERSION_PATCH ${CMAKE_MATCH_3})
set(NEF_VERSION_NUMERIC "${NEF_VERSION_MAJOR}.${NEF_VERSION_MINOR}.${NEF_VERSION_PATCH}")
# Re-run CMake when VERSION changes.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${CMAKE_CURRENT_LIST_DIR}/../VERSION")

# nef/version.h for every target of this directory (include_directories before any target).
configure_file("${CMAKE_CURRENT_LIST_DIR}/version.h.in"
               "${CMAKE_CURRENT_BINARY_DIR}/generated/nef/version.h" @ONLY)
include_directories(BEFORE "${CMAKE_CURRENT_BINARY_DIR}/generated")
