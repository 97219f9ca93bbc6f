// Decoding and the host side of preprocessing, reproducing edgeres.data.preprocess (Pillow) exactly:
// same decoder (libjpeg, libpng), same antialiased resampling arithmetic, same crop rounding.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "edgeres/bundle.hpp"

namespace edgeres {

// 8-bit interleaved RGB (or BGR), rows top to bottom: a camera frame.
struct Frame {
    int width = 0;
    int height = 0;
    std::vector<uint8_t> pixels;  // height * width * 3
};

// A JPEG or PNG as RGB; alpha is composited on black, grey is replicated (as edgeres's to_rgb).
Frame decode_image(const std::filesystem::path& path);

// Resize the shorter side to spec.resize and center-crop spec.crop x spec.crop: what stays on the
// host in both the host and the fused path (uint8 in, uint8 out).
Frame resize_and_crop(const Frame& image, const Preprocess& spec);

// The rest of the host path: /255, channel order, (x - mean) / std, to the spec's layout (float32).
void normalize(const Frame& crop, const Preprocess& spec, float* out);

// RGB <-> BGR in place (a BGR camera).
void swap_red_blue(Frame& frame);

}  // namespace edgeres
