// Decoding (libjpeg, libpng) and host preprocessing, bit-exact with edgeres.data.preprocess:
// Pillow's two-pass antialiased resampling in 22-bit fixed point, Python's round-half-even crop.
#include "edgeres/image.hpp"

#include <jpeglib.h>
#include <png.h>

#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>

namespace fs = std::filesystem;

namespace edgeres {
namespace {

using FilePtr = std::unique_ptr<FILE, int (*)(FILE*)>;

FilePtr open_file(const fs::path& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error("image " + path.string() + " does not exist or cannot be read");
    return {f, std::fclose};
}

// --- EXIF orientation (Pillow's ImageOps.exif_transpose) ---------------------------------
// The orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block; 1 when absent or unreadable.
int exif_orientation(const uint8_t* data, size_t size) {
    if (size >= 6 && std::memcmp(data, "Exif\0\0", 6) == 0) {
        data += 6;
        size -= 6;
    }
    if (size < 8) return 1;
    const bool little = data[0] == 'I';
    auto u16 = [&](size_t at) { return at + 2 > size ? 0 : little ? data[at] | data[at + 1] << 8 : data[at] << 8 | data[at + 1]; };
    auto u32 = [&](size_t at) {
        return at + 4 > size ? 0u : static_cast<uint32_t>(little ? u16(at) | u16(at + 2) << 16 : u16(at) << 16 | u16(at + 2));
    };
    const size_t ifd = u32(4);
    const int entries = u16(ifd);
    for (int i = 0; i < entries; ++i) {
        const size_t at = ifd + 2 + 12 * static_cast<size_t>(i);
        if (u16(at) == 0x0112) {
            const int v = u16(at + 8);
            return v >= 1 && v <= 8 ? v : 1;
        }
    }
    return 1;
}

Frame apply_orientation(const Frame& in, int orientation) {
    if (orientation == 1) return in;
    const int w = in.width, h = in.height;
    const bool swap = orientation >= 5;
    Frame out{swap ? h : w, swap ? w : h, std::vector<uint8_t>(in.pixels.size())};
    for (int y = 0; y < out.height; ++y) {
        for (int x = 0; x < out.width; ++x) {
            int sx = x, sy = y;  // the source pixel of (x, y)
            switch (orientation) {
                case 2: sx = w - 1 - x; break;                      // mirror
                case 3: sx = w - 1 - x; sy = h - 1 - y; break;      // rotate 180
                case 4: sy = h - 1 - y; break;                      // flip
                case 5: sx = y; sy = x; break;                      // transpose
                case 6: sx = y; sy = h - 1 - x; break;              // rotate 90 clockwise
                case 7: sx = w - 1 - y; sy = h - 1 - x; break;      // transverse
                default: sx = w - 1 - y; sy = x; break;             // 8: rotate 90 counter-clockwise
            }
            std::memcpy(&out.pixels[(static_cast<size_t>(y) * out.width + x) * 3],
                        &in.pixels[(static_cast<size_t>(sy) * w + sx) * 3], 3);
        }
    }
    return out;
}

// --- JPEG ---------------------------------------------------------------------------------
struct JpegError {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

void jpeg_fail(j_common_ptr cinfo) {
    auto* err = reinterpret_cast<JpegError*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    std::longjmp(err->jump, 1);
}

Frame decode_jpeg(const fs::path& path) {
    FilePtr file = open_file(path);
    jpeg_decompress_struct cinfo;
    JpegError err;
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_fail;
    Frame frame;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        throw Error("cannot read image " + path.string() + ": " + err.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, file.get());
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);  // APP1: EXIF
    jpeg_read_header(&cinfo, TRUE);
    int orientation = 1;
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && std::memcmp(m->data, "Exif", 4) == 0)
            orientation = exif_orientation(m->data, m->data_length);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        throw Error("cannot read image " + path.string() + ": CMYK JPEGs are not supported here; convert it to RGB");
    }
    cinfo.out_color_space = JCS_RGB;  // grey is replicated, YCbCr converted, as Pillow's convert("RGB")
    jpeg_start_decompress(&cinfo);
    frame.width = static_cast<int>(cinfo.output_width);
    frame.height = static_cast<int>(cinfo.output_height);
    frame.pixels.resize(static_cast<size_t>(frame.width) * frame.height * 3);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = frame.pixels.data() + static_cast<size_t>(cinfo.output_scanline) * frame.width * 3;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return apply_orientation(frame, orientation);
}

// --- PNG ----------------------------------------------------------------------------------
// Pillow keeps the high byte of 16-bit colour, maps 16-bit grey by /257, composites alpha on black.
uint8_t blend_on_black(uint8_t value, uint8_t alpha) {  // Pillow's paste-with-mask arithmetic
    int tmp = value * alpha + 128;
    return static_cast<uint8_t>(((tmp >> 8) + tmp) >> 8);
}

