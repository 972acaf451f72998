# check_readme_example.cmake - fails unless README.md contains samples/readme_example.c verbatim.
# Usage: cmake -DREADME=<README.md> -DEXAMPLE=<readme_example.c> -P check_readme_example.cmake
file(READ "${README}" readme)
file(READ "${EXAMPLE}" example)
string(FIND "${readme}" "```c\n${example}```\n" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${README} does not contain ${EXAMPLE} verbatim in a ```c block: "
                      "copy the file into the README's API example")
endif()
message(STATUS "README.md contains readme_example.c verbatim")
