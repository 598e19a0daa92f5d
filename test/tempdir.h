// Torch-free helpers for unit tests: a temporary directory removed with everything in it when it goes out of
// scope, and the message of the Error a call throws.
#pragma once
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <string>
#include <vector>

#include "janusdna/error.h"

namespace test {

struct TempDir {
    std::string path;
    explicit TempDir(const std::string& tag = "janusdna-test") {
        std::string pattern = "/tmp/" + tag + "-XXXXXX";
        std::vector<char> buf(pattern.begin(), pattern.end());
        buf.push_back('\0');
        REQUIRE(mkdtemp(buf.data()) != nullptr);
        path = buf.data();
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name) const { return path + "/" + name; }
    // Writes bytes to NAME (creating the folders above it) and returns its path.
    std::string write(const std::string& name, const std::string& bytes) const {
        const std::string f = file(name);
        std::filesystem::create_directories(std::filesystem::path(f).parent_path());
        std::ofstream out(f, std::ios::binary);
        out << bytes;
        REQUIRE(out.good());
        return f;
    }
};

// The message of the janusdna::Error that f throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const janusdna::Error& e) {
        return e.what();
    }
    return "(no error)";
}

} // namespace test
