// edgeres_run: classify images with an edgeres bundle from C++, as `python -m edgeres.run` does.
//
//   edgeres_run BUNDLE IMAGE [IMAGE...] [--topk 5] [--frame RGB|BGR] [--threads N] [--bench N]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "edgeres/bundle.hpp"
#include "edgeres/engine.hpp"
#include "edgeres/image.hpp"

namespace {

struct Args {
    std::string bundle;
    std::vector<std::string> images;
    int topk = 5;
    int bench = 0;
    int threads = 0;
    bool json = false;
    edgeres::InputMode mode;
};

const char* USAGE =
    "usage: edgeres_run BUNDLE IMAGE [IMAGE...] [--topk K] [--frame RGB|BGR] [--threads N] [--bench N] [--json]\n"
    "  BUNDLE       an edgeres bundle folder (extract a .tar.gz first)\n"
    "  --topk K     classes printed per image (default 5)\n"
    "  --frame RGB  feed uint8 HWC frames in this channel order; cast, layout, colour and mean/std run\n"
    "               inside the engine (resize and crop stay on the host)\n"
    "  --threads N  inference threads (default: what the bundle was built with, else all cores)\n"
    "  --bench N    after classifying, time N runs on the first image: engine only, and end to end\n"
    "               (uint8 frame in, top-k out) with preprocessing on the host and fused into the engine\n"
    "  --json       print the predictions as JSON (as python -m edgeres.run --json)\n";

[[noreturn]] void usage_error(const std::string& message) {
    std::cerr << USAGE << "edgeres_run: error: " << message << "\n";
    std::exit(2);
}

int positive(const std::string& flag, const char* value) {
    char* end = nullptr;
    long v = std::strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || v < 1 || v > 1000000) usage_error(flag + " needs a positive integer, got '" + value + "'");
    return static_cast<int>(v);
}

Args parse(int argc, char** argv) {
    Args a;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) usage_error(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "-h" || arg == "--help") {
            std::cout << USAGE;
            std::exit(0);
        } else if (arg == "--topk") {
            a.topk = positive(arg, value());
        } else if (arg == "--bench") {
            a.bench = positive(arg, value());
        } else if (arg == "--threads") {
            a.threads = positive(arg, value());
        } else if (arg == "--json") {
            a.json = true;
        } else if (arg == "--frame") {
            a.mode.frame = true;
            a.mode.frame_order = value();
            if (a.mode.frame_order != "RGB" && a.mode.frame_order != "BGR") usage_error("--frame takes RGB or BGR");
        } else if (arg.size() > 1 && arg[0] == '-') {
            usage_error("unknown option " + arg);
        } else {
            positional.push_back(arg);
        }
    }
    if (positional.size() < 2) usage_error("give a bundle and at least one image");
    a.bundle = positional[0];
    a.images.assign(positional.begin() + 1, positional.end());
    return a;
}

// softmax in double precision, then float, as edgeres.bundle.runtime.softmax
std::vector<float> softmax(const std::vector<float>& logits) {
    const double peak = *std::max_element(logits.begin(), logits.end());
    std::vector<double> e(logits.size());
    double sum = 0.0;
    for (size_t i = 0; i < logits.size(); ++i) sum += e[i] = std::exp(static_cast<double>(logits[i]) - peak);
    std::vector<float> p(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) p[i] = static_cast<float>(e[i] / sum);
    return p;
}