Frame decode_png(const fs::path& path) {
    FilePtr file = open_file(path);
    // warnings (an sRGB profile libpng dislikes...) are not the user's problem: silenced
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, [](png_structp, png_const_charp) {});
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (!info) throw Error("out of memory reading " + path.string());
    Frame frame;
    std::vector<uint8_t> raw;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, nullptr);
        throw Error("cannot read image " + path.string() + ": not a valid PNG");
    }
    png_init_io(png, file.get());
    png_read_info(png, info);
    const int color = png_get_color_type(png, info);
    const int depth = png_get_bit_depth(png, info);
    const bool grey16 = depth == 16 && (color == PNG_COLOR_TYPE_GRAY);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_PALETTE && png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16 && !grey16) png_set_strip_16(png);
    if (grey16) png_set_swap(png);  // little-endian 16-bit samples
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    frame.width = static_cast<int>(png_get_image_width(png, info));
    frame.height = static_cast<int>(png_get_image_height(png, info));
    const int channels = png_get_channels(png, info);
    const size_t rowbytes = png_get_rowbytes(png, info);
    raw.resize(rowbytes * frame.height);
    std::vector<png_bytep> rows(frame.height);
    for (int y = 0; y < frame.height; ++y) rows[y] = raw.data() + rowbytes * y;
    png_read_image(png, rows.data());
    int orientation = 1;
    png_uint_32 exif_size = 0;
    png_bytep exif = nullptr;
    if (png_get_eXIf_1(png, info, &exif_size, &exif) && exif) orientation = exif_orientation(exif, exif_size);
    png_destroy_read_struct(&png, &info, nullptr);

    frame.pixels.resize(static_cast<size_t>(frame.width) * frame.height * 3);
    const size_t n = static_cast<size_t>(frame.width) * frame.height;
    for (size_t i = 0; i < n; ++i) {
        uint8_t* out = &frame.pixels[i * 3];
        if (grey16) {
            uint16_t v;
            std::memcpy(&v, &raw[i * 2], 2);
            out[0] = out[1] = out[2] = static_cast<uint8_t>(std::nearbyint(v / 257.0));
            continue;
        }
        const uint8_t* in = &raw[i * channels];
        switch (channels) {
            case 1: out[0] = out[1] = out[2] = in[0]; break;
            case 2: out[0] = out[1] = out[2] = blend_on_black(in[0], in[1]); break;
            case 3: std::memcpy(out, in, 3); break;
            default:
                for (int c = 0; c < 3; ++c) out[c] = blend_on_black(in[c], in[3]);
        }
    }
    return apply_orientation(frame, orientation);
}

// --- Pillow's resampling (libImaging/Resample.c), 8 bits per channel ------------------------
constexpr int PRECISION_BITS = 32 - 8 - 2;

