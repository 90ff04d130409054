// Our hand-written CUDA ABI header must match the toolkit's cuda.h byte for byte where we
// use it (built only when the toolkit is installed).
#include <gtest/gtest.h>

#include "abi/layout.h"

namespace hami::abi {
namespace {

TEST(AbiCheck, StructLayoutsAndEnumValuesMatchTheToolkit) {
  Layout a = OurLayout(), b = ToolkitLayout();
  EXPECT_EQ(a.array_desc_size, b.array_desc_size);
  EXPECT_EQ(a.array_desc_format_off, b.array_desc_format_off);
  EXPECT_EQ(a.array_desc_channels_off, b.array_desc_channels_off);
  EXPECT_EQ(a.array3d_desc_size, b.array3d_desc_size);
  EXPECT_EQ(a.array3d_desc_flags_off, b.array3d_desc_flags_off);
  EXPECT_EQ(a.alloc_prop_size, b.alloc_prop_size);
  EXPECT_EQ(a.alloc_prop_location_off, b.alloc_prop_location_off);
  EXPECT_EQ(a.alloc_prop_flags_off, b.alloc_prop_flags_off);
  EXPECT_EQ(a.launch_config_size, b.launch_config_size);
  EXPECT_EQ(a.launch_config_stream_off, b.launch_config_stream_off);
  EXPECT_EQ(a.launch_config_attrs_off, b.launch_config_attrs_off);
  EXPECT_EQ(a.uuid_size, b.uuid_size);
  EXPECT_EQ(a.memcpy2d_size, b.memcpy2d_size);
  EXPECT_EQ(a.memcpy2d_width_off, b.memcpy2d_width_off);
  EXPECT_EQ(a.memcpy3d_size, b.memcpy3d_size);
  EXPECT_EQ(a.memcpy3d_width_off, b.memcpy3d_width_off);
  EXPECT_EQ(a.memcpy3d_depth_off, b.memcpy3d_depth_off);
  EXPECT_EQ(a.memcpy3d_peer_size, b.memcpy3d_peer_size);
  EXPECT_EQ(a.memcpy3d_peer_dst_context_off, b.memcpy3d_peer_dst_context_off);
  EXPECT_EQ(a.memcpy3d_peer_depth_off, b.memcpy3d_peer_depth_off);
  EXPECT_EQ(a.launch_params_size, b.launch_params_size);
  EXPECT_EQ(a.launch_params_stream_off, b.launch_params_stream_off);
  EXPECT_EQ(a.launch_params_args_off, b.launch_params_args_off);
  for (int i = 0; i < 14; ++i) EXPECT_EQ(a.values[i], b.values[i]) << "enum value #" << i;
}

}  // namespace
}  // namespace hami::abi
