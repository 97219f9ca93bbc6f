// Which engine runs a bundle: the one its manifest names, if this program was built with it.
#include "edgeres/engine.hpp"

namespace edgeres {

std::unique_ptr<Engine> make_openvino_engine(const Bundle& bundle, const InputMode& mode, int threads);
std::unique_ptr<Engine> make_tensorrt_engine(const Bundle& bundle, const InputMode& mode);

std::unique_ptr<Engine> open_engine(const Bundle& bundle, const InputMode& mode, int threads) {
    const std::string backend = bundle.backend();
    std::string built;
#ifdef EDGERES_WITH_OPENVINO
    if (backend == "openvino") return make_openvino_engine(bundle, mode, threads);
    built += " openvino";
#endif
#ifdef EDGERES_WITH_TENSORRT
    if (backend == "tensorrt") return make_tensorrt_engine(bundle, mode);
    built += " tensorrt";
#endif
    (void)threads;
    (void)mode;
    throw Error("bundle " + bundle.root.string() + " runs on " + backend + "; this program was built with:" +
                (built.empty() ? std::string(" no engine") : built) +
                " (cmake -DEDGERES_WITH_OPENVINO=ON / -DEDGERES_WITH_TENSORRT=ON; ONNX Runtime bundles run from Python)");
}

}  // namespace edgeres
