// Opening a bundle: the same refusals as edgeres.bundle.manifest (check_manifest, verify_files).
#include "edgeres/bundle.hpp"

#include <openssl/evp.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

namespace fs = std::filesystem;
using nlohmann::json;

namespace edgeres {
namespace {

const char* MANIFEST = "manifest.json";

std::string hex(const unsigned char* digest, unsigned int n) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < n; ++i) {
        out += digits[digest[i] >> 4];
        out += digits[digest[i] & 15];
    }
    return out;
}

struct Sha256 {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
    Sha256() { EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr); }
    void update(const void* data, size_t n) { EVP_DigestUpdate(ctx.get(), data, n); }
    std::string hexdigest() {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        EVP_DigestFinal_ex(ctx.get(), digest, &n);
        return hex(digest, n);
    }
};

// Python's float repr: shortest round-trip digits, fixed notation for 1e-4 <= |v| < 1e16.
void python_float(std::string& out, double v) {
    char buf[64];
    auto end = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific).ptr;
    std::string s(buf, end);  // [-]d[.ddd]e(+|-)XX
    if (s[0] == '-') {
        out += '-';
        s.erase(0, 1);
    }
    auto e = s.find('e');
    int exp10 = std::stoi(s.substr(e + 1));
    std::string digits = s.substr(0, e);
    if (digits.size() > 1) digits.erase(1, 1);
    int point = exp10 + 1;  // the decimal point sits after this many digits
    if (point > -4 && point <= 16) {
        if (point <= 0) {
            out += "0." + std::string(-point, '0') + digits;
        } else if (point >= static_cast<int>(digits.size())) {
            out += digits + std::string(point - digits.size(), '0') + ".0";
        } else {
            out += digits.substr(0, point) + "." + digits.substr(point);
        }
    } else {
        out += digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        char tail[16];
        std::snprintf(tail, sizeof tail, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
        out += tail;
    }
}

// nlohmann's own number formatting differs from Python's in about 1 float in 1,000, so the
// canonical text is assembled here; strings, integers and literals use nlohmann's ASCII dump,
// which is Python's ensure_ascii form. Objects iterate in sorted key order.
void python_dump(std::string& out, const json& j) {
    if (j.is_object()) {
        out += '{';
        bool first = true;
        for (auto it = j.begin(); it != j.end(); ++it) {
            if (!first) out += ',';
            first = false;
            out += json(it.key()).dump(-1, ' ', true) + ":";
            python_dump(out, it.value());
        }
        out += '}';
    } else if (j.is_array()) {
        out += '[';
        for (size_t i = 0; i < j.size(); ++i) {
            if (i) out += ',';
            python_dump(out, j[i]);
        }
        out += ']';
    } else if (j.is_number_float()) {
        python_float(out, j.get<double>());
    } else {
        out += j.dump(-1, ' ', true);
    }
}

bool safe_name(const std::string& name) {
    if (name.empty() || name.find('\\') != std::string::npos || name.find('\0') != std::string::npos) return false;
    fs::path p(name);
    if (p.is_absolute()) return false;
    for (const auto& part : p)
        if (part == "..") return false;
    return true;
}

json read_json(const fs::path& path, const std::string& where) {
    std::ifstream in(path);
    if (!in) throw Error(where + ": cannot read " + path.filename().string());
    try {
        return json::parse(in);
    } catch (const json::exception&) {
        throw Error(where + ": " + path.filename().string() + " is not valid JSON; the bundle is damaged");
    }
}

void check_manifest(const json& m, const std::string& where) {
    if (!m.is_object() || m.value("schema", "") != "edgeres.bundle")
        throw Error(where + " is not an edgeres bundle manifest");
    if (!m.contains("schema_version") || !m["schema_version"].is_number_integer() || m["schema_version"].get<int>() > 1)
        throw Error(where + ": bundle schema version is newer than this program understands (1)");
    for (const char* key : {"target", "backend", "precision", "input", "output", "artifact", "files", "manifest_sha256"})
        if (!m.contains(key))
            throw Error(where + ": the bundle manifest has no '" + key + "'; it is damaged, write it again with edgeres");
    json body = m;
    body.erase("manifest_sha256");
    if (sha256_json(body) != m["manifest_sha256"])
        throw Error(where + ": manifest.json was modified after packaging (its manifest_sha256 does not match its "
                            "content); refusing to load it. Re-copy the bundle or rebuild it");
    const json& files = m["files"];
    if (!files.is_object()) throw Error(where + ": manifest.json lists no files");
    for (auto it = files.begin(); it != files.end(); ++it)
        if (!safe_name(it.key()) || !it.value().is_object())
            throw Error(where + ": manifest.json lists files with unsafe or malformed names; refusing it");
    const json& art = m["artifact"];
    std::vector<std::string> needed = {art.value("path", ""), art.value("metadata", "")};
    for (const auto& f : art.value("files", json::array())) needed.push_back(f.get<std::string>());
    if (m.value("labels_file", json()).is_string()) needed.push_back(m["labels_file"].get<std::string>());
    for (const auto& name : needed)
        if (!files.contains(name))
            throw Error(where + ": manifest.json has no checksum for '" + name + "', which the bundle needs; "
                                "refusing an unverifiable bundle");
}

