// A minimal test harness: CHECK(...) records failures, TEST(name) registers a case,
// main() runs them all and returns non-zero if any check failed.
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace check {

struct Case {
    const char* name;
    std::function<void()> body;
};

inline std::vector<Case>& cases() {
    static std::vector<Case> all;
    return all;
}
inline int& failures() {
    static int n = 0;
    return n;
}

struct Register {
    Register(const char* name, std::function<void()> body) { cases().push_back({name, std::move(body)}); }
};

inline void fail(const char* file, int line, const std::string& what) {
    ++failures();
    std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

inline bool close(double a, double b, double rel, double abs = 0.0) {
    return std::fabs(a - b) <= abs + rel * std::fabs(b);
}

}  // namespace check

#define CHECK(cond)                                                   \
    do {                                                              \
        if (!(cond)) check::fail(__FILE__, __LINE__, #cond);          \
    } while (0)

#define CHECK_CLOSE(a, b, rel)                                                                     \
    do {                                                                                           \
        const double check_a_ = (a), check_b_ = (b);                                               \
        if (!check::close(check_a_, check_b_, rel))                                                \
            check::fail(__FILE__, __LINE__, std::string(#a " ~= " #b ": ") + std::to_string(check_a_) + \
                                                " vs " + std::to_string(check_b_));                \
    } while (0)

// CHECK_THROWS(expr, Type, "substring of what()")
#define CHECK_THROWS(expr, Type, text)                                                            \
    do {                                                                                          \
        bool check_thrown_ = false;                                                               \
        try {                                                                                     \
            (void)(expr);                                                                         \
        } catch (const Type& e) {                                                                 \
            check_thrown_ = true;                                                                 \
            if (std::string(e.what()).find(text) == std::string::npos)                            \
                check::fail(__FILE__, __LINE__, std::string("message lacks '") + text + "': " + e.what()); \
        }                                                                                         \
        if (!check_thrown_) check::fail(__FILE__, __LINE__, #expr " did not throw " #Type);       \
    } while (0)

#define CHECK_CAT2(a, b) a##b
#define CHECK_CAT(a, b) CHECK_CAT2(a, b)
#define TEST(name)                                                                \
    static void name();                                                           \
    static check::Register CHECK_CAT(register_, name)(#name, name);               \
    static void name()

#define TEST_MAIN()                                                               \
    int main() {                                                                  \
        for (const auto& c : check::cases()) {                                    \
            const int before = check::failures();                                 \
            try {                                                                 \
                c.body();                                                         \
            } catch (const std::exception& e) {                                   \
                check::fail(__FILE__, __LINE__, std::string(c.name) + " threw: " + e.what()); \
            }                                                                     \
            std::printf("%s %s\n", check::failures() == before ? "ok  " : "FAIL", c.name); \
        }                                                                         \
        std::printf("%d failure(s)\n", check::failures());                        \
        return check::failures() ? 1 : 0;                                         \
    }
