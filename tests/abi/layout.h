// Layout facts (sizes, offsets, enum values) of the CUDA driver types the project declares
// itself; computed once from our ABI headers and once from the toolkit's cuda.h.
#pragma once
#include <cstddef>

namespace hami::abi {
struct Layout {
  size_t array_desc_size, array_desc_format_off, array_desc_channels_off;
  size_t array3d_desc_size, array3d_desc_flags_off;
  size_t alloc_prop_size, alloc_prop_location_off, alloc_prop_flags_off;
  size_t launch_config_size, launch_config_stream_off, launch_config_attrs_off;
  size_t uuid_size;
  size_t memcpy2d_size, memcpy2d_width_off, memcpy3d_size, memcpy3d_width_off, memcpy3d_depth_off;
  size_t memcpy3d_peer_size, memcpy3d_peer_dst_context_off, memcpy3d_peer_depth_off;
  size_t launch_params_size, launch_params_stream_off, launch_params_args_off;
  long values[14];  // enum values in a fixed order, see layout_*.cc
};
Layout OurLayout();
Layout ToolkitLayout();
}  // namespace hami::abi
