// An ONNX model run with OpenCV's DNN module (its own CPU implementation): the
// runtime the ONNX export is checked on, and that tools/infer reports for
// model.onnx. OpenCV stays inside onnx_runtime.cpp.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

namespace sscl {

class OnnxRuntime {
 public:
  // `bytes`: a serialized ONNX model; `what` names it in errors. IoError when
  // OpenCV cannot read it.
  OnnxRuntime(const std::string& bytes, const std::string& what);

  // Logits [N, classes] of `images` [N, C, H, W] float32.
  at::Tensor logits(const at::Tensor& images);

  // "opencv-dnn 4.6.0" and the like.
  static std::string name();

  // OpenCV's own thread pool, which its DNN layers run on.
  static void set_threads(int threads);

 private:
  struct Net;
  std::shared_ptr<Net> net_;
  std::string what_;
};

}  // namespace sscl