std::vector<int> top_indices(const std::vector<float>& p, int k) {
    std::vector<int> order(p.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    order.resize(std::min<size_t>(k, order.size()));
    return order;
}

std::vector<float> classify(edgeres::Engine& engine, const edgeres::Bundle& bundle, const edgeres::Frame& crop,
                            std::vector<float>& buffer, const edgeres::InputMode& mode) {
    if (mode.frame) return engine.infer_frame(crop.pixels.data());
    edgeres::normalize(crop, bundle.preprocess, buffer.data());
    return engine.infer(buffer.data());
}

nlohmann::json top_json(const edgeres::Bundle& bundle, const std::string& image, const std::vector<float>& probs,
                        int k) {
    nlohmann::json top = nlohmann::json::array();
    for (int i : top_indices(probs, k))
        top.push_back({{"index", i}, {"label", bundle.label(i)}, {"probability", static_cast<double>(probs[i])}});
    return {{"image", image}, {"top", top}};
}

void print_top(const edgeres::Bundle& bundle, const std::string& image, const std::vector<float>& probs, int k) {
    const std::vector<int> top = top_indices(probs, k);
    size_t width = 0;
    for (int i : top) width = std::max(width, bundle.label(i).size());
    std::printf("%s\n", image.c_str());
    for (size_t r = 0; r < top.size(); ++r)
        std::printf("  %2zu. %-*s  %6.2f%%\n", r + 1, static_cast<int>(width), bundle.label(top[r]).c_str(),
                    100.0 * probs[top[r]]);
}

double percentile(std::vector<double> t, double q) {  // numpy's default (linear interpolation)
    std::sort(t.begin(), t.end());
    const double pos = q / 100.0 * (t.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, t.size() - 1);
    return t[lo] + (t[hi] - t[lo]) * (pos - lo);
}

struct Timed {
    std::string what;
    std::function<void()> run;
    std::vector<double> ms;
};

// Interleaved rounds, the order rotating every round, so a noisy neighbour hits every case alike.
void time_interleaved(std::vector<Timed>& cases, int n) {
    for (auto& c : cases)
        for (int i = 0; i < 10; ++i) c.run();  // warm-up, as edgeres bench
    const int rounds = std::min(n, 10);
    for (int r = 0; r < rounds; ++r) {
        const int per_round = n / rounds + (r < n % rounds ? 1 : 0);
        for (size_t k = 0; k < cases.size(); ++k) {
            Timed& c = cases[(k + r) % cases.size()];
            for (int i = 0; i < per_round; ++i) {
                const auto t0 = std::chrono::steady_clock::now();
                c.run();
                c.ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
            }
        }
    }
}

// Engine only, end to end with host preprocessing, end to end with it fused into the engine.
void bench(const edgeres::Bundle& bundle, const edgeres::Frame& crop, int threads, const Args& a) {
    auto host = edgeres::open_engine(bundle, edgeres::InputMode{}, threads);
    auto fused = edgeres::open_engine(bundle, edgeres::InputMode{true, "RGB"}, threads);
    std::vector<float> buffer(static_cast<size_t>(crop.width) * crop.height * 3);
    edgeres::normalize(crop, bundle.preprocess, buffer.data());
    std::vector<float> scratch(buffer.size());
    std::vector<Timed> cases = {
        {"engine only (float32 in, logits out)", [&] { host->infer(buffer.data()); }, {}},
        {"end to end, host (uint8 frame in, top-k out)", [&] {
             edgeres::normalize(crop, bundle.preprocess, scratch.data());
             top_indices(softmax(host->infer(scratch.data())), a.topk);
         }, {}},
        {"end to end, fused (uint8 frame in, top-k out)", [&] {
             top_indices(softmax(fused->infer_frame(crop.pixels.data())), a.topk);
         }, {}},
    };
    time_interleaved(cases, a.bench);
    std::printf("\n%-46s %5s %8s %8s %8s %8s %8s %8s\n", "timed", "runs", "mean ms", "p50", "p90", "p99", "min", "max");
    for (const auto& r : cases) {
        const double mean = std::accumulate(r.ms.begin(), r.ms.end(), 0.0) / r.ms.size();
        std::printf("%-46s %5zu %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f\n", r.what.c_str(), r.ms.size(), mean,
                    percentile(r.ms, 50), percentile(r.ms, 90), percentile(r.ms, 99),
                    *std::min_element(r.ms.begin(), r.ms.end()), *std::max_element(r.ms.begin(), r.ms.end()));
    }
    std::printf("batch 1, after 10 warm-up runs, interleaved in rounds, host wall clock; decode, resize and crop "
                "(host, once) not timed\nengine: %s\nfused: %s\n", host->describe().c_str(), fused->describe().c_str());
}

}  // namespace

int main(int argc, char** argv) {
    const Args a = parse(argc, argv);
    try {
        const edgeres::Bundle bundle = edgeres::Bundle::open(a.bundle);
        int threads = a.threads;
        if (!threads && bundle.artifact_metadata.contains("runtime_options"))
            threads = bundle.artifact_metadata["runtime_options"].value("threads", 0);
        auto engine = edgeres::open_engine(bundle, a.mode, threads);
        if (!a.json) std::printf("%s\n", bundle.describe().c_str());
        nlohmann::json results = nlohmann::json::array();
        std::vector<float> buffer(static_cast<size_t>(bundle.preprocess.crop) * bundle.preprocess.crop * 3);
        edgeres::Frame first;
        for (const auto& image : a.images) {
            edgeres::Frame crop = edgeres::resize_and_crop(edgeres::decode_image(image), bundle.preprocess);
            if (a.mode.frame && a.mode.frame_order == "BGR") edgeres::swap_red_blue(crop);  // as a BGR camera gives it
            if (first.pixels.empty()) first = crop;
            const std::vector<float> probs = softmax(classify(*engine, bundle, crop, buffer, a.mode));
            if (a.json)
                results.push_back(top_json(bundle, image, probs, a.topk));
            else
                print_top(bundle, image, probs, a.topk);
        }
        if (a.json)
            std::printf("%s\n", nlohmann::json({{"bundle", a.bundle}, {"target", bundle.target()}, {"backend", bundle.backend()},
                                                 {"precision", bundle.precision()}, {"engine", engine->describe()},
                                                 {"results", results}}).dump(2).c_str());
        if (a.bench && !a.json) {
            if (a.mode.frame && a.mode.frame_order == "BGR") edgeres::swap_red_blue(first);
            engine.reset();  // bench opens its own two engines
            bench(bundle, first, threads, a);
        }
    } catch (const edgeres::Error& e) {
        std::fflush(stdout);
        std::cerr << "edgeres_run: error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
