# What scikit-build-core puts in the wheel (included only when SKBUILD is defined):
#   nef/_nef.*.so   the extension module
#   nef/_bin/nef    the nef executable, inside the package so that `auditwheel repair` can point its
#                   RUNPATH at the bundled libraries (nef.libs/), whatever the install scheme
#   bin/nef         tools/nef/launcher.py, which execs nef/_bin/nef (found without importing nef)
install(TARGETS _nef LIBRARY DESTINATION nef)
if(NEF_BUILD_CLI)
  install(TARGETS nef_cli RUNTIME DESTINATION nef/_bin)
  install(PROGRAMS tools/nef/launcher.py DESTINATION "${SKBUILD_SCRIPTS_DIR}" RENAME nef)
endif()
