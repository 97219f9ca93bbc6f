// The OpenVINO engine: the bundle's IR compiled as the edgeres Python runner compiles it (static
// batch 1, LATENCY hint, the inference precision recorded at build time). For frame input, OpenVINO's
// PrePostProcessor puts u8 -> f32, NHWC -> NCHW, colour order and mean/std into the compiled model.
#include <openvino/core/preprocess/pre_post_process.hpp>
#include <openvino/openvino.hpp>

#include <cstring>

#include "edgeres/engine.hpp"

namespace edgeres {
namespace {

class OpenVINOEngine : public Engine {
public:
    OpenVINOEngine(const Bundle& bundle, const InputMode& mode, int threads) : mode_(mode) {
        const auto& meta = bundle.artifact_metadata;
        const std::string xml = bundle.artifact_path().string();
        std::shared_ptr<ov::Model> model;
        try {
            model = core_.read_model(xml);
        } catch (const ov::Exception& e) {
            throw Error("OpenVINO cannot read IR " + xml + ": " + first_line(e.what()));
        }
        const Preprocess& p = bundle.preprocess;
        model->reshape(p.layout == "NCHW" ? ov::PartialShape{1, 3, p.crop, p.crop}
                                          : ov::PartialShape{1, p.crop, p.crop, 3});
        if (mode.frame) model = with_frame_input(model, p, mode.frame_order);
        ov::AnyMap config{{ov::hint::performance_mode.name(), ov::hint::PerformanceMode::LATENCY}};
        if (meta.contains("inference_precision_hint"))
            config[ov::hint::inference_precision.name()] = meta["inference_precision_hint"].get<std::string>();
        if (threads > 0) config[ov::inference_num_threads.name()] = threads;
        const std::string device = meta.value("device", "CPU");
        try {
            compiled_ = core_.compile_model(model, device, config);
        } catch (const ov::Exception& e) {
            throw Error("OpenVINO cannot compile the model for " + device + ": " + first_line(e.what()));
        }
        request_ = compiled_.create_infer_request();
        precision_ = compiled_.get_property(ov::hint::inference_precision).to_string();
        threads_ = compiled_.get_property(ov::inference_num_threads);
    }

    std::vector<float> infer(const float* input) override {
        if (mode_.frame) throw Error("this engine was opened for frame input");
        ov::Tensor in = request_.get_input_tensor();
        std::memcpy(in.data<float>(), input, in.get_byte_size());
        return run();
    }

    std::vector<float> infer_frame(const uint8_t* frame) override {
        if (!mode_.frame) throw Error("this engine was opened for float input");
        ov::Tensor in = request_.get_input_tensor();
        std::memcpy(in.data<uint8_t>(), frame, in.get_byte_size());
        return run();
    }

    std::string describe() const override {
        return std::string("openvino ") + ov::get_openvino_version().buildNumber + ", CPU, inference precision " + precision_ +
               ", " + std::to_string(threads_) + " threads, " +
               (mode_.frame ? "uint8 " + mode_.frame_order + " frames (preprocessing in the model)" : "float32 input");
    }

private:
    static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

    static std::shared_ptr<ov::Model> with_frame_input(std::shared_ptr<ov::Model> model, const Preprocess& p,
                                                       const std::string& frame_order) {
        using namespace ov::preprocess;
        PrePostProcessor ppp(model);
        auto& input = ppp.input();
        input.tensor().set_element_type(ov::element::u8).set_layout("NHWC").set_color_format(
            frame_order == "BGR" ? ColorFormat::BGR : ColorFormat::RGB);
        // the host's arithmetic in the host's order: x / 255, colour order, - mean, / std
        input.preprocess()
            .convert_element_type(ov::element::f32)
            .scale(255.0f)
            .convert_color(p.channel_order == "BGR" ? ColorFormat::BGR : ColorFormat::RGB)
            .mean(std::vector<float>(p.mean, p.mean + 3))
            .scale(std::vector<float>(p.std, p.std + 3));
        input.model().set_layout(ov::Layout(p.layout));
        return ppp.build();
    }

    std::vector<float> run() {
        request_.infer();
        const ov::Tensor out = request_.get_output_tensor();
        const float* data = out.data<float>();
        return std::vector<float>(data, data + out.get_size());
    }

    InputMode mode_;
    ov::Core core_;
    ov::CompiledModel compiled_;
    ov::InferRequest request_;
    std::string precision_;
    int threads_ = 0;
};

}  // namespace

std::unique_ptr<Engine> make_openvino_engine(const Bundle& bundle, const InputMode& mode, int threads) {
    return std::make_unique<OpenVINOEngine>(bundle, mode, threads);
}

}  // namespace edgeres
