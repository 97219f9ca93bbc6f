// An edgeres bundle on disk, opened and verified: what a C++ app needs to feed the model.
//
//     edgeres::Bundle bundle = edgeres::Bundle::open("resnet18-intel-cpu-int8");  // throws edgeres::Error
//     bundle.preprocess.crop, bundle.labels, bundle.artifact_path(), ...
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace edgeres {

// A problem the user can fix (a tampered bundle, an unreadable image...): one message, no trace.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The manifest's "input.preprocess": resize the shorter side, center-crop, /255, (x - mean) / std.
struct Preprocess {
    int resize = 256;
    int crop = 224;
    float mean[3] = {0.485f, 0.456f, 0.406f};
    float std[3] = {0.229f, 0.224f, 0.225f};
    std::string channel_order = "RGB";  // the order the model was trained on
    std::string layout = "NCHW";
    std::string interpolation = "bilinear";
};

struct Bundle {
    std::filesystem::path root;
    nlohmann::json manifest;
    nlohmann::json artifact_metadata;  // the artifact's sidecar (model.xml.json): how it was built
    Preprocess preprocess;
    std::vector<std::string> labels;  // empty when the bundle has none: class indices are printed
    std::string input_name;
    std::vector<long long> input_shape;  // batch dimension -1 when dynamic

    // Reads manifest.json, checks its seal (manifest_sha256) and every listed file's sha256,
    // and refuses anything that does not match, naming the file.
    static Bundle open(const std::filesystem::path& folder);

    std::string target() const { return manifest["target"]["name"].get<std::string>(); }
    std::string backend() const { return manifest["backend"]["name"].get<std::string>(); }
    std::string precision() const { return manifest["precision"].get<std::string>(); }
    std::filesystem::path artifact_path() const;
    // "bundle: ResNet-18, intel-cpu / openvino 2026.4.1 / int8", as python -m edgeres.run prints it
    std::string describe() const;
    std::string label(int index) const;
};

// The sha256 of a file, lowercase hex.
std::string sha256_file(const std::filesystem::path& path);
// The sha256 of Python's json.dumps(value, sort_keys=True, separators=(",", ":")): the manifest's seal.
std::string sha256_json(const nlohmann::json& value);
// That canonical text itself (exposed for tests).
std::string python_json(const nlohmann::json& value);

}  // namespace edgeres
