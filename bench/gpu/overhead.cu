// Overhead of libvgpu.so against native: empty-kernel launch latency and cudaMalloc+cudaFree
// of 1 MiB. Prints one line of medians; bench/gpu/memory_isolation.sh alternates native and
// hooked runs and reports the ratio.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <vector>

__global__ void Empty() {}

#define CK(x)                                                                  \
  do {                                                                         \
    cudaError_t e = (x);                                                       \
    if (e != cudaSuccess) {                                                    \
      fprintf(stderr, "%s failed: %s\n", #x, cudaGetErrorString(e));           \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

static double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main() {
  CK(cudaFree(nullptr));
  for (int i = 0; i < 1000; ++i) Empty<<<1, 1>>>();
  CK(cudaDeviceSynchronize());
  using clk = std::chrono::steady_clock;
  std::vector<double> launch, sync_launch, alloc;
  for (int rep = 0; rep < 15; ++rep) {
    const int n = 20000;
    auto t0 = clk::now();
    for (int i = 0; i < n; ++i) Empty<<<1, 1>>>();
    CK(cudaDeviceSynchronize());
    launch.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count() / n);
    const int m = 2000;
    t0 = clk::now();
    for (int i = 0; i < m; ++i) {
      Empty<<<1, 1>>>();
      CK(cudaStreamSynchronize(0));
    }
    sync_launch.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count() / m);
    const int k = 2000;
    t0 = clk::now();
    for (int i = 0; i < k; ++i) {
      void* p;
      CK(cudaMalloc(&p, 1 << 20));
      CK(cudaFree(p));
    }
    alloc.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count() / k);
  }
  CK(cudaGetLastError());
  printf("launch_us=%.4f launch_sync_us=%.3f malloc_free_us=%.3f\n", Median(launch),
         Median(sync_launch), Median(alloc));
  return 0;
}
