// Fuzz entry points for every parser of untrusted input in the control plane: extender and
// webhook bodies (through the HTTP request handler), watch event lines, Kubernetes quantities,
// pod placement annotations and kubeconfig YAML. Each must return (never crash, never hang)
// for any bytes. Used by the libFuzzer harnesses (clang builds) and by the corpus replay test.
#pragma once

#include <string_view>

namespace hami::k8s::fuzz {

void FuzzExtenderRequest(std::string_view data);  // first byte picks the path
void FuzzAdmissionReview(std::string_view data);
void FuzzWatchEvent(std::string_view data);
void FuzzQuantity(std::string_view data);
void FuzzPodAnnotations(std::string_view data);
void FuzzKubeconfig(std::string_view data);

}  // namespace hami::k8s::fuzz
