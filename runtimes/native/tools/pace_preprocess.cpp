// pace-preprocess: run a manifest's preprocessing list on spectra, for parity tests against
// the Python reference. Reads {"preprocessing": [...], "axis": [...], "spectra": [[...], ...]}
// (or {"manifest": DIR, ...} to take the list from a verified export) on stdin and writes
// {"results": [{"x": [...], "axis": [...]} or {"error": "..."}, ...]} with round-trip floats.
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
        const json::Value doc = json::parse(text);
        json::Value steps;
        if (const json::Value* dir = doc.find("manifest")) {
            steps = load_manifest(dir->as_string("manifest")).preprocessing;
        } else {
            steps = doc.at("preprocessing");
        }
        const Pipeline pipeline = Pipeline::from_json(steps);
        Vec axis;
        for (const auto& v : doc.at("axis").as_array("axis")) axis.push_back(v.as_number());
        json::Array results;
        for (const auto& row : doc.at("spectra").as_array("spectra")) {
            Vec x, a = axis;
            for (const auto& v : row.as_array("spectrum")) x.push_back(v.as_number());
            json::Object result;
            try {
                pipeline.apply(x, a);
                json::Array xs, as;
                for (double v : x) xs.push_back(json::Value::number(v, false));
                for (double v : a) as.push_back(json::Value::number(v, false));
                result.emplace_back("x", json::Value::array(std::move(xs)));
                result.emplace_back("axis", json::Value::array(std::move(as)));
            } catch (const Error& e) {
                result.emplace_back("error", json::Value::string(e.what()));
            }
            results.push_back(json::Value::object(std::move(result)));
        }
        json::Object out;
        out.emplace_back("results", json::Value::array(std::move(results)));
        std::cout << json::Value::object(std::move(out)).dump() << "\n";
        return 0;
    } catch (const Error& e) {
        std::cerr << "pace-preprocess: error: " << e.what() << "\n";
        return 2;
    }
}