void verify_files(const fs::path& root, const json& files, const std::string& where) {
    const fs::path real_root = fs::canonical(root);
    for (auto it = files.begin(); it != files.end(); ++it) {
        const fs::path path = root / it.key();
        if (!fs::is_regular_file(path))
            throw Error(where + ": file '" + it.key() + "' listed in manifest.json is missing; re-copy the whole bundle");
        const fs::path real = fs::canonical(path);
        auto rel = real.lexically_relative(real_root);
        if (rel.empty() || *rel.begin() == "..")
            throw Error(where + ": file '" + it.key() + "' is a link that leads outside the bundle; refusing it");
        if (sha256_file(path) != it.value().value("sha256", ""))
            throw Error(where + ": file '" + it.key() + "' was modified after packaging (its sha256 does not match "
                                "manifest.json); refusing to load it. Re-copy the bundle or rebuild it");
    }
}

Preprocess read_preprocess(const json& p) {
    Preprocess spec;
    spec.resize = p.value("resize", spec.resize);
    spec.crop = p.value("crop", spec.crop);
    for (int c = 0; c < 3; ++c) {
        spec.mean[c] = p["mean"].at(c).get<float>();
        spec.std[c] = p["std"].at(c).get<float>();
    }
    spec.channel_order = p.value("channel_order", spec.channel_order);
    spec.layout = p.value("layout", spec.layout);
    spec.interpolation = p.value("interpolation", spec.interpolation);
    return spec;
}

}  // namespace

std::string sha256_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot read " + path.string());
    Sha256 h;
    std::vector<char> buf(1 << 20);
    while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        h.update(buf.data(), static_cast<size_t>(in.gcount()));
    }
    return h.hexdigest();
}

std::string python_json(const json& value) {
    std::string out;
    python_dump(out, value);
    return out;
}

std::string sha256_json(const json& value) {
    const std::string text = python_json(value);
    Sha256 h;
    h.update(text.data(), text.size());
    return h.hexdigest();
}

Bundle Bundle::open(const fs::path& folder) {
    const std::string where = "bundle " + folder.string();
    if (!fs::is_directory(folder)) {
        if (fs::exists(folder))
            throw Error(where + " is not a folder (extract a .tar.gz bundle first: tar xzf BUNDLE.tar.gz)");
        throw Error(where + " does not exist");
    }
    if (!fs::is_regular_file(folder / MANIFEST)) throw Error(where + " is not an edgeres bundle: no manifest.json");
    Bundle b;
    b.root = folder;
    b.manifest = read_json(folder / MANIFEST, where);
    check_manifest(b.manifest, where);
    verify_files(folder, b.manifest["files"], where);
    const json& input = b.manifest["input"];
    b.preprocess = read_preprocess(input["preprocess"]);
    b.input_name = input.value("name", "input");
    for (const auto& d : input.value("shape", json::array()))
        b.input_shape.push_back(d.is_number_integer() ? d.get<long long>() : -1);
    if (b.manifest.value("labels", json()).is_array())
        for (const auto& l : b.manifest["labels"]) b.labels.push_back(l.get<std::string>());
    b.artifact_metadata = read_json(folder / b.manifest["artifact"]["metadata"].get<std::string>(), where);
    return b;
}

fs::path Bundle::artifact_path() const { return root / manifest["artifact"]["path"].get<std::string>(); }

std::string Bundle::describe() const {
    const json model = manifest.value("model", json::object());
    const json depth = model.value("depth", json("?"));
    const json version = manifest["backend"].value("version", json());
    std::ostringstream s;
    s << fs::path(root).lexically_normal().filename().string();
    if (s.str().empty()) s << fs::absolute(root).parent_path().filename().string();
    s << ": ResNet-" << (depth.is_string() ? depth.get<std::string>() : depth.dump()) << ", " << target() << " / "
      << backend() << " " << (version.is_string() ? version.get<std::string>() + " " : std::string()) << "/ "
      << precision();
    return s.str();
}

std::string Bundle::label(int index) const {
    return index >= 0 && index < static_cast<int>(labels.size()) ? labels[index] : std::to_string(index);
}

}  // namespace edgeres
