// The TensorRT engine (Jetson, NVIDIA GPUs): the bundle's serialized engine, deserialized with
// nvinfer1's runtime and run with enqueueV3 on a CUDA stream. Built only with
// -DEDGERES_WITH_TENSORRT=ON, where TensorRT's and CUDA's headers exist.
// The engine must have been built on this GPU with this TensorRT version (the manifest's
// requirements say which). Frame input needs an engine built from edgeres's frame ONNX, whose
// input is uint8 NHWC: the same code feeds it, only the input size differs.
#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <fstream>
#include <iostream>
#include <iterator>

#include "edgeres/engine.hpp"

namespace edgeres {
namespace {

class Logger : public nvinfer1::ILogger {
    void log(Severity severity, const char* msg) noexcept override {
        if (severity <= Severity::kWARNING) std::cerr << "tensorrt: " << msg << "\n";
    }
};

void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) throw Error(std::string("CUDA ") + what + ": " + cudaGetErrorString(status));
}

class TensorRTEngine : public Engine {
public:
    TensorRTEngine(const Bundle& bundle, const InputMode& mode) : mode_(mode) {
        std::ifstream in(bundle.artifact_path(), std::ios::binary);
        std::vector<char> blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        runtime_.reset(nvinfer1::createInferRuntime(logger_));
        engine_.reset(runtime_->deserializeCudaEngine(blob.data(), blob.size()));
        if (!engine_)
            throw Error("TensorRT cannot deserialize " + bundle.artifact_path().string() +
                        ": it was built for another GPU or TensorRT version (see the manifest's requirements)");
        context_.reset(engine_->createExecutionContext());
        input_ = engine_->getIOTensorName(0);
        output_ = engine_->getIOTensorName(1);
        const int crop = bundle.preprocess.crop;
        const nvinfer1::Dims in_dims = mode.frame ? nvinfer1::Dims4{1, crop, crop, 3} : nvinfer1::Dims4{1, 3, crop, crop};
        if (!context_->setInputShape(input_.c_str(), in_dims)) throw Error("the engine does not take batch 1");
        in_bytes_ = static_cast<size_t>(crop) * crop * 3 * (mode.frame ? 1 : sizeof(float));
        const nvinfer1::Dims out = context_->getTensorShape(output_.c_str());
        out_count_ = 1;
        for (int i = 0; i < out.nbDims; ++i) out_count_ *= static_cast<size_t>(out.d[i]);
        check(cudaStreamCreate(&stream_), "stream");
        check(cudaMalloc(&d_in_, in_bytes_), "malloc");
        check(cudaMalloc(&d_out_, out_count_ * sizeof(float)), "malloc");
        context_->setTensorAddress(input_.c_str(), d_in_);
        context_->setTensorAddress(output_.c_str(), d_out_);
    }

    ~TensorRTEngine() override {
        cudaFree(d_in_);
        cudaFree(d_out_);
        cudaStreamDestroy(stream_);
    }

    std::vector<float> infer(const float* input) override { return run(input); }
    std::vector<float> infer_frame(const uint8_t* frame) override { return run(frame); }

    std::string describe() const override {
        return "tensorrt " + std::to_string(getInferLibVersion()) + ", enqueueV3 on one CUDA stream, " +
               (mode_.frame ? "uint8 frames" : "float32 input");
    }

private:
    std::vector<float> run(const void* host_input) {
        std::vector<float> logits(out_count_);
        check(cudaMemcpyAsync(d_in_, host_input, in_bytes_, cudaMemcpyHostToDevice, stream_), "copy in");
        if (!context_->enqueueV3(stream_)) throw Error("TensorRT enqueueV3 failed");
        check(cudaMemcpyAsync(logits.data(), d_out_, out_count_ * sizeof(float), cudaMemcpyDeviceToHost, stream_), "copy out");
        check(cudaStreamSynchronize(stream_), "synchronize");
        return logits;
    }

    InputMode mode_;
    Logger logger_;
    std::unique_ptr<nvinfer1::IRuntime> runtime_;
    std::unique_ptr<nvinfer1::ICudaEngine> engine_;
    std::unique_ptr<nvinfer1::IExecutionContext> context_;
    std::string input_, output_;
    size_t in_bytes_ = 0, out_count_ = 0;
    cudaStream_t stream_ = nullptr;
    void* d_in_ = nullptr;
    void* d_out_ = nullptr;
};

}  // namespace

std::unique_ptr<Engine> make_tensorrt_engine(const Bundle& bundle, const InputMode& mode) {
    return std::make_unique<TensorRTEngine>(bundle, mode);
}

}  // namespace edgeres
