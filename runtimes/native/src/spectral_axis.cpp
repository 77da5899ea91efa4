#include "pace/spectral_axis.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "pace/errors.hpp"

namespace pace {

Vec wavelengths_from_coefficients(const Vec& c, size_t pixels) {
    if (c.empty()) throw ConfigError("wavelength coefficients must be finite numbers, got none");
    for (double v : c)
        if (!std::isfinite(v)) throw ConfigError("wavelength coefficients must be finite numbers");
    if (pixels < 2) throw ConfigError("need at least 2 pixels, got " + std::to_string(pixels));
    Vec out(pixels);
    for (size_t p = 0; p < pixels; ++p) {
        const double x = double(p);
        double acc = c.back() + x * 0;
        for (size_t i = 2; i <= c.size(); ++i) acc = c[c.size() - i] + acc * x;
        out[p] = acc;
    }
    return out;
}

Vec raman_shift(const Vec& wl, double laser_nm) {
    if (!std::isfinite(laser_nm) || laser_nm <= 0) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%g", laser_nm);
        throw ConfigError(std::string("laser wavelength must be a positive number of nm, got ") + buf);
    }
    Vec out(wl.size());
    for (size_t i = 0; i < wl.size(); ++i) {
        if (!std::isfinite(wl[i]) || wl[i] <= 0) throw ConfigError("wavelengths must be finite and positive");
        out[i] = 1e7 / laser_nm - 1e7 / wl[i];
    }
    return out;
}

SpectralAxis::SpectralAxis(Vec wavelengths, std::optional<double> laser_nm)
    : wavelengths_(std::move(wavelengths)), laser_nm_(laser_nm) {
    const Vec& wl = wavelengths_;
    if (wl.size() < 2) throw ConfigError("need a wavelength axis of at least 2 pixels");
    for (double v : wl)
        if (!std::isfinite(v) || v <= 0) throw ConfigError("wavelengths must be finite and positive");
    const bool up = wl[1] > wl[0];
    for (size_t j = 0; j + 1 < wl.size(); ++j) {
        if (up ? !(wl[j + 1] > wl[j]) : !(wl[j + 1] < wl[j])) {
            char buf[160];
            std::snprintf(buf, sizeof buf,
                          "wavelength axis is not strictly monotonic at pixel %zu (%g then %g nm): "
                          "check the calibration coefficients",
                          j + 1, wl[j], wl[j + 1]);
            throw ConfigError(buf);
        }
    }
    if (laser_nm_) raman_shift({wl[0]}, *laser_nm_);  // validates laser_nm
}

Vec SpectralAxis::axis() const {
    return laser_nm_ ? raman_shift(wavelengths_, *laser_nm_) : wavelengths_;
}

Vec SpectralAxis::sorted_axis() const {
    Vec a = axis();
    if (reversed()) std::reverse(a.begin(), a.end());
    return a;
}

std::pair<Vec, Vec> SpectralAxis::apply(const Vec& counts, const Vec& dark) const {
    if (counts.size() != pixels()) {
        throw DataError("spectrum has " + std::to_string(counts.size()) + " pixels, the axis has " +
                        std::to_string(pixels()));
    }
    if (!dark.empty() && dark.size() != counts.size()) {
        throw DataError("dark frame has " + std::to_string(dark.size()) + " pixels, spectrum has " +
                        std::to_string(counts.size()));
    }
    Vec intensity = counts;
    if (!dark.empty())
        for (size_t i = 0; i < intensity.size(); ++i) intensity[i] = counts[i] - dark[i];
    if (reversed()) std::reverse(intensity.begin(), intensity.end());
    return {std::move(intensity), sorted_axis()};
}

Averager::Averager(size_t n) : n_(n) {
    if (n < 1) throw ConfigError("scans to average must be at least 1, got " + std::to_string(n));
}

std::optional<Vec> Averager::add(const Vec& counts) {
    if (sum_.empty()) {
        sum_ = counts;
    } else if (sum_.size() != counts.size()) {
        throw DataError("cannot average a " + std::to_string(counts.size()) + "-pixel frame with " +
                        std::to_string(sum_.size()) + "-pixel ones");
    } else {
        for (size_t i = 0; i < sum_.size(); ++i) sum_[i] += counts[i];
    }
    if (++count_ < n_) return std::nullopt;
    Vec mean = sum_;
    for (double& v : mean) v /= double(n_);
    reset();
    return mean;
}

void Averager::reset() {
    sum_.clear();
    count_ = 0;
}

}  // namespace pace