double bilinear(double x) {
    x = std::fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

double bicubic(double x) {
    const double a = -0.5;
    x = std::fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

struct Coefficients {
    int ksize = 0;
    std::vector<int> bounds;   // (first input index, count) per output index
    std::vector<int32_t> k;    // fixed-point weights, ksize per output index
};

Coefficients coefficients(int in_size, int out_size, const std::function<double(double)>& filter, double support) {
    Coefficients c;
    double scale = static_cast<double>(in_size) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    support *= filterscale;
    c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    c.bounds.resize(out_size * 2);
    c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
    std::vector<double> w(c.ksize);
    for (int xx = 0; xx < out_size; ++xx) {
        double center = (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = static_cast<int>(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = static_cast<int>(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; ++x) {
            w[x] = filter((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < xmax; ++x) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            c.k[xx * c.ksize + x] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << PRECISION_BITS))
                                          : static_cast<int32_t>(0.5 + v * (1 << PRECISION_BITS));
        }
        c.bounds[xx * 2] = xmin;
        c.bounds[xx * 2 + 1] = xmax;
    }
    return c;
}

uint8_t clip8(int v) {
    v >>= PRECISION_BITS;
    return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// rows [row0, row0 + rows) of `in`, resampled horizontally to out_w
Frame horizontal(const Frame& in, int out_w, int row0, int rows, const Coefficients& c) {
    Frame out{out_w, rows, std::vector<uint8_t>(static_cast<size_t>(out_w) * rows * 3)};
    for (int y = 0; y < rows; ++y) {
        const uint8_t* src = &in.pixels[static_cast<size_t>(y + row0) * in.width * 3];
        for (int xx = 0; xx < out_w; ++xx) {
            const int xmin = c.bounds[xx * 2], xmax = c.bounds[xx * 2 + 1];
            const int32_t* k = &c.k[xx * c.ksize];
            int ss[3] = {1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1)};
            for (int x = 0; x < xmax; ++x)
                for (int ch = 0; ch < 3; ++ch) ss[ch] += src[(x + xmin) * 3 + ch] * k[x];
            for (int ch = 0; ch < 3; ++ch) out.pixels[(static_cast<size_t>(y) * out_w + xx) * 3 + ch] = clip8(ss[ch]);
        }
    }
    return out;
}

Frame vertical(const Frame& in, int out_h, const Coefficients& c, int shift) {
    Frame out{in.width, out_h, std::vector<uint8_t>(static_cast<size_t>(in.width) * out_h * 3)};
    for (int yy = 0; yy < out_h; ++yy) {
        const int ymin = c.bounds[yy * 2] - shift, ymax = c.bounds[yy * 2 + 1];
        const int32_t* k = &c.k[yy * c.ksize];
        for (int xx = 0; xx < in.width * 3; ++xx) {
            int ss = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < ymax; ++y) ss += in.pixels[static_cast<size_t>(y + ymin) * in.width * 3 + xx] * k[y];
            out.pixels[static_cast<size_t>(yy) * in.width * 3 + xx] = clip8(ss);
        }
    }
    return out;
}

Frame resample(const Frame& in, int out_w, int out_h, const std::string& interpolation) {
    std::function<double(double)> filter = bilinear;
    double support = 1.0;
    if (interpolation == "bicubic") {
        filter = bicubic;
        support = 2.0;
    } else if (interpolation != "bilinear") {
        throw Error("this program reproduces bilinear and bicubic resizing only; the bundle asks for " + interpolation);
    }
    const Coefficients cv = coefficients(in.height, out_h, filter, support);
    Frame cur = in;
    int shift = 0;
    if (out_w != in.width) {  // only the rows the vertical pass reads, as Pillow
        const int first = cv.bounds[0];
        const int last = cv.bounds[out_h * 2 - 2] + cv.bounds[out_h * 2 - 1];
        cur = horizontal(in, out_w, first, last - first, coefficients(in.width, out_w, filter, support));
        shift = first;
    }
    if (out_h != in.height) cur = vertical(cur, out_h, cv, shift);
    return cur;
}

}  // namespace

Frame decode_image(const fs::path& path) {
    unsigned char magic[8] = {0};
    {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw Error("image " + path.string() + " does not exist or cannot be read");
        in.read(reinterpret_cast<char*>(magic), 8);
    }
    if (magic[0] == 0xFF && magic[1] == 0xD8) return decode_jpeg(path);
    if (png_sig_cmp(magic, 0, 8) == 0) return decode_png(path);
    throw Error("cannot read image " + path.string() + ": only JPEG and PNG are supported");
}

Frame resize_and_crop(const Frame& image, const Preprocess& spec) {
    // Python: scale = resize / min(w, h); new = max(crop, round(w * scale)); left = round((new - crop) / 2)
    const double scale = static_cast<double>(spec.resize) / std::min(image.width, image.height);
    const int new_w = std::max(spec.crop, static_cast<int>(std::nearbyint(image.width * scale)));
    const int new_h = std::max(spec.crop, static_cast<int>(std::nearbyint(image.height * scale)));
    const Frame resized = (new_w == image.width && new_h == image.height)
                              ? image : resample(image, new_w, new_h, spec.interpolation);
    const int left = static_cast<int>(std::nearbyint((new_w - spec.crop) / 2.0));
    const int top = static_cast<int>(std::nearbyint((new_h - spec.crop) / 2.0));
    Frame crop{spec.crop, spec.crop, std::vector<uint8_t>(static_cast<size_t>(spec.crop) * spec.crop * 3)};
    for (int y = 0; y < spec.crop; ++y)
        std::memcpy(&crop.pixels[static_cast<size_t>(y) * spec.crop * 3],
                    &resized.pixels[(static_cast<size_t>(y + top) * new_w + left) * 3], static_cast<size_t>(spec.crop) * 3);
    return crop;
}

void normalize(const Frame& crop, const Preprocess& spec, float* out) {
    const bool bgr = spec.channel_order == "BGR", nchw = spec.layout == "NCHW";
    const size_t hw = static_cast<size_t>(crop.width) * crop.height;
    for (size_t i = 0; i < hw; ++i) {
        for (int c = 0; c < 3; ++c) {
            const float v = static_cast<float>(crop.pixels[i * 3 + (bgr ? 2 - c : c)]) / 255.0f;
            out[nchw ? c * hw + i : i * 3 + c] = (v - spec.mean[c]) / spec.std[c];
        }
    }
}

void swap_red_blue(Frame& frame) {
    for (size_t i = 0; i + 2 < frame.pixels.size(); i += 3) std::swap(frame.pixels[i], frame.pixels[i + 2]);
}

}  // namespace edgeres
