#include "pace/dark_file.hpp"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

#include "pace/ascii_lines.hpp"
#include "pace/errors.hpp"

namespace pace {

namespace {

std::string field(const std::string& header, const std::string& key) {
    const size_t k = header.find("'" + key + "'");
    if (k == std::string::npos) return "";
    size_t v = header.find(':', k);
    if (v == std::string::npos) return "";
    ++v;
    while (v < header.size() && header[v] == ' ') ++v;
    if (header[v] == '(') return header.substr(v, header.find(')', v) - v + 1);
    size_t end = header.find_first_of(",}", v);
    std::string out = header.substr(v, end - v);
    if (!out.empty() && out.front() == '\'') out = out.substr(1, out.size() - 2);
    return out;
}

template <class T>
void append(Vec& out, const std::string& data, size_t count) {
    for (size_t i = 0; i < count; ++i) {
        T value;
        std::memcpy(&value, data.data() + i * sizeof(T), sizeof(T));
        out.push_back(double(value));
    }
}

Vec load_npy(const std::string& path, const std::string& bytes) {
    if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
        throw DataError(path + ": cannot read the dark spectrum (not a .npy file)");
    const int major = static_cast<unsigned char>(bytes[6]);
    size_t header_len = 0, offset = 0;
    if (major == 1) {
        header_len = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
        offset = 10;
    } else {
        if (bytes.size() < 12) throw DataError(path + ": cannot read the dark spectrum (truncated)");
        for (int i = 0; i < 4; ++i) header_len |= size_t(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
        offset = 12;
    }
    if (offset + header_len > bytes.size()) throw DataError(path + ": cannot read the dark spectrum (truncated)");
    const std::string header = bytes.substr(offset, header_len);
    const std::string descr = field(header, "descr"), shape = field(header, "shape");
    size_t count = 1, long_dims = 0;
    std::stringstream dims(shape.size() >= 2 ? shape.substr(1, shape.size() - 2) : "");
    std::string dim;
    while (std::getline(dims, dim, ',')) {
        if (dim.find_first_not_of(' ') == std::string::npos) continue;
        const size_t n = size_t(std::stoul(dim));
        count *= n;
        long_dims += n > 1;
    }
    if (field(header, "fortran_order") == "True" && long_dims > 1)
        throw DataError(path + ": cannot read the dark spectrum (Fortran-ordered 2-D array)");
    const std::string data = bytes.substr(offset + header_len);
    if (descr.size() < 3 || (descr[0] != '<' && descr[0] != '|' && descr[0] != '='))
        throw DataError(path + ": cannot read the dark spectrum (dtype " + descr + " is not little-endian)");
    const std::string type = descr.substr(1);
    const size_t size = std::stoul(type.substr(1));
    if (data.size() < count * size) throw DataError(path + ": cannot read the dark spectrum (truncated data)");
    Vec out;
    if (type == "f8") append<double>(out, data, count);
    else if (type == "f4") append<float>(out, data, count);
    else if (type == "i8") append<std::int64_t>(out, data, count);
    else if (type == "i4") append<std::int32_t>(out, data, count);
    else if (type == "i2") append<std::int16_t>(out, data, count);
    else if (type == "u2") append<std::uint16_t>(out, data, count);
    else if (type == "u4") append<std::uint32_t>(out, data, count);
    else if (type == "u1") append<std::uint8_t>(out, data, count);
    else throw DataError(path + ": cannot read the dark spectrum (unsupported dtype " + descr + ")");
    return out;
}

Vec load_text(const std::string& path, const std::string& text) {
    Vec out;
    std::stringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        line = line.substr(0, line.find('#'));
        std::stringstream cells(line);
        std::string cell;
        while (cells >> cell) {
            const auto v = ascii::parse_number(cell);
            if (!v) throw DataError(path + ": cannot read the dark spectrum (could not convert '" + cell + "')");
            out.push_back(*v);
        }
    }
    return out;
}

}  // namespace

Vec load_dark(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw DataError(path + ": cannot read the dark spectrum (" + std::strerror(errno) + ")");
    std::stringstream buf;
    buf << in.rdbuf();
    const bool npy = path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
    Vec dark = npy ? load_npy(path, buf.str()) : load_text(path, buf.str());
    for (double v : dark)
        if (!std::isfinite(v)) throw DataError(path + ": dark spectrum contains NaN or inf");
    return dark;
}

}  // namespace pace
