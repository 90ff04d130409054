// The general placement path: every container of a pod on one node, GPUs chosen by the rule
// chain (rules/chain.h) and the GPU policy (rules/score.h). Internal to the engine.
//
// Init containers are each placed against the node as it is (they run one at a time, before the
// app containers), app containers one after the other. A container takes the `count` fitting
// GPUs the GPU policy prefers (binpack: the best fit, FitKey; spread: the least utilised).
#pragma once

#include "sched/engine.h"
#include "sched/pod_context.h"
#include "sched/rules/score.h"

namespace hami::sched::internal {

// The whole pod on node `n`. On success s.chosen holds every container's GPUs (init first) and
// *added the pod's usage of the node; otherwise the reason the node was rejected.
Reason PlacePod(const NodeEntry& n, const PodCtx& ctx, Scratch& s, rules::Added* added);

// The placement that s.chosen (after PlacePod succeeded on `n`) describes.
PodPlacement BuildPlacement(const NodeEntry& n, const ResolvedPod& pod, const Scratch& s);

// A pod without GPUs: an empty device list per container.
PodPlacement EmptyPlacement(const ResolvedPod& pod);

}  // namespace hami::sched::internal
