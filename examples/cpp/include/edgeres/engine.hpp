// One interface over the runtimes a bundle can name. The OpenVINO engine is always built; the
// TensorRT engine only where TensorRT's headers exist (CMake option EDGERES_WITH_TENSORRT).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "edgeres/bundle.hpp"
#include "edgeres/image.hpp"

namespace edgeres {

// What the engine is fed: the host path (float32, preprocessed on the host), or camera frames
// (uint8 HWC, RGB or BGR, already cropped to the model's size) with cast, layout, colour order
// and mean/std inside the engine.
struct InputMode {
    bool frame = false;
    std::string frame_order = "RGB";  // the camera's channel order, for frame input
};

class Engine {
public:
    virtual ~Engine() = default;
    // One image (batch 1): float32 in the bundle's layout, logits out.
    virtual std::vector<float> infer(const float* input) = 0;
    // One frame (batch 1): uint8 HWC crop x crop x 3, logits out. Needs InputMode::frame.
    virtual std::vector<float> infer_frame(const uint8_t* frame) = 0;
    virtual std::string describe() const = 0;
};

std::unique_ptr<Engine> open_engine(const Bundle& bundle, const InputMode& mode, int threads);

}  // namespace edgeres
