#include "core/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace sscl {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

AccuracyMatrix::AccuracyMatrix(int num_tasks) : values_(num_tasks, std::vector<double>(num_tasks, kNaN)) {}

void AccuracyMatrix::set(int after_task, int on_task, double accuracy) {
  values_.at(after_task).at(on_task) = accuracy;
}

double AccuracyMatrix::at(int after_task, int on_task) const { return values_.at(after_task).at(on_task); }

bool AccuracyMatrix::has(int after_task, int on_task) const { return !std::isnan(at(after_task, on_task)); }

int AccuracyMatrix::resolve(int last) const {
  if (last < 0) last = num_tasks() - 1;
  if (last < 0 || last >= num_tasks()) throw std::logic_error("accuracy matrix: no task " + std::to_string(last));
  for (int i = 0; i <= last; ++i)
    for (int j = 0; j <= i; ++j)
      if (!has(i, j))
        throw std::logic_error("accuracy matrix: R[" + std::to_string(i) + "][" + std::to_string(j) +
                               "] was not evaluated");
  return last;
}

double AccuracyMatrix::average_accuracy(int last) const {
  last = resolve(last);
  double sum = 0;
  for (int j = 0; j <= last; ++j) sum += at(last, j);
  return sum / (last + 1);
}

double AccuracyMatrix::mean_average_accuracy(int last) const {
  last = resolve(last);
  double sum = 0;
  for (int i = 0; i <= last; ++i) sum += average_accuracy(i);
  return sum / (last + 1);
}

double AccuracyMatrix::forgetting(int last) const {
  last = resolve(last);
  if (last == 0) return kNaN;
  double sum = 0;
  for (int j = 0; j < last; ++j) {
    double best = at(j, j);
    for (int l = j; l < last; ++l) best = std::max(best, at(l, j));
    sum += best - at(last, j);
  }
  return sum / last;
}

double AccuracyMatrix::backward_transfer(int last) const {
  last = resolve(last);
  if (last == 0) return kNaN;
  double sum = 0;
  for (int j = 0; j < last; ++j) sum += at(last, j) - at(j, j);
  return sum / last;
}

}  // namespace sscl
