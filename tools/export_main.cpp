// sscl_export: the binary behind tools/export. A finished run directory to a
// TorchScript model (BatchNorm folded), with --int8 a quantized one too, with
// --onnx ONNX, and export.json; see tools/exporting/export_run.h and docs/export.md.
//
//   tools/export RUN_DIR --out DIR [--int8 [--calib-images N] [--engine onednn|qnnpack]] [--onnx [--opset N]]
//                [--state-dict]
#include <CLI/CLI.hpp>
#include <iostream>

#include "core/error.h"
#include "core/logging.h"
#include "tools/exporting/export_run.h"
#include "tools/tool_main.h"

int main(int argc, char** argv) {
  CLI::App app{"Export a finished sscl run's model for inference (TorchScript, BatchNorm folded; int8; ONNX)."};
  sscl::ExportOptions options;
  std::string run_dir, out_dir;
  app.add_option("run_dir", run_dir, "a finished run directory (config.toml and model.pt)")->required();
  app.add_option("--out", out_dir, "directory for model_fp32.pt and export.json")->required();
  app.add_option("--check-images", options.check_images, "test images the export is checked on")
      ->check(CLI::PositiveNumber);
  app.add_flag("--int8", options.int8, "also model_int8.pt: post-training static quantization");
  app.add_option("--calib-images", options.calib_images, "training images the int8 model is calibrated on (512)");
  app.add_option("--engine", options.engine, "quantized engine: onednn (x86, the default) or qnnpack (ARM)");
  app.add_flag("--onnx", options.onnx, "also model.onnx (multi-head: model_task<t>.onnx), checked with OpenCV's DNN");
  app.add_option("--opset", options.opset, "ONNX opset, 13 (the default) to 17");
  app.add_flag("--state-dict", options.state_dict,
               "also state_dict.pt: the weights for Python's torch.load + load_state_dict (torchvision's names "
               "for the CIFAR ResNets)");
  CLI11_PARSE(app, argc, argv);
  return sscl::run_tool_main([&] {
    if (!options.int8 && (app.count("--calib-images") > 0 || app.count("--engine") > 0))
      throw sscl::ConfigError("--calib-images and --engine go with --int8");
    if (!options.onnx && app.count("--opset") > 0) throw sscl::ConfigError("--opset goes with --onnx");
    options.run_dir = run_dir;
    options.out_dir = out_dir;
    const auto info = sscl::export_run(options);
    const auto& file = info["files"][0];
    std::cout << "exported " << info["method"].get<std::string>() << " (" << info["backbone"].get<std::string>() << ", "
              << info["num_classes"].get<int64_t>() << " classes) to " << out_dir
              << "/model_fp32.pt: " << file["bytes"].get<int64_t>() << " bytes, "
              << file["batch_norms_folded"].get<int64_t>() << " BatchNorm folded, "
              << file["batch_norms_kept"].get<int64_t>() << " kept; max |logit difference| "
              << file["check"]["max_abs_logit_difference_batch_64"].get<double>() << " against the eager model on "
              << file["check"]["images"].get<int64_t>() << " test images\n";
    if (options.int8) {
      const auto& q = info["files"][1];
      const auto& c = q["check"];
      // The figures of the scenario the run was trained for.
      const std::string scenario = info["scenario"] == "task-il" || info["multi_head"] ? "task_il" : "class_il";
      std::cout << "int8 (" << q["engine"].get<std::string>() << ", calibrated on "
                << q["calibration_images"].get<int64_t>() << " training images) to " << out_dir
                << "/model_int8.pt: " << q["bytes"].get<int64_t>() << " bytes (" << q["bytes_to_fp32"].get<double>()
                << "x fp32), " << q["quantized_layers"].get<int64_t>() << " layers in int8, "
                << q["float_layers"].get<int64_t>() << " in float; on " << c["images"].get<int64_t>()
                << " test images (" << scenario << "): top-1 agreement with fp32 "
                << c["top1_agreement_percent"][scenario].get<double>() << "%, accuracy "
                << c["accuracy_percent"][scenario]["fp32"].get<double>() << "% (fp32) / "
                << c["accuracy_percent"][scenario]["int8"].get<double>() << "% (int8)\n";
    }
    for (const auto& file : info["files"]) {
      if (file["format"] != "onnx") continue;
      std::cout << "ONNX (opset " << file["opset"].get<int64_t>() << ", " << file["nodes"].get<int64_t>()
                << " nodes) to " << out_dir << "/" << file["file"].get<std::string>() << ": "
                << file["bytes"].get<int64_t>() << " bytes; run by " << file["check"]["runtime"].get<std::string>()
                << ", max |logit difference| " << file["check"]["max_abs_logit_difference"].get<double>()
                << " against the trace on " << file["check"]["images"].get<int64_t>() << " test images\n";
    }
    for (const auto& file : info["files"]) {
      if (file["format"] != "state_dict") continue;
      std::cout << "state_dict (" << file["tensors"].get<int64_t>() << " tensors, " << file["names"].get<std::string>()
                << " names) to " << out_dir << "/state_dict.pt: " << file["bytes"].get<int64_t>() << " bytes\n";
    }
    if (info.contains("prediction_note")) std::cout << "note: " << info["prediction_note"].get<std::string>() << "\n";
    return 0;
  });
}
