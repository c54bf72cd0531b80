// sscl_infer: the binary behind tools/infer. An exported model's accuracy,
// latency, throughput, bytes and peak RSS on a run's test images, and
// edge-cloud collaborative inference; see tools/inference/infer_run.h and
// docs/export.md.
//
//   tools/infer MODEL [--data RUN_DIR_OR_CONFIG] [--cloud MODEL --route KIND:THRESHOLD|KIND:sweep] [--out DIR]
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "core/atomic_file.h"
#include "tools/inference/infer_run.h"
#include "tools/reporting/page.h"
#include "tools/tool_main.h"

namespace {

namespace fs = std::filesystem;

// The accuracy against upload-share curve of a sweep, as tools/report draws its plots.
void write_sweep_plot(const nlohmann::json& result, const fs::path& out) {
  const sscl::report::Series series{"route " + result["edge_cloud"]["route"].get<std::string>(),
                                    sscl::report::sweep_points(result["edge_cloud"]["sweep"])};
  const auto canvas = sscl::report::route_sweep_chart({series});
  sscl::write_file_atomic(out / "route_sweep.svg", sscl::report::to_svg(canvas));
  sscl::report::write_png(canvas, out / "route_sweep.png");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"On-device figures of a model written by tools/export, and edge-cloud collaborative inference."};
  sscl::InferOptions options;
  std::string model, data, cloud, route, out;
  app.add_option("model", model, "model file from tools/export, or its output directory")->required();
  app.add_option("--data", data, "run directory or config whose test images are used (default: the model's run)");
  app.add_option("--cloud", cloud, "the cloud model (tools/export's) for edge-cloud inference");
  app.add_option("--route", route, "with --cloud: entropy|margin|confidence:THRESHOLD, or KIND:sweep");
  app.add_option("--threads", options.threads, "torch threads while measuring")->capture_default_str();
  app.add_option("--warmup", options.warmup, "untimed runs before each timing")->capture_default_str();
  app.add_option("--latency-images", options.latency_images, "images timed one at a time")->capture_default_str();
  app.add_option("--throughput-batch", options.throughput_batch, "batch of the throughput figure")
      ->capture_default_str();
  app.add_option("--throughput-batches", options.throughput_batches, "batches timed for the throughput")
      ->capture_default_str();
  app.add_option("--out", out, "directory for infer.json (and route_sweep.svg/.png with a sweep)");
  CLI11_PARSE(app, argc, argv);
  return sscl::run_tool_main([&] {
    options.model = model;
    options.data = data;
    options.cloud = cloud;
    if (!route.empty()) options.route = sscl::parse_route(route);
    const auto result = sscl::infer(options);
    std::cout << sscl::infer_table(result);
    if (!out.empty()) {
      fs::create_directories(out);
      if (result.contains("edge_cloud") && result["edge_cloud"].contains("sweep")) write_sweep_plot(result, out);
      sscl::write_file_atomic(fs::path(out) / "infer.json", result.dump(2) + "\n");
      std::cout << "wrote " << (fs::path(out) / "infer.json").string() << "\n";
    }
    return 0;
  });
}
