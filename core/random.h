// Portable, seedable randomness. std::*_distribution differ between standard
// libraries, so we draw from mt19937_64 with our own mappings: a seed and a
// position (task, iteration, slot) give the same numbers on every platform.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sscl {

// SplitMix64 finaliser: a good 64-bit mixer.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A seed derived from a base seed and a path of integers, e.g. (seed, task, iter, slot).
inline uint64_t derive_seed(uint64_t seed, std::initializer_list<uint64_t> path) {
  uint64_t h = mix64(seed);
  for (uint64_t p : path) h = mix64(h ^ mix64(p + 0x632be59bd9b4e019ULL));
  return h;
}

// A named random stream: the FNV-1a 64 hash of its name, so that every use of
// the seed ("der.replay", "split.class_order") draws its own numbers without a
// hand-kept numbering. Name a stream "<component>.<purpose>".
constexpr uint64_t stream(std::string_view name) {
  uint64_t hash = 14695981039346656037ULL;
  for (char c : name) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

// derive_seed(seed, {stream(name), position...}): the seed of one draw of a
// named stream at a position (task, iteration, slot, ...).
template <typename... Position>
uint64_t stream_seed(uint64_t seed, std::string_view name, Position... position) {
  return derive_seed(seed, {stream(name), static_cast<uint64_t>(position)...});
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}

  uint64_t next() { return engine_(); }
  // Uniform in [0, n); n > 0. Lemire's multiply-shift with rejection (unbiased).
  uint64_t below(uint64_t n) {
    for (;;) {
      const unsigned __int128 m = static_cast<unsigned __int128>(engine_()) * n;
      const uint64_t low = static_cast<uint64_t>(m);
      if (low >= n || low >= (0 - n) % n) return static_cast<uint64_t>(m >> 64);
    }
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return (engine_() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  bool bernoulli(double p) { return uniform() < p; }
  // Standard normal (Box-Muller).
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }
  // Gamma(shape, 1) by Marsaglia and Tsang; shape < 1 through Gamma(shape + 1) * U^(1/shape).
  double gamma(double shape) {
    if (shape < 1.0) return gamma(shape + 1.0) * std::pow(1.0 - uniform(), 1.0 / shape);
    const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x, v;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const double u = 1.0 - uniform();
      if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
    }
  }
  // Beta(a, b) as Ga / (Ga + Gb).
  double beta(double a, double b) {
    const double x = gamma(a), y = gamma(b);
    return x / (x + y);
  }

  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }
  // k distinct elements of v chosen uniformly (partial Fisher-Yates on a copy).
  template <typename T>
  std::vector<T> sample(std::vector<T> v, size_t k) {
    for (size_t i = 0; i < k && i < v.size(); ++i) std::swap(v[i], v[i + below(v.size() - i)]);
    v.resize(std::min(k, v.size()));
    return v;
  }
  // The positions in v of the k elements sample(v, k) would return for the same
  // state (the swaps do not depend on the values), in O(k): the partial
  // Fisher-Yates runs on a virtual [0, n) whose swapped entries a small map holds.
  // For draws of a batch from a large pool.
  std::vector<int64_t> sample_positions(size_t n, size_t k) {
    const size_t m = std::min(k, n);
    std::unordered_map<size_t, int64_t> moved;  // entries that differ from their position
    moved.reserve(2 * m);
    const auto at = [&](size_t p) {
      const auto it = moved.find(p);
      return it == moved.end() ? static_cast<int64_t>(p) : it->second;
    };
    std::vector<int64_t> out(m);
    for (size_t i = 0; i < m; ++i) {
      const size_t j = i + below(n - i);
      out[i] = at(j);
      moved[j] = at(i);
    }
    return out;
  }

 private:
  std::mt19937_64 engine_;
};

}  // namespace sscl
