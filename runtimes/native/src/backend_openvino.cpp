// OpenVINO backend: the export's IR compiled with the manifest's runtime settings
// (runtime.openvino: device, compile config). FP32 IR always gets INFERENCE_PRECISION_HINT=f32
// (CPUs with bf16 support otherwise compute in bf16); --threads sets INFERENCE_NUM_THREADS.
#include <openvino/openvino.hpp>

#include <cstring>
#include <sstream>

#include "pace/errors.hpp"
#include "pace/inference.hpp"

namespace pace {

namespace {

std::string stem(const std::string& path) {
    const size_t slash = path.rfind('/');
    const size_t dot = path.rfind('.');
    return dot == std::string::npos || (slash != std::string::npos && dot < slash) ? path
                                                                                : path.substr(0, dot);
}

std::string join(const std::string& dir, const std::string& name) {
    return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

// A manifest config value as the string OpenVINO parses ("f32", "4", "YES").
std::string config_value(const std::string& key, const Json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "YES" : "NO";
    if (v.is_number()) return json::dump(v);
    throw BundleError("manifest runtime.openvino.config." + key + " is not a string or number");
}

class OpenVINOBackend : public Backend {
public:
    OpenVINOBackend(const Manifest& m, const Artefact& xml_artefact, int threads)
        : Backend("openvino", xml_artefact.precision, m.input_length, m.num_classes) {
        const std::string xml = join(m.directory, xml_artefact.path);
        std::string weights;  // the openvino-bin of the same stem, else OpenVINO's default
        for (const Artefact& a : m.artefacts)
            if (a.kind == "openvino-bin" && stem(a.path) == stem(xml_artefact.path))
                weights = join(m.directory, a.path);
        device_ = "CPU";
        ov::AnyMap config;
        if (const Json* rt = json::find(m.runtime, "openvino")) {
            if (const Json* d = json::find(*rt, "device"); d && d->is_string()) device_ = d->get<std::string>();
            if (const Json* c = json::find(*rt, "config"); c && c->is_object())
                for (const auto& [key, value] : c->items()) config[key] = config_value(key, value);
        }
        if (precision() == "fp32" && !config.count("INFERENCE_PRECISION_HINT"))
            config["INFERENCE_PRECISION_HINT"] = "f32";
        if (threads > 0) config["INFERENCE_NUM_THREADS"] = threads;
        for (const auto& [k, v] : config) config_text_ += (config_text_.empty() ? "" : ", ") + k + "=" + v.as<std::string>();
        try {
            std::shared_ptr<ov::Model> model = core_.read_model(xml, weights);
            compiled_ = core_.compile_model(model, device_, config);
            device_name_ = core_.get_property(device_, ov::device::full_name);
        } catch (const ov::Exception& e) {
            throw BundleError(xml + ": OpenVINO cannot load it on " + device_ + " (" + first_line(e.what()) + ")");
        }
        find_ports(m, xml);
        request_ = compiled_.create_infer_request();
    }

    std::string describe() const override {
        std::ostringstream out;
        auto& compiled = const_cast<ov::CompiledModel&>(compiled_);
        out << "openvino " << ov::get_openvino_version().buildNumber << " on " << device_ << " ("
            << device_name_ << "), threads " << compiled.get_property(ov::inference_num_threads)
            << ", inference precision " << compiled.get_property(ov::hint::inference_precision)
            << (config_text_.empty() ? "" : ", config " + config_text_);
        return out.str();
    }

protected:
    std::vector<float> run(const float* inputs, size_t rows) override {
        ov::Tensor tensor(ov::element::f32, ov::Shape{rows, input_length()}, const_cast<float*>(inputs));
        request_.set_tensor(input_, tensor);
        request_.infer();
        const ov::Tensor out = request_.get_tensor(output_);
        if (out.get_element_type() != ov::element::f32 || out.get_shape() != ov::Shape{rows, classes()}) {
            std::ostringstream what;
            what << "openvino: model returned " << out.get_element_type() << " " << out.get_shape()
                 << ", expected f32 [" << rows << "," << classes() << "]";
            throw InferenceError(what.str());
        }
        const float* p = out.data<const float>();
        if (feature_dim_ > 0) {
            const ov::Tensor f = request_.get_tensor(features_);
            if (f.get_element_type() != ov::element::f32 || f.get_shape() != ov::Shape{rows, feature_dim_})
                throw InferenceError("openvino: the features output has an unexpected type or shape");
            const float* q = f.data<const float>();
            batch_features_.assign(q, q + rows * feature_dim_);
        }
        return std::vector<float>(p, p + rows * classes());
    }

public:
    void request_features(const std::string& name, size_t dim) override {
        for (const auto& port : compiled_.outputs()) {
            if (port.get_names().count(name)) {
                features_ = port;
                feature_dim_ = dim;
                return;
            }
        }
        throw BundleError("openvino: the model has no output '" + name +
                          "', which the manifest's \"unknown\" detector needs; re-export it");
    }

private:
    static std::string first_line(const char* text) {
        std::string s(text);
        const size_t nl = s.find('\n');
        return nl == std::string::npos ? s : s.substr(0, nl);
    }

    void find_ports(const Manifest& m, const std::string& xml) {
        bool found_in = false, found_out = false;
        std::string names;
        for (const auto& port : compiled_.inputs()) {
            for (const auto& n : port.get_names()) names += " " + n;
            if (port.get_names().count(m.input_name)) input_ = port, found_in = true;
        }
        for (const auto& port : compiled_.outputs()) {
            for (const auto& n : port.get_names()) names += " " + n;
            if (port.get_names().count(m.output_name)) output_ = port, found_out = true;
        }
        if (!found_in || !found_out) {
            throw BundleError(xml + ": model I/O (" + names + " ) does not have input '" + m.input_name +
                              "' and output '" + m.output_name + "'");
        }
        const ov::PartialShape shape = input_.get_partial_shape();
        if (shape.rank().is_dynamic() || shape.rank().get_length() != 2 ||
            (shape[1].is_static() && size_t(shape[1].get_length()) != m.input_length)) {
            throw BundleError(xml + ": input shape " + shape.to_string() + " does not take spectra of " +
                              std::to_string(m.input_length) + " points");
        }
        if (shape[0].is_static()) {
            max_batch_ = size_t(shape[0].get_length());
            min_batch_ = *max_batch_;
        }
    }

    ov::Core core_;
    ov::CompiledModel compiled_;
    ov::InferRequest request_;
    ov::Output<const ov::Node> input_, output_, features_;
    std::string device_, device_name_, config_text_;
};

}  // namespace

std::unique_ptr<Backend> make_openvino_backend(const Manifest& m, const Artefact& xml, int threads) {
    return std::make_unique<OpenVINOBackend>(m, xml, threads);
}

}  // namespace pace
