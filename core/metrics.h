// Continual-learning metrics over an accuracy matrix R (R[i][j] = accuracy on task
// j after training task i, in percent). Definitions follow the literature:
//  - final average accuracy:  mean_j R[T-1][j]
//  - mean average accuracy (the reference's): mean_i mean_{j<=i} R[i][j]
//  - forgetting (Chaudhry et al. 2018): mean over j < T-1 of
//      max_{l in [j, T-2]} R[l][j] - R[T-1][j]
//  - backward transfer (Lopez-Paz & Ranzato 2017): mean over j < T-1 of
//      R[T-1][j] - R[j][j]
#pragma once

#include <cstddef>
#include <vector>

namespace sscl {

class AccuracyMatrix {
 public:
  AccuracyMatrix() = default;
  explicit AccuracyMatrix(int num_tasks);

  int num_tasks() const { return static_cast<int>(values_.size()); }
  void set(int after_task, int on_task, double accuracy);
  double at(int after_task, int on_task) const;  // NaN where not evaluated
  bool has(int after_task, int on_task) const;
  const std::vector<std::vector<double>>& rows() const { return values_; }

  // Metrics after training task `last` (default: the last task). They need the
  // entries R[i][j] for j <= i <= last and throw std::logic_error otherwise.
  double average_accuracy(int last = -1) const;
  double mean_average_accuracy(int last = -1) const;
  double forgetting(int last = -1) const;  // NaN with a single task
  double backward_transfer(int last = -1) const;

 private:
  int resolve(int last) const;
  std::vector<std::vector<double>> values_;
};

}  // namespace sscl
