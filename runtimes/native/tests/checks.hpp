// Two checks doctest does not spell the way these tests need them, built on its CHECK:
//   CHECK_CLOSE(a, b, rel)              |a - b| <= rel * |b|
//   CHECK_THROWS_CONTAINING(expr, T, s) expr throws T whose what() contains s
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <string>

namespace pace_test {

// what() of the `E` that `f` throws; "(nothing thrown)" when it returns. Other exceptions
// propagate (doctest reports them as a failed test case).
template <class E, class F>
std::string what_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    return "(nothing thrown)";
}

}  // namespace pace_test

#define CHECK_CLOSE(a, b, rel) CHECK(std::fabs((a) - (b)) <= (rel)*std::fabs(b))

#define CHECK_THROWS_CONTAINING(expr, Type, text)                                           \
    do {                                                                                    \
        const std::string what_ = pace_test::what_of<Type>([&] { (void)(expr); });         \
        INFO(#expr " -> " #Type ": " << what_);                                             \
        CHECK(what_.find(text) != std::string::npos);                                       \
    } while (0)
