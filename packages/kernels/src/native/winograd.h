// 3×3 stride-1 convolutions by Winograd's minimal filtering F(2×2, 3×3) (winograd.cc): 16
// multiplies per 2×2 outputs and channel pair where the direct method needs 36, for activations
// whose channels come in contiguous groups of 8 (NHWC with channels a multiple of 8, and
// oneDNN's nChw8c), on AVX2 + FMA CPUs.
#pragma once

#include <cstddef>

#include "kernels.h"

namespace ns {

// Strides, in floats, of an activation tensor whose channels come in contiguous groups of 8.
struct ChannelBlockLayout {
  size_t image;  // from one image to the next
  size_t block;  // from one group of 8 channels to the next
  size_t pixel;  // from one pixel to the next (row-major)
};
inline ChannelBlockLayout nhwc_layout(int height, int width, int channels) {
  return {static_cast<size_t>(height) * width * channels, 8, static_cast<size_t>(channels)};
}
inline ChannelBlockLayout nchw8c_layout(int height, int width, int channels) {
  return {static_cast<size_t>(height) * width * channels, static_cast<size_t>(height) * width * 8, 8};
}

// Whether this CPU runs the kernel and it is the faster choice here: AVX2 and FMA, and no
// AVX-512 (where oneDNN's direct kernels are faster than these 8-wide ones). NS_WINOGRAD=0 turns
// it off.
bool winograd_enabled();
// Whether the convolution is one the kernel computes: 3×3, stride 1, no dilation, padding 1 on
// every side (the output the input's size), channels in and out multiples of 8.
bool winograd_fits(const Conv2DShape& s);

// The filter in the transformed domain: u[ξ][in][out] = G·g·Gᵀ, 16 × in × out floats, from an
// HWIO filter. `input_gradient` transforms the filter of the input gradient instead (rotated by
// 180° with in and out swapped: u is then 16 × out × in).
void winograd_filter(const float* hwio, int in_channels, int out_channels, bool input_gradient, float* u);

// dst = relu?(conv3×3(src, u) + bias (+ dst when add_to_dst)); bias may be null.
void winograd_conv3x3(const float* u, const float* bias, int in_channels, int out_channels, const float* src,
                      ChannelBlockLayout src_layout, float* dst, ChannelBlockLayout dst_layout, int batch, int height,
                      int width, bool add_to_dst, bool relu);

// dw (HWIO) = the filter gradient of that convolution, from its input x and output gradient dy.
void winograd_filter_gradient(const float* x, ChannelBlockLayout x_layout, const float* dy, ChannelBlockLayout dy_layout,
                              int batch, int height, int width, int in_channels, int out_channels, float* dw);

}  // namespace ns
