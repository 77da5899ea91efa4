// pace-preprocess: run a manifest's preprocessing list on spectra, for parity tests against
// the Python reference. Reads {"preprocessing": [...], "axis": [...], "spectra": [[...], ...]}
// (or {"manifest": DIR, ...} to take the list from a verified export) on stdin and writes
// {"results": [{"x": [...], "axis": [...]} or {"error": "..."}, ...]} with round-trip floats.
// Strict JSON both ways: a spectrum value given as null is read as NaN (a missing reading).
#include <iostream>
#include <iterator>
#include <string>

#include "pace/errors.hpp"
#include "pace/json.hpp"
#include "pace/manifest.hpp"
#include "pace/preprocess.hpp"

int main() {
    using namespace pace;
    try {
        const std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
        const Json doc = json::parse(text);
        Json steps;
        if (const Json* dir = json::find(doc, "manifest")) {
            steps = load_manifest(json::string(*dir, "manifest")).preprocessing;
        } else {
            steps = json::at(doc, "preprocessing");
        }
        const Pipeline pipeline = Pipeline::from_json(steps);
        Vec axis;
        for (const Json& v : json::array(json::at(doc, "axis"), "axis")) axis.push_back(json::number(v, "axis"));
        Json results = Json::array();
        for (const Json& row : json::array(json::at(doc, "spectra"), "spectra")) {
            Vec x, a = axis;
            for (const Json& v : json::array(row, "spectrum")) x.push_back(json::number_or_nan(v, "spectrum value"));
            try {
                pipeline.apply(x, a);
                results.push_back({{"x", x}, {"axis", a}});
            } catch (const Error& e) {
                results.push_back({{"error", e.what()}});
            }
        }
        std::cout << json::dump({{"results", results}}) << "\n";
        return 0;
    } catch (const Error& e) {
        std::cerr << "pace-preprocess: error: " << e.what() << "\n";
        return 2;
    }
}
