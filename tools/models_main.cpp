// sscl_model_stats: the binary behind tools/models. Lists every registered backbone,
// built with its default options (an empty [model] section) for the input shape,
// with a linear head over --classes classes, as a Markdown table: parameters,
// multiply-accumulates for one image and the model's size in float32 and int8
// (see models/model_stats.h for what is counted and assumed). A backbone that
// cannot take the shape is reported in its row.
//
//   tools/models [--input 3x32x32] [--classes 10] [--backbone NAME]
#include <c10/util/Exception.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "core/nn/classifier.h"
#include "models/model_stats.h"

namespace {

// "3x32x32" (channels x height x width) -> InputShape; throws sscl::Error.
sscl::InputShape parse_shape(const std::string& text) {
  std::vector<int64_t> dims;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find('x', start), text.size());
    const std::string part = text.substr(start, end - start);
    size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size() || value <= 0)
      throw sscl::Error("--input '" + text + "': expected CxHxW with positive integers, e.g. 3x32x32");
    dims.push_back(value);
    start = end + 1;
  }
  if (dims.size() != 3)
    throw sscl::Error("--input '" + text + "': expected CxHxW with positive integers, e.g. 3x32x32");
  return {dims[0], dims[1], dims[2]};
}

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Table cells may not hold '|' or newlines.
std::string cell(std::string text) {
  for (char& c : text)
    if (c == '|' || c == '\n') c = ' ';
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"List the registered backbones with their parameters, MACs and size, as a Markdown table."};
  std::string input = "3x32x32", only;
  int64_t classes = 10;
  app.add_option("--input", input, "input image shape CxHxW")->capture_default_str();
  app.add_option("--classes", classes, "classes of the linear head")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--backbone", only, "only this backbone");
  CLI11_PARSE(app, argc, argv);
  try {
    const sscl::InputShape shape = parse_shape(input);
    std::vector<std::string> names = sscl::BackboneRegistry::get().names();
    if (!only.empty()) {
      sscl::BackboneRegistry::get().at(only);  // an unknown name lists the known ones
      names = {only};
    }
    std::printf(
        "Backbones with default options ([model] empty) and a %lld-class linear head, input %s "
        "(channels x height x width), one image.\n",
        static_cast<long long>(classes), input.c_str());
    std::printf(
        "MACs: multiply-accumulates of convolutions and linear layers (BN, activations, pooling and "
        "additions not counted). float32: 4 bytes per parameter + buffers; int8: 1 byte per parameter "
        "+ buffers (no scales, no BN folding).\n\n");
    std::printf("| backbone | parameters | MACs | GMACs | float32 MiB | int8 MiB |\n|---|---:|---:|---:|---:|---:|\n");
    const auto config = sscl::Config::from_string("[model]\n", "model.toml");
    for (const auto& name : names) {
      try {
        sscl::Classifier model(sscl::BackboneRegistry::get().at(name)(config.section("model"), shape), classes);
        const sscl::ModelStats stats = sscl::model_stats(*model, shape);
        constexpr double kMiB = 1024.0 * 1024.0;
        std::printf("| %s | %s | %s | %.3f | %.2f | %.2f |\n", name.c_str(), with_commas(stats.parameters).c_str(),
                    with_commas(stats.macs).c_str(), stats.macs / 1e9, stats.float32_bytes / kMiB,
                    stats.int8_bytes / kMiB);
      } catch (const c10::Error& e) {
        std::printf("| %s | cannot take %s: %s | | | | |\n", name.c_str(), input.c_str(),
                    cell(e.what_without_backtrace()).c_str());
      } catch (const std::exception& e) {
        std::printf("| %s | cannot take %s: %s | | | | |\n", name.c_str(), input.c_str(), cell(e.what()).c_str());
      }
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
