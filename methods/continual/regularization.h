// Pieces shared by the importance-based regularisers (SI, online EWC): the
// quadratic anchor penalty and helpers over per-parameter tensor lists.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace sscl {

// coef * sum_k importance_k * (theta_k - anchor_k)^2 over every element of every
// parameter tensor: SI's surrogate loss (Zenke et al. 2017, Eq. 4) and online EWC's
// penalty (Schwarz et al. 2018, Eq. 8). Like the reference, without a 1/2. Zero
// (attached to no graph) while `importances` is empty, i.e. before the first task ends.
inline torch::Tensor quadratic_penalty(const std::vector<torch::Tensor>& params,
                                       const std::vector<torch::Tensor>& anchors,
                                       const std::vector<torch::Tensor>& importances, double coef) {
  if (importances.empty())
    return params.empty() ? torch::zeros({}) : torch::zeros({}, params.front().options().requires_grad(false));
  check<Error>(params.size() == anchors.size() && params.size() == importances.size(),
               "quadratic_penalty: " + std::to_string(params.size()) + " parameters, " +
                   std::to_string(anchors.size()) + " anchors, " + std::to_string(importances.size()) + " importances");
  torch::Tensor total;
  for (size_t k = 0; k < params.size(); ++k) {
    const auto term = (importances[k] * (params[k] - anchors[k]).pow(2)).sum();
    total = total.defined() ? total + term : term;
  }
  return coef * total;
}

// Detached copies (anchors, parameter snapshots).
inline std::vector<torch::Tensor> detached_copies(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) out.push_back(t.detach().clone());
  return out;
}

inline std::vector<torch::Tensor> zeros_like_all(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) out.push_back(torch::zeros_like(t.detach()));
  return out;
}

inline double total_bytes(const std::vector<torch::Tensor>& tensors) {
  double bytes = 0;
  for (const auto& t : tensors) bytes += static_cast<double>(t.nbytes());
  return bytes;
}

}  // namespace sscl
