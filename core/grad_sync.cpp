#include "core/grad_sync.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <mutex>

namespace sscl {

struct GradSync::State {
  struct Bucket {
    std::vector<size_t> members;  // indices into params
    size_t ready = 0;
    at::Tensor flat;
    std::vector<size_t> in_flat;  // the members whose gradients are in `flat`, in order
    std::function<void()> wait;
  };
  World* world = nullptr;
  std::vector<at::Tensor> params;
  std::vector<size_t> bucket_of;
  std::vector<Bucket> buckets;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;  // kept alive: they carry the hooks
  std::mutex mutex;
  size_t next = 0;  // buckets start in index order on every rank (collectives must match)
  bool armed = false;
  bool alive = true;  // false once the GradSync is gone (the hooks stay on the accumulators)

  void start(Bucket& bucket) {
    std::vector<at::Tensor> grads;
    bucket.in_flat.clear();
    for (size_t i : bucket.members)
      if (params[i].grad().defined()) {
        grads.push_back(params[i].grad().reshape({-1}));
        bucket.in_flat.push_back(i);
      }
    if (grads.empty()) {
      bucket.wait = [] {};
      return;
    }
    bucket.flat = torch::cat(grads);
    bucket.wait = world->all_reduce_sum_async(bucket.flat);
  }

  void ready(size_t param) {
    std::lock_guard lock(mutex);
    if (!alive || !armed) return;
    ++buckets[bucket_of[param]].ready;
    while (next < buckets.size() && buckets[next].ready == buckets[next].members.size()) start(buckets[next++]);
  }
};

namespace {

class ReadyHook : public torch::autograd::FunctionPostHook {
 public:
  ReadyHook(std::weak_ptr<GradSync::State> state, size_t param) : state_(std::move(state)), param_(param) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    if (const auto state = state_.lock()) state->ready(param_);
    return outputs;
  }

 private:
  // Weak: the state holds the accumulators that hold this hook (a shared
  // pointer back would be a cycle that is never freed).
  std::weak_ptr<GradSync::State> state_;
  size_t param_;
};

}  // namespace

GradSync::GradSync(World& world, std::vector<at::Tensor> params, double bucket_mb) : state_(std::make_shared<State>()) {
  state_->world = &world;
  state_->params = std::move(params);
  const auto limit = static_cast<int64_t>(bucket_mb * 1024 * 1024);
  state_->bucket_of.resize(state_->params.size());
  int64_t bytes = 0;
  for (size_t k = state_->params.size(); k-- > 0;) {
    const auto& p = state_->params[k];
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    const bool fits = !state_->buckets.empty() && bytes + size <= limit &&
                      state_->params[state_->buckets.back().members.front()].options().type_equal(p.options());
    if (!fits) {
      state_->buckets.emplace_back();
      bytes = 0;
    }
    state_->buckets.back().members.push_back(k);
    state_->bucket_of[k] = state_->buckets.size() - 1;
    bytes += size;
  }
  for (size_t k = 0; k < state_->params.size(); ++k) {
    auto accumulator = torch::autograd::impl::grad_accumulator(state_->params[k]);
    if (!accumulator) continue;  // not a leaf that requires grad
    accumulator->add_post_hook(std::make_unique<ReadyHook>(state_, k));
    state_->accumulators.push_back(std::move(accumulator));
  }
}

GradSync::~GradSync() {
  std::lock_guard lock(state_->mutex);
  state_->alive = false;
}

size_t GradSync::num_buckets() const { return state_->buckets.size(); }

void GradSync::arm() {
  std::lock_guard lock(state_->mutex);
  for (auto& bucket : state_->buckets) {
    bucket.ready = 0;
    bucket.wait = nullptr;
    bucket.flat = at::Tensor();
  }
  state_->next = 0;
  state_->armed = true;
}

double GradSync::finish() {
  std::lock_guard lock(state_->mutex);
  state_->armed = false;
  // The buckets backward did not complete (parameters no loss reached), still in order.
  while (state_->next < state_->buckets.size()) state_->start(state_->buckets[state_->next++]);
  const auto begin = std::chrono::steady_clock::now();
  const double scale = 1.0 / state_->world->size();
  for (auto& bucket : state_->buckets) {
    bucket.wait();
    if (!bucket.flat.defined()) continue;
    bucket.flat.mul_(scale);
    int64_t offset = 0;
    for (size_t i : bucket.in_flat) {
      auto grad = state_->params[i].mutable_grad();
      const int64_t n = grad.numel();
      grad.copy_(bucket.flat.narrow(0, offset, n).view_as(grad));
      offset += n;
    }
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin).count();
}

}  // namespace sscl
