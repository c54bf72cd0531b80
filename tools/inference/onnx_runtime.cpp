#include "tools/inference/onnx_runtime.h"

#include <ATen/ATen.h>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "core/error.h"

namespace sscl {

struct OnnxRuntime::Net {
  cv::dnn::Net net;
};

OnnxRuntime::OnnxRuntime(const std::string& bytes, const std::string& what)
    : net_(std::make_shared<Net>()), what_(what) {
  try {
    net_->net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
  } catch (const cv::Exception& e) {
    throw IoError(what + ": OpenCV's DNN module cannot read it as ONNX (" + e.msg + ")");
  }
  if (net_->net.empty()) throw IoError(what + ": OpenCV's DNN module read no network from it");
  net_->net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net_->net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
}

at::Tensor OnnxRuntime::logits(const at::Tensor& images) {
  const at::Tensor x = images.to(at::kCPU, at::kFloat).contiguous();
  std::vector<int> sizes(x.sizes().begin(), x.sizes().end());
  cv::Mat blob(static_cast<int>(sizes.size()), sizes.data(), CV_32F, x.data_ptr<float>());
  cv::Mat out;
  try {
    net_->net.setInput(blob, "images");
    out = net_->net.forward();
  } catch (const cv::Exception& e) {
    throw Error(what_ + ": OpenCV's DNN module failed to run it (" + e.msg + ")");
  }
  check<Error>(out.type() == CV_32F && out.dims == 2 && out.size[0] == x.size(0),
               what_ + ": OpenCV's DNN module gave an output that is not logits [N, classes]");
  return at::from_blob(out.ptr<float>(), {out.size[0], out.size[1]}, at::kFloat).clone();
}

void OnnxRuntime::set_threads(int threads) { cv::setNumThreads(threads); }

std::string OnnxRuntime::name() { return "opencv-dnn " + std::string(CV_VERSION); }

}  // namespace sscl
