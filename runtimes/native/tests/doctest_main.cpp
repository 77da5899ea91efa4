// The doctest runner shared by every test executable (ctest lists each TEST_CASE).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
