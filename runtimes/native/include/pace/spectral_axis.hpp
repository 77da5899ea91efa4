// Pixels to the model's axis (pace_edge.streaming.spectral_axis): wavelength polynomial,
// Raman shift from the laser line, dark subtraction, scans-to-average.
#pragma once

#include <optional>
#include <utility>

#include "pace/numeric.hpp"

namespace pace {

// λ(p) = Σ cᵢ pⁱ for p = 0 .. pixels-1 (numpy polyval's Horner order).
Vec wavelengths_from_coefficients(const Vec& coefficients, size_t pixels);
// 1e7/laser − 1e7/λ (cm⁻¹).
Vec raman_shift(const Vec& wavelength_nm, double laser_nm);

// A device's pixel axis: wavelengths (nm), optionally as Raman shift from laser_nm.
class SpectralAxis {
public:
    SpectralAxis(Vec wavelengths, std::optional<double> laser_nm);
    size_t pixels() const { return wavelengths_.size(); }
    bool reversed() const { return wavelengths_.back() < wavelengths_.front(); }
    Vec axis() const;         // per pixel, device order
    Vec sorted_axis() const;  // increasing
    // (intensity, axis) sorted increasing, dark (same length, or empty for none) subtracted.
    std::pair<Vec, Vec> apply(const Vec& counts, const Vec& dark = {}) const;

private:
    Vec wavelengths_;
    std::optional<double> laser_nm_;
};

// Every n-th add() returns the mean of the last n frames (sum / n), else nullopt.
class Averager {
public:
    explicit Averager(size_t n);
    std::optional<Vec> add(const Vec& counts);
    void reset();
    size_t count() const { return count_; }
    size_t n() const { return n_; }

private:
    size_t n_;
    Vec sum_;
    size_t count_ = 0;
};

}  // namespace pace
